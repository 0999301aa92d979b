"""The control plane: the xDS server, per-node snapshots and the local Envoy it
drives.

Depends on `gateway` and below.
"""
