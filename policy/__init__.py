"""Rego policy bundles, the policy input contract, engines, bundle signing and
decision logs.

Depends only on `crypto`.
"""
