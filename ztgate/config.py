"""The one configuration file: TOML, validated against typed dataclasses.

Convention every section follows: a frozen dataclass whose fields have types
and defaults (the defaults are the embedded, secure ones). `load` reads a TOML
file, rejects unknown keys, checks every type and allowed value, and raises a
`ConfigError` that names the offending key by its dotted path
(``crypto.signing_algorithm: must be one of 'sm2', 'ec-p256', 'ed25519'``).
`json_schema` derives the published JSON Schema from the same dataclasses, so
the schema and the validator cannot drift apart.

Later layers add their sections as fields of `Config`. A section checks rules
that span fields in ``__post_init__``, raising ``ValueError("<field>: <problem>")``.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from authn.config import AuthnConfig
from device_fingerprint.config import DeviceConfig

T = TypeVar("T")


class ConfigError(ValueError):
    """Invalid configuration; `key` is the dotted path of the offending key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True)
class StateConfig:
    dir: Path = Path("state")
    """Where embedded state lives (SQLite, key rings, key-encryption keys)."""


@dataclass(frozen=True)
class CryptoConfig:
    signing_algorithm: Literal["sm2", "ec-p256", "ed25519"] = "sm2"
    """Algorithm of new signing keys (tokens, identity assertions, bundles)."""
    distinguishing_id: str = "1234567812345678"
    """SM2 distinguishing ID (GM/T 0009 default)."""
    selftest_on_start: bool = True
    """Run the known-answer self-test before any service starts (fail closed)."""


@dataclass(frozen=True)
class Config:
    log: LogConfig = field(default_factory=LogConfig)
    state: StateConfig = field(default_factory=StateConfig)
    crypto: CryptoConfig = field(default_factory=CryptoConfig)
    authn: AuthnConfig = field(default_factory=AuthnConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)


MAX_FILE = 1024 * 1024


def load(path: Path | None) -> Config:
    """Load and validate `path`; `None` means the embedded defaults."""
    if path is None:
        return Config()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE:
        raise ConfigError("", f"{path} is larger than {MAX_FILE} bytes")
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("", f"{path} is not valid TOML: {exc}") from None
    return from_dict(Config, doc)


def from_dict(cls: type[T], doc: Any, prefix: str = "") -> T:
    """Build dataclass `cls` from a parsed document, validating every key."""
    if not isinstance(doc, dict):
        raise ConfigError(prefix, "must be a table")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in doc:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(where, f"unknown key (allowed: {', '.join(sorted(names))})")
    values = {}
    for name in names & doc.keys():
        where = f"{prefix}.{name}" if prefix else name
        values[name] = _convert(hints[name], doc[name], where)
    try:
        return cls(**values)
    except ValueError as exc:  # a section's cross-field check: "<field>: <problem>"
        key, _, problem = str(exc).partition(": ")
        raise ConfigError(f"{prefix}.{key}" if prefix else key, problem) from None


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)  # type: ignore[arg-type]
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(where, f"must be one of {', '.join(repr(a) for a in allowed)}")
        return value
    if origin in (types.UnionType, typing.Union):
        for option in get_args(tp):
            if option is type(None) and value is None:
                return None
        inner = [a for a in get_args(tp) if a is not type(None)]
        return _convert(inner[0], value, where)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(where, "must be a list")
        (item,) = get_args(tp)[:1]
        items = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(where, "must be a non-empty path string")
        return Path(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(where, "must be true or false")
        return value
    if tp is int or tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(where, f"must be a number ({tp.__name__})")
        if tp is int and not isinstance(value, int):
            raise ConfigError(where, "must be an integer")
        return tp(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(where, "must be a string")
        return value
    raise ConfigError(where, f"unsupported type {tp!r}")  # a bug in a section definition


def json_schema(cls: type[Any] = Config) -> dict[str, Any]:
    """JSON Schema (2020-12) of `cls`, derived from its fields and defaults."""
    schema = _schema_of(cls)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ztgate configuration"
    return schema


def _schema_of(tp: Any) -> dict[str, Any]:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        props = {f.name: _schema_of(hints[f.name]) for f in dataclasses.fields(tp)}
        return {"type": "object", "additionalProperties": False, "properties": props}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (list, tuple):
        return {"type": "array", "items": _schema_of(get_args(tp)[0])}
    if origin in (types.UnionType, typing.Union):
        return {"anyOf": [_schema_of(a) for a in get_args(tp)]}
    if tp is type(None):
        return {"type": "null"}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "string"}
    return {"type": simple[tp]}
