"""Reading the catalogue in tests: its operations, and JSON Schema validators for the
schemas it documents (JSON Schema 2020-12, OpenAPI 3.1's dialect, via `jsonschema`).

Validation is *strict*: every object schema that lists its properties is closed
(``additionalProperties: false``) for the test, so a field the service sends and the
document does not mention fails, as does a typo in an example. The published
document stays open (clients ignore unknown fields).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateway.catalogue.portal import openapi_document

BASE = "urn:ztgate:catalogue"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    doc: dict[str, Any]

    @property
    def pointer(self) -> str:
        return f"/paths/{escape(self.path)}/{self.method}"


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def operations(doc: dict[str, Any]) -> Iterator[Operation]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield Operation(path, method, item[method])


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A `$ref`'d object and the JSON pointer it lives at (None if `node` is not a ref)."""
    ref = node.get("$ref")
    if ref is None:
        return node, None
    assert ref.startswith("#/"), ref
    target: Any = doc
    for token in ref[2:].split("/"):
        target = target[token.replace("~1", "/").replace("~0", "~")]
    return target, ref[1:]


def _close(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _close(value)
    elif isinstance(node, list):
        for value in node:
            _close(value)


class Catalogue:
    def __init__(self) -> None:
        self.doc = openapi_document()
        strict = copy.deepcopy(self.doc)
        _close(strict)
        resource = Resource.from_contents(strict, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(BASE, resource)

    def validator(self, pointer: str) -> Draft202012Validator:
        """A validator for the schema at `pointer` (``/components/schemas/Account``)."""
        return Draft202012Validator(
            {"$ref": f"{BASE}#{pointer}"}, registry=self.registry, format_checker=FormatChecker()
        )

    def operation(self, path: str, method: str) -> Operation:
        return Operation(path, method, self.doc["paths"][path][method])

    def response_schema_pointer(self, op: Operation, status: int) -> str:
        """Where the JSON schema of `op`'s `status` answer is; fails if undocumented."""
        responses = op.doc["responses"]
        assert str(status) in responses, f"{op.method} {op.path}: {status} is not documented"
        response, at = resolve(self.doc, responses[str(status)])
        base = at or f"{op.pointer}/responses/{status}"
        assert "application/json" in response.get("content", {}), (op.path, status)
        return f"{base}/content/{escape('application/json')}/schema"

    def response_headers(self, op: Operation, status: int) -> dict[str, dict[str, Any]]:
        response, _ = resolve(self.doc, op.doc["responses"][str(status)])
        return {name: resolve(self.doc, h)[0] for name, h in response.get("headers", {}).items()}

    def media_examples(self) -> Iterator[tuple[str, str, Any]]:
        """(where, schema pointer, example value) for every example in the document."""
        yield from self._examples(self.doc, "")

    def _examples(self, node: Any, at: str) -> Iterator[tuple[str, str, Any]]:
        if isinstance(node, dict):
            if "schema" in node and "examples" in node and isinstance(node["examples"], dict):
                for name, example in node["examples"].items():
                    yield f"{at}/examples/{name}", f"{at}/schema", example["value"]
            for key, value in node.items():
                yield from self._examples(value, f"{at}/{escape(key)}")
