"""The open-banking API catalogue (issue 7): the OpenAPI 3.1 document of the partner
APIs (``openapi.json``, the source of truth, shipped as package data) and the
developer portal that serves and renders it (`gateway.catalogue.portal`).

See docs/open-banking.md.
"""
