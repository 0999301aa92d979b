"""Device signals, stable device ids, device-to-subject binding and trust levels.

`DeviceAssessor` (`device_fingerprint.assessor`) is the entry point; docs/device.md
describes the whole. Depends on `storage` (the registry's SQL drivers) and
nothing else in the project: not on `authn` — the acr levels binding needs are
configuration, and DPoP key proofs arrive already verified as a thumbprint.
"""
