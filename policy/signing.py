"""Bundle signatures in OPA's format (``.signatures.json``), signed with SM2 or ES256.

Format (https://www.openpolicyagent.org/docs/management-bundles#signing):
``.signatures.json`` is ``{"signatures": ["<compact JWS>"]}`` with exactly one
JWS. Its header carries ``alg`` and ``kid``; its payload is
``{"files": [{"name", "hash", "algorithm"}, ...], "keyid"?, "scope"?, "iat"?,
"iss"?}`` where ``files`` lists every file of the bundle except the signatures
file itself, by its bundle path without a leading slash.

Hashes (hex). Rego and other files: the hash of their bytes. Structured files
(``data.json`` at any depth and ``.manifest``): the hash of a canonical form,
as OPA does (v1/bundle/hash.go, verify.go) — the document parsed with numbers
kept exactly as written (Go's ``UseNumber``), objects with sorted keys, no
whitespace, strings escaped as Go's ``encoding/json`` does with HTML escaping
off. Decision: follow OPA here rather than hash raw bytes, so that a bundle
signed with ``opa sign --signing-alg ES256`` verifies in ztgate and an ES256
bundle signed by ztgate verifies in OPA; it costs nothing in safety because
the canonical form is computed from the very parse the engine consumes
(`Bundle.data`), and ambiguous JSON (duplicate keys, ``NaN``/``Infinity``,
lone surrogates) is refused rather than canonicalised. ``data.yaml`` is not
treated as structured (ztgate bundles do not load YAML data).

Hash algorithms: ``SHA-256`` (OPA's default and ours), ``SHA-384``,
``SHA-512``, and ``SM3`` (a ztgate extension for an all-GM/T profile; OPA
would not know it). MD5 and SHA-1, which OPA still accepts, are refused.

Signature algorithms: ``SM2SM3`` (the default key type; see `crypto.jose`)
and ``ES256``. The header ``alg`` must be the one implied by the key the
``kid`` names (RFC 8725 §3.1) — `crypto.jose.verify_jws` enforces that and
refuses ``none``, HS*, RS* and ``crit`` outright.

Verification refuses, each with a `BundleSignatureError` naming the reason
(``code``): an unsigned bundle, a malformed or oversized signatures file, more
than one signature, an unknown ``kid``, an ``alg`` that does not match the
key, a bad signature, a payload ``keyid`` that contradicts the header
``kid``, a scope mismatch, duplicate or malformed file entries, a listed file
missing, a present file not listed, and a hash mismatch. Digests are compared
in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any, Final, Literal, NoReturn

from crypto import jose, sm3
from crypto import keys as ckeys
from policy.bundle import MANIFEST, SIGNATURES, Bundle, BundleError

__all__ = [
    "DEFAULT_HASH",
    "HASH_ALGORITHMS",
    "MAX_SIGNATURES_SIZE",
    "BundleSignatureError",
    "canonical_json",
    "file_digest",
    "sign_bundle",
    "verify_bundle",
]

SignatureErrorCode = Literal[
    "unsigned",
    "malformed",
    "unknown_kid",
    "alg_mismatch",
    "bad_signature",
    "scope_mismatch",
    "bad_file_entry",
    "duplicate_file",
    "missing_file",
    "unlisted_file",
    "hash_mismatch",
]

DEFAULT_HASH: Final = "SHA-256"
HASH_ALGORITHMS: Final[Mapping[str, Callable[[bytes], bytes]]] = {
    "SHA-256": lambda b: hashlib.sha256(b).digest(),
    "SHA-384": lambda b: hashlib.sha384(b).digest(),
    "SHA-512": lambda b: hashlib.sha512(b).digest(),
    "SM3": sm3.digest,
}
_DIGEST_SIZE: Final = {"SHA-256": 32, "SHA-384": 48, "SHA-512": 64, "SM3": 32}
SIGNING_KEY_ALGORITHMS: Final[frozenset[ckeys.Algorithm]] = frozenset({"sm2", "ec-p256"})
MAX_SIGNATURES_SIZE: Final = 2 * 1024 * 1024
"""Bound on ``.signatures.json`` (and so on the JWS) before anything is parsed:
enough for `policy.bundle.MAX_FILES` entries with long names."""
_HEX: Final = re.compile(r"[0-9a-fA-F]+")
_ENTRY_KEYS: Final = frozenset({"name", "hash", "algorithm"})
_PAYLOAD_KEYS: Final = frozenset({"files", "keyid", "scope", "iat", "iss"})


class BundleSignatureError(BundleError):
    """A signature problem; ``code`` is machine readable, the message says which file."""

    def __init__(self, code: SignatureErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: SignatureErrorCode = code


# -- canonical JSON (OPA's hash input for structured files) ---------------------------


class _Number(str):
    """A JSON number exactly as written: OPA decodes with ``UseNumber`` and re-emits it."""

    __slots__ = ()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate object key (ambiguous JSON)")
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _string(value: str) -> str:
    # Python escapes exactly what Go's encoder (SetEscapeHTML(false), Go >= 1.22)
    # escapes, in the same spelling, except U+2028/U+2029 which Go always escapes.
    return (
        json.dumps(value, ensure_ascii=False)
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _emit(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(sorted(value)):  # code-point order == Go's byte order
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _emit(value[key], out)
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _emit(item, out)
        out.append("]")
    elif isinstance(value, _Number):
        out.append(str.__str__(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    else:  # pragma: no cover - json.loads yields nothing else
        raise TypeError(type(value).__name__)


def canonical_json(data: bytes) -> bytes:
    """OPA's canonical form of a structured file: what its signature hash covers.

    Raises ``ValueError`` for anything that is not unambiguous UTF-8 JSON.
    """
    text = data.decode("utf-8")  # UnicodeDecodeError is a ValueError
    text = text.removeprefix("\ufeff")  # OPA strips a UTF-8 BOM (RFC 8259 §8.1)
    try:
        doc = json.loads(
            text,
            parse_int=_Number,
            parse_float=_Number,
            parse_constant=_no_constants,
            object_pairs_hook=_no_duplicates,
        )
        out: list[str] = []
        _emit(doc, out)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return "".join(out).encode("utf-8")  # lone surrogates raise UnicodeEncodeError


def _is_structured(path: str) -> bool:
    return PurePosixPath(path).name in (MANIFEST, "data.json")


def file_digest(path: str, data: bytes, algorithm: str = DEFAULT_HASH) -> bytes:
    """The digest a signature records for bundle file `path` (canonical form for JSON)."""
    hasher = HASH_ALGORITHMS.get(algorithm)
    if hasher is None:
        raise BundleSignatureError("bad_file_entry", f"{path}: unsupported hash {algorithm!r}")
    if _is_structured(path):
        try:
            data = canonical_json(data)
        except ValueError as exc:
            raise BundleSignatureError(
                "malformed", f"{path}: not canonicalisable JSON ({exc})"
            ) from None
    return hasher(data)


# -- signing ------------------------------------------------------------------------------


def sign_bundle(
    bundle: Bundle,
    key: ckeys.PrivateKey,
    *,
    kid: str,
    scope: str | None = None,
    hash_algorithm: str = DEFAULT_HASH,
) -> Bundle:
    """`bundle` with a fresh ``.signatures.json`` over all its other files.

    The JWS header carries ``alg`` (from `key`: ``SM2SM3`` or ``ES256``), ``kid``
    and ``typ: JWT`` as OPA's docs show; the payload carries the deprecated
    ``keyid`` claim too, as ``opa sign`` does, for older verifiers.
    """
    if not isinstance(key, ckeys.PrivateKey) or key.algorithm not in SIGNING_KEY_ALGORITHMS:
        raise BundleSignatureError("alg_mismatch", "bundles are signed with an SM2 or P-256 key")
    if hash_algorithm not in HASH_ALGORITHMS:
        raise BundleSignatureError("bad_file_entry", f"unsupported hash {hash_algorithm!r}")
    files = [
        {
            "name": path,
            "hash": file_digest(path, data, hash_algorithm).hex(),
            "algorithm": hash_algorithm,
        }
        for path, data in sorted(bundle.files.items())
        if path != SIGNATURES
    ]
    payload: dict[str, Any] = {"files": files, "keyid": kid}
    if scope is not None:
        payload["scope"] = scope
    token = jose.sign_jws(
        json.dumps(payload, separators=(",", ":"), sort_keys=True).encode(),
        key,
        kid=kid,
        headers={"typ": "JWT"},
    )
    doc = json.dumps({"signatures": [token]}, indent=1).encode()
    return bundle.with_files({SIGNATURES: doc})


# -- verification ---------------------------------------------------------------------------


def _fail(code: SignatureErrorCode, message: str) -> NoReturn:
    raise BundleSignatureError(code, f"{SIGNATURES}: {message}")


def _token(raw: bytes | None) -> str:
    if raw is None:
        _fail("unsigned", "missing: the bundle is not signed")
    if len(raw) > MAX_SIGNATURES_SIZE:
        _fail("malformed", f"larger than {MAX_SIGNATURES_SIZE} bytes")
    try:
        doc = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        _fail("malformed", "not a JSON object")
    if not isinstance(doc, dict) or not doc.keys() <= {"signatures", "plugin"}:
        _fail("malformed", "must be an object with a 'signatures' member only")
    if doc.get("plugin"):
        _fail("malformed", "signing plugins are not supported")
    sigs = doc.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        _fail("unsigned", "no signature in 'signatures'")
    if len(sigs) != 1:
        _fail("malformed", "exactly one signature is supported (as in OPA)")
    if not isinstance(sigs[0], str):
        _fail("malformed", "the signature must be a compact JWS string")
    token: str = sigs[0]
    return token


_JOSE_CODES: Final[Mapping[str, SignatureErrorCode]] = {
    "unknown_kid": "unknown_kid",
    "alg_not_allowed": "alg_mismatch",
    "invalid_key": "alg_mismatch",
    "invalid_signature": "bad_signature",
}


def _verified_payload(token: str, trusted: Mapping[str, ckeys.PublicKey]) -> tuple[str, Any]:
    """(kid, payload) once the JWS verifies under the key its ``kid`` names."""
    seen: list[str] = []

    def resolve(kid: str | None, alg: str) -> ckeys.PublicKey:
        if kid is None:
            raise jose.JoseError("unknown_kid", "the JWS header has no kid")
        public = trusted.get(kid)
        if public is None or public.algorithm not in SIGNING_KEY_ALGORITHMS:
            raise jose.JoseError("unknown_kid", f"no trusted bundle key {kid!r}")
        seen.append(kid)
        return public

    try:
        raw = jose.verify_jws(token, key=resolve, max_length=MAX_SIGNATURES_SIZE)
    except jose.JoseError as exc:
        _fail(_JOSE_CODES.get(exc.code, "malformed"), f"signature refused: {exc} ({exc.code})")
    try:
        payload = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        _fail("malformed", "signed payload is not JSON")
    return seen[-1], payload


def _entries(payload: Any, kid: str, scope: str | None) -> dict[str, tuple[str, bytes]]:
    if not isinstance(payload, dict) or not payload.keys() <= _PAYLOAD_KEYS:
        _fail("malformed", f"signed payload must be an object with members {sorted(_PAYLOAD_KEYS)}")
    keyid = payload.get("keyid")
    if keyid is not None and keyid != kid:
        _fail("unknown_kid", f"payload keyid {keyid!r} contradicts header kid {kid!r}")
    if payload.get("scope") != scope:
        _fail("scope_mismatch", f"scope {payload.get('scope')!r} is not {scope!r}")
    files = payload.get("files")
    if not isinstance(files, list) or not files:
        _fail("bad_file_entry", "signed payload lists no files")
    out: dict[str, tuple[str, bytes]] = {}
    for entry in files:
        if not isinstance(entry, dict) or entry.keys() != _ENTRY_KEYS:
            _fail("bad_file_entry", "each file entry needs exactly name, hash and algorithm")
        name, digest, algorithm = entry["name"], entry["hash"], entry["algorithm"]
        if not isinstance(name, str) or not isinstance(algorithm, str):
            _fail("bad_file_entry", "file entry name and algorithm must be strings")
        size = _DIGEST_SIZE.get(algorithm)
        if size is None:
            _fail("bad_file_entry", f"{name!r}: hash algorithm {algorithm!r} not accepted")
        if not isinstance(digest, str) or len(digest) != 2 * size or not _HEX.fullmatch(digest):
            _fail("bad_file_entry", f"{name!r}: hash is not {size} bytes of hex")
        if name in out:
            _fail("duplicate_file", f"{name!r} listed twice")
        out[name] = (algorithm, bytes.fromhex(digest))
    return out


def verify_bundle(
    bundle: Bundle, *, keys: Mapping[str, ckeys.PublicKey], scope: str | None = None
) -> Bundle:
    """`bundle` itself once its signature and every file hash check out.

    `keys` maps ``kid`` to trusted public keys (SM2 or P-256). `scope`, when
    given, must equal the payload's ``scope``; when ``None``, a payload
    carrying a scope is refused (OPA compares the two strings exactly).
    Anything wrong raises `BundleSignatureError`; nothing is partially trusted.
    """
    token = _token(bundle.files.get(SIGNATURES))
    kid, payload = _verified_payload(token, keys)
    listed = _entries(payload, kid, scope)
    present = {p for p in bundle.files if p != SIGNATURES}
    missing = sorted(listed.keys() - present)
    if missing:
        _fail("missing_file", f"signed file(s) missing from the bundle: {missing[:5]}")
    unlisted = sorted(present - listed.keys())
    if unlisted:
        _fail("unlisted_file", f"file(s) not covered by the signature: {unlisted[:5]}")
    for path in sorted(present):
        algorithm, expected = listed[path]
        actual = file_digest(path, bundle.files[path], algorithm)
        if not hmac.compare_digest(actual, expected):
            _fail("hash_mismatch", f"{path}: digest does not match the signed hash")
    return bundle
