"""The edge agent: ext_authz / ext_proc servers and the check pipeline that ties
identity, device, risk and policy together.

Depends on `authn`, `device_fingerprint`, `policy` and `crypto`.
"""
