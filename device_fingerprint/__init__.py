"""Device signals, stable device ids, device-to-subject binding and trust levels.

Depends only on `crypto` (and the storage drivers).
"""
