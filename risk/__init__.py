"""Behaviour risk scoring: continuous authentication for every request.

A top-level package because it is its own concern: it is neither identity
proof (`authn`) nor device identity (`device_fingerprint`) but an explainable
judgement over both plus the subject's history (travel, hours, bursts,
failures, amounts, typing rhythm). Depends on `crypto` and
`device_fingerprint`; the gateway depends on it.
"""
