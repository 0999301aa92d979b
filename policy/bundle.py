"""Policy bundles in OPA's format: a directory or a ``.tar.gz`` of Rego modules,
``data.json`` documents and a ``.manifest``.

OPA bundle format (https://www.openpolicyagent.org/docs/management-bundles):
``.manifest`` is JSON with ``revision`` (string) and ``roots`` (path prefixes
the bundle owns); ``data.json`` files are merged into ``data`` at the path of
their directory; ``*.rego`` files are modules; ``.signatures.json`` (see
`policy.signing`) signs the other files. `Bundle` is the in-memory value every
engine, the reloader and the CLI share; it never touches the filesystem after
loading, so what was verified is what is evaluated.

Limits keep a hostile tarball from exhausting memory: at most `MAX_FILES`
members, `MAX_FILE_SIZE` each and `MAX_TOTAL_SIZE` in all; no links, no
absolute paths, no ``..``.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Final

__all__ = ["MANIFEST", "SIGNATURES", "Bundle", "BundleError", "read_tree"]

MANIFEST: Final = ".manifest"
SIGNATURES: Final = ".signatures.json"
MAX_FILES: Final = 1000
MAX_FILE_SIZE: Final = 8 * 1024 * 1024
MAX_TOTAL_SIZE: Final = 64 * 1024 * 1024


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the file at fault."""


@dataclass(frozen=True)
class Bundle:
    revision: str
    roots: tuple[str, ...]
    files: Mapping[str, bytes] = field(default_factory=dict)
    """Every file by its bundle path (``/``-separated, no leading slash), signatures
    included: exactly the bytes that were (or will be) signed."""

    @property
    def modules(self) -> dict[str, str]:
        """Rego modules by path (``*.rego``, tests included)."""
        return {p: b.decode("utf-8") for p, b in sorted(self.files.items()) if p.endswith(".rego")}

    @property
    def policy_modules(self) -> dict[str, str]:
        """Modules without the ``*_test.rego`` unit tests."""
        return {p: s for p, s in self.modules.items() if not p.endswith("_test.rego")}

    @property
    def data(self) -> dict[str, Any]:
        """The merged data document: each ``data.json`` at its directory's path."""
        merged: dict[str, Any] = {}
        for path, raw in sorted(self.files.items()):
            if PurePosixPath(path).name != "data.json":
                continue
            try:
                doc = json.loads(raw)
            except ValueError as exc:
                raise BundleError(f"{path}: not JSON ({exc})") from None
            except RecursionError:
                raise BundleError(f"{path}: nested too deeply") from None
            parts = PurePosixPath(path).parent.parts
            _merge_at(merged, parts, doc, path)
        return merged

    @classmethod
    def build(
        cls, files: Mapping[str, bytes], *, revision: str, roots: tuple[str, ...] = ("",)
    ) -> Bundle:
        """A bundle of `files` with a fresh ``.manifest`` (any old one and signatures dropped)."""
        manifest = json.dumps({"revision": revision, "roots": list(roots)}, sort_keys=True)
        kept = {p: b for p, b in files.items() if p not in (MANIFEST, SIGNATURES)}
        return cls.from_files({**kept, MANIFEST: manifest.encode()})

    @classmethod
    def from_files(cls, files: Mapping[str, bytes]) -> Bundle:
        checked = {_check_path(p): b for p, b in files.items()}
        if len(checked) > MAX_FILES:
            raise BundleError(f"more than {MAX_FILES} files")
        if sum(len(b) for b in checked.values()) > MAX_TOTAL_SIZE:
            raise BundleError(f"larger than {MAX_TOTAL_SIZE} bytes")
        revision, roots = _manifest(checked.get(MANIFEST))
        for path in checked:
            if path.endswith(".rego") or PurePosixPath(path).name == "data.json":
                try:
                    checked[path].decode("utf-8")
                except UnicodeDecodeError:
                    raise BundleError(f"{path}: not UTF-8") from None
        bundle = cls(revision, roots, MappingProxyType(dict(sorted(checked.items()))))
        bundle.data  # noqa: B018 - parse every data.json now: a bad one fails the load
        return bundle

    @classmethod
    def from_dir(cls, directory: Path) -> Bundle:
        """Load a bundle directory (see `read_tree`); it must hold a ``.manifest``."""
        return cls.from_files(read_tree(directory))

    @classmethod
    def from_tarball(cls, data: bytes) -> Bundle:
        """Read a ``.tar.gz`` bundle; only regular files are accepted."""
        files: dict[str, bytes] = {}
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                for member in tar:
                    if member.isdir():
                        continue
                    if not member.isfile():
                        raise BundleError(f"{member.name}: only regular files are allowed")
                    if member.size > MAX_FILE_SIZE:
                        raise BundleError(f"{member.name}: larger than {MAX_FILE_SIZE} bytes")
                    name = _check_path(member.name)
                    if name in files:  # which copy would count is ambiguous: refuse
                        raise BundleError(f"{name}: appears twice in the tarball")
                    handle = tar.extractfile(member)
                    assert handle is not None
                    files[name] = handle.read()
                    if len(files) > MAX_FILES:
                        raise BundleError(f"more than {MAX_FILES} files")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BundleError(f"not a gzip tarball: {exc}") from None
        return cls.from_files(files)

    def to_tarball(self) -> bytes:
        """The bundle as a reproducible ``.tar.gz`` (sorted, zero mtimes, root-owned)."""
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
            for path, data in sorted(self.files.items()):
                info = tarfile.TarInfo("/" + path)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
        return out.getvalue()

    def with_files(self, extra: Mapping[str, bytes]) -> Bundle:
        return Bundle.from_files({**self.files, **extra})


