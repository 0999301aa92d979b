"""Identity: users and their factors (passwords, TOTP, WebAuthn passkeys),
sessions, tokens, partner OAuth clients and step-up.

Depends only on `crypto`; the gateway calls into it, never the other way.
"""
