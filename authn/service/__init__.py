"""The authentication service: an aiohttp JSON API over `authn` (docs/authn-api.md)."""
