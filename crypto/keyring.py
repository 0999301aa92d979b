"""Signing keys with ``kid``, rotation, a JWKS, and crash-safe persistence.

Life of a key: the first key is ``active`` (it signs). Later `generate` calls
add ``verify_only`` keys that keep their private half: published in the JWKS
ahead of use, so relying parties that cache the JWKS (RFC 7517 §5) already know
a key when `activate` starts signing with it. `rotate` = generate + activate.
The key that stops signing becomes ``verify_only`` *without* its private half —
it can never sign again, and a stolen backup cannot forge with it — and keeps
verifying tokens already issued until `retire` (no longer trusted, kept for
the record) or `remove`. ``kid`` defaults to the RFC 7638 thumbprint.

On disk (`save`/`load`): one file per key, mode 0600 — a PKCS#8 PEM
(``<kid>.key.pem``), or, given a `crypto.envelope` KEK ring, that PEM sealed
under context ``b"keyring:" + kid`` (``<kid>.key.sealed``); keys without a
private half are a public PEM (``<kid>.pub.pem``). ``keyring.json`` indexes
them with each key's thumbprint, checked on load so swapped files are caught.
Every file is written to a temporary name, fsync-ed, then `os.replace`-d,
index last: a crash leaves either the old ring or the new one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol, get_args

from crypto import keys
from crypto.errors import CryptoError, InvalidKey
from crypto.jose import JoseError

State = Literal["active", "verify_only", "retired"]
INDEX: Final = "keyring.json"
_KID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")  # safe as a file name: no dots, no slashes
_KEY_FILE_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}\.(key\.pem|key\.sealed|pub\.pem)")
_MAX_FILE: Final = 256 * 1024
_FIELDS: Final = ("kid", "algorithm", "state", "created_at", "thumbprint", "private", "sealed")


class Sealer(Protocol):
    """What `crypto.envelope.KeyEncryptionKeyRing` offers; any KEK ring will do."""

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes: ...

    def open(self, blob: bytes, *, context: bytes) -> bytes: ...


@dataclass(frozen=True)
class KeyEntry:
    """One key of the ring; ``key`` is None once the key may no longer sign."""

    kid: str
    key: keys.PrivateKey | None
    public: keys.PublicKey
    created_at: float
    state: State

    @property
    def alg(self) -> str:
        return keys.JWS_ALG[self.public.algorithm]


def _context(kid: str) -> bytes:
    return b"keyring:" + kid.encode("ascii")


def _file_name(kid: str, private: bool, sealed: bool) -> str:
    return f"{kid}.key.{'sealed' if sealed else 'pem'}" if private else f"{kid}.pub.pem"


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:  # mkstemp creates the file 0600 whatever the umask
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read(path: Path) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(_MAX_FILE + 1)
    if len(data) > _MAX_FILE:
        raise CryptoError(f"{path.name} is too large")
    return data


class KeyRing:
    """Thread-safe set of signing keys by kid; one active key signs."""

    def __init__(self, entries: Iterable[KeyEntry] = ()) -> None:
        items = list(entries)
        self._lock = threading.RLock()
        self._entries: dict[str, KeyEntry] = {e.kid: e for e in items}
        if len(self._entries) != len(items):
            raise InvalidKey("duplicate kid in the key ring")
        active = [e for e in items if e.state == "active"]
        if len(active) > 1 or any(e.key is None for e in active):
            raise InvalidKey("more than one active key, or an active key without its private key")

    # -- mutation ---------------------------------------------------------------------

    def generate(self, algorithm: keys.Algorithm = "sm2", kid: str | None = None) -> str:
        """Add a fresh key and return its kid: active if the ring has none, else verify-only."""
        private = keys.generate(algorithm)
        kid = private.public_key().thumbprint() if kid is None else kid
        if not isinstance(kid, str) or _KID_RE.fullmatch(kid) is None:
            raise InvalidKey("kid must be 1..64 characters of [A-Za-z0-9_-]")
        with self._lock:
            if kid in self._entries:
                raise InvalidKey(f"kid {kid!r} is already in the ring")
            state: State = "verify_only" if self.active else "active"
            entry = KeyEntry(kid, private, private.public_key(), time.time(), state)
            self._entries[kid] = entry
        return kid

    def activate(self, kid: str) -> None:
        """Make `kid` (which must still hold its private key) the signing key."""
        with self._lock:
            entry = self._entries.get(kid)
            if entry is None or entry.key is None or entry.state == "retired":
                raise InvalidKey(f"kid {kid!r} is not a key that can sign")
            for other in list(self._entries.values()):
                if other.state == "active" and other.kid != kid:
                    self._entries[other.kid] = dataclasses.replace(
                        other, key=None, state="verify_only"
                    )
            self._entries[kid] = dataclasses.replace(entry, state="active")

    def rotate(self, algorithm: keys.Algorithm = "sm2", *, kid: str | None = None) -> str:
        """New active key; the old active key only verifies from now on."""
        with self._lock:
            new = self.generate(algorithm, kid)
            self.activate(new)
        return new

    def retire(self, kid: str) -> None:
        """Stop trusting `kid` (tokens it signed now fail); its private half is dropped."""
        with self._lock:
            entry = self._get(kid)
            if entry.state == "active":
                raise InvalidKey("cannot retire the active key: rotate first")
            self._entries[kid] = dataclasses.replace(entry, key=None, state="retired")

    def remove(self, kid: str) -> None:
        with self._lock:
            if self._get(kid).state == "active":
                raise InvalidKey("cannot remove the active key: rotate first")
            del self._entries[kid]

    # -- queries ----------------------------------------------------------------------

    def _get(self, kid: str) -> KeyEntry:
        entry = self._entries.get(kid)
        if entry is None:
            raise JoseError("unknown_kid", f"kid {kid!r} is not in the key ring")
        return entry

    @property
    def entries(self) -> tuple[KeyEntry, ...]:
        with self._lock:
            return tuple(sorted(self._entries.values(), key=lambda e: (e.created_at, e.kid)))

    @property
    def active(self) -> KeyEntry | None:
        with self._lock:
            return next((e for e in self._entries.values() if e.state == "active"), None)

    def signing_key(self) -> tuple[str, keys.PrivateKey]:
        entry = self.active
        if entry is None or entry.key is None:
            raise InvalidKey("the key ring has no active key")
        return entry.kid, entry.key

    def public_key(self, kid: str) -> keys.PublicKey:
        """The verification key for `kid`; unknown and retired kids are `unknown_kid`."""
        with self._lock:
            entry = self._get(kid)
        if entry.state == "retired":
            raise JoseError("unknown_kid", f"kid {kid!r} is retired")
        return entry.public

    def resolver(self) -> Callable[[str | None, str], keys.PublicKey]:
        """For ``decode_jwt(key=...)``: a token must name its kid (RFC 7515 §4.1.4)."""

        def resolve(kid: str | None, alg: str) -> keys.PublicKey:
            if kid is None:
                raise JoseError("unknown_kid", "token has no kid")
            return self.public_key(kid)  # decode_jwt checks alg against this key

        return resolve

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """RFC 7517 §5 JWK Set of the keys that verify: public members only."""
        live = [e for e in self.entries if e.state != "retired"]
        return {
            "keys": [{**e.public.to_jwk(), "kid": e.kid, "use": "sig", "alg": e.alg} for e in live]
        }

    # -- persistence ------------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str], *, envelope: Sealer | None = None) -> None:
        """Write every key file, then the index; remove files no longer indexed."""
        root = Path(directory)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        index, wanted = [], {INDEX}
        for e in self.entries:
            sealed = e.key is not None and envelope is not None
            name = _file_name(e.kid, e.key is not None, sealed)
            if e.key is None:
                data = e.public.public_pem()
            else:
                pem = e.key.private_pem()
                data = envelope.seal(pem, context=_context(e.kid)) if envelope else pem
            _write_atomic(root / name, data)
            wanted.add(name)
            values = (e.kid, e.public.algorithm, e.state, e.created_at, e.public.thumbprint())
            index.append(dict(zip(_FIELDS, (*values, e.key is not None, sealed), strict=True)))
        doc = json.dumps({"version": 1, "keys": index}, indent=2).encode() + b"\n"
        _write_atomic(root / INDEX, doc)
        dir_fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        for path in root.iterdir():
            if path.name not in wanted and _KEY_FILE_RE.fullmatch(path.name):
                path.unlink()

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, envelope: Sealer | None = None) -> KeyRing:
        """Read a ring written by `save`; any inconsistency is a `CryptoError`."""
        root = Path(directory)
        try:
            doc = json.loads(_read(root / INDEX))
        except FileNotFoundError:
            raise CryptoError(f"no key ring index at {root / INDEX}") from None
        except (ValueError, RecursionError):
            raise CryptoError(f"key ring index {root / INDEX} is corrupt (not JSON)") from None
        if not isinstance(doc, dict) or doc.get("version") != 1:
            raise CryptoError("key ring index is corrupt: expected version 1")
        items = doc.get("keys")
        if not isinstance(items, list):
            raise CryptoError("key ring index is corrupt: 'keys' must be a list")
        try:
            return cls(_load_entry(root, item, envelope) for item in items)
        except InvalidKey as exc:
            raise CryptoError(f"key ring index is corrupt: {exc}") from None


def _load_entry(root: Path, item: Any, envelope: Sealer | None) -> KeyEntry:
    if not isinstance(item, dict) or set(item) != set(_FIELDS):
        raise CryptoError(f"key ring index is corrupt: entries need exactly {list(_FIELDS)}")
    kid, alg, state, created, thumbprint, private, sealed = (item[f] for f in _FIELDS)
    well_formed = (
        isinstance(kid, str)
        and _KID_RE.fullmatch(kid) is not None
        and alg in keys.ALGORITHMS
        and state in get_args(State)
        and type(created) in (int, float)
        and math.isfinite(created)
        and type(private) is bool
        and type(sealed) is bool
    )
    # Active keys sign, so they hold a private key; retired ones never do; only those seal.
    consistent = (private or state != "active") and not (private and state == "retired")
    if not well_formed or not consistent or (sealed and not private):
        raise CryptoError(f"key ring index is corrupt: bad entry for kid {kid!r}")
    if sealed and envelope is None:
        raise CryptoError(f"key {kid!r} is sealed: load with its KEK ring (envelope=)")
    if private and not sealed and envelope is not None:  # no downgrade to planted clear keys
        raise CryptoError(f"key {kid!r} is stored in clear: refusing clear keys with a KEK ring")
    name = _file_name(kid, private, sealed)
    try:
        data = _read(root / name)
        if sealed and envelope is not None:
            data = envelope.open(data, context=_context(kid))
        key = keys.load_private(data) if private else None
        public = key.public_key() if key else keys.load_public(data)
    except FileNotFoundError:
        raise CryptoError(f"key ring is missing {name}") from None
    except CryptoError as exc:
        raise CryptoError(f"key ring file {name} is unusable: {exc}") from None
    if public.algorithm != alg or public.thumbprint() != thumbprint:
        raise CryptoError(f"key ring file {name} does not hold the key the index names")
    return KeyEntry(kid, key, public, float(created), state)