def read_tree(directory: Path) -> dict[str, bytes]:
    """A bundle directory's files by bundle path, within the size limits. Dot-files
    other than the manifest and the signatures are skipped; links are refused."""
    if not directory.is_dir():
        raise BundleError(f"{directory}: not a directory")
    files: dict[str, bytes] = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_symlink():
            raise BundleError(f"{rel}: symbolic links are not allowed")
        if not path.is_file():
            continue
        hidden = any(part.startswith(".") for part in PurePosixPath(rel).parts)
        if hidden and rel not in (MANIFEST, SIGNATURES):
            continue
        if path.stat().st_size > MAX_FILE_SIZE:
            raise BundleError(f"{rel}: larger than {MAX_FILE_SIZE} bytes")
        files[rel] = path.read_bytes()
        if len(files) > MAX_FILES:
            raise BundleError(f"more than {MAX_FILES} files")
    return files


def _check_path(path: str) -> str:
    clean = path.lstrip("/")
    parts = PurePosixPath(clean).parts
    if not clean or "\\" in clean or any(p in ("", ".", "..") for p in parts) or "\0" in clean:
        raise BundleError(f"{path!r}: not a safe relative path")
    return "/".join(parts)


def _manifest(raw: bytes | None) -> tuple[str, tuple[str, ...]]:
    if raw is None:
        raise BundleError(f"{MANIFEST}: missing (a bundle must name its revision)")
    try:
        doc = json.loads(raw)
    except ValueError:
        raise BundleError(f"{MANIFEST}: not JSON") from None
    if not isinstance(doc, dict):
        raise BundleError(f"{MANIFEST}: not a JSON object")
    revision = doc.get("revision")
    if not isinstance(revision, str) or not revision or len(revision) > 128:
        raise BundleError(f"{MANIFEST}: revision must be a non-empty string")
    roots = doc.get("roots", [""])
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise BundleError(f"{MANIFEST}: roots must be a list of strings")
    return revision, tuple(roots)


def _merge_at(target: dict[str, Any], parts: tuple[str, ...], doc: Any, path: str) -> None:
    node = target
    for part in parts:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise BundleError(f"{path}: conflicts with data at {'/'.join(parts)}")
        node = child
    if not isinstance(doc, dict):
        where = "the root data.json" if not parts else "data.json"
        raise BundleError(f"{path}: {where} must be an object")
    for key, value in doc.items():
        if key in node:
            raise BundleError(f"{path}: key {key!r} defined twice")
        node[key] = value
