"""Decision logs in OPA's format, with sensitive input masked, as JSON lines on disk.

Event (https://www.openpolicyagent.org/docs/management-decision-logs): one JSON
object per decision with ``decision_id`` (UUID4), ``path`` (the decision rule,
``ztgate/main/decision``), ``input`` (masked), ``result`` (the decision as the
policy returned it: allow, reasons, obligations), ``timestamp`` (RFC 3339,
UTC, nanoseconds — OPA's spelling), ``bundles`` (``{name: {"revision"}}``),
``labels``, ``metrics``, ``requested_by``, and ``erased``/``masked``: the JSON
Pointers (RFC 6901) of the fields removed or replaced, as OPA records them.

Masking. A rule is a JSON Pointer under ``/input`` or ``/result`` (OPA's
restriction) with an operation: ``remove`` (OPA's erase), ``upsert`` (OPA's
replace-with-value), and two ztgate operations — ``hash``, a keyed pseudonym
``pseud:<hex>`` = HMAC-SM3(pseudonym key, JSON value) truncated to 128 bits, so
the security team can follow one customer or device across decisions without
seeing the identifier (without a key configured it degrades to ``**MASKED**``:
an unkeyed hash of a guessable ID is no mask) — and ``redact_digits``, which
replaces runs of 6+ digits (account, card, phone and ID numbers — JR/T
0171-2020 C2 data) in a string with ``*``. A ``*`` segment matches every member
or element (ztgate extension, for lists and maps). Object keys are matched
case-insensitively (HTTP header names). Pointers to missing data are ignored.

Default masks (`DEFAULT_MASKS`), chosen for a bank: credentials are removed —
credential headers, OAuth/credential query parameters, and as a safety net any
input member whose *name* looks like a credential (``*token*``, ``*secret*``,
``*password*``, ``*session*``, ``authorization``, ``cookie``, ``pin``, ``otp``...)
even though the input contract already excludes them; personal identifiers are
pseudonymised — ``identity.subject``, ``device.id`` and route parameters
(account IDs); digit runs in the request path, query values and consented
resources are redacted. Kept as is, because investigations need them: client
address, TLS facts, identity kind/acr/amr/scopes/client_id, consent id and
status, device trust, risk, route, time.

Writing. `DecisionLog.record` never blocks a decision: it stamps the time and
decision ID and puts the raw pieces on a bounded queue (when full, the event is
dropped and counted); a writer thread masks, serialises and appends them to the
file (``O_APPEND``, mode 0600, no symlinks), one ``write`` per batch of whole
lines, rotating by size (``path.1`` … ``path.N``). An event larger than
`max_event_bytes` keeps its metadata and result but its input is replaced by a
note (and ``/input`` is listed as erased). A crash can at worst tear the last
line; on open the writer cuts a torn tail back to the last newline, so the
file is always valid JSON lines. The caller must not mutate an input it has
logged.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import logging
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from crypto import sm3
from policy.decision import Decision
from policy.engine import DEFAULT_ENTRYPOINT

__all__ = ["DEFAULT_MASKS", "DecisionLog", "MaskRule", "build_event", "mask_event", "rfc3339_ns"]

log = logging.getLogger("ztgate.policy.decision_log")

MaskOp = Literal["remove", "upsert", "hash", "redact_digits"]
MASKED: Final = "**MASKED**"
_DIGITS: Final = re.compile(r"\d{6,}")
_SECRET_NAMES: Final = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "dpop", "x-api-key"}
    | {"api_key", "apikey", "pin", "otp", "cvv", "cvv2", "cvn", "passwd", "code_verifier"}
)
_SECRET_WORDS: Final = ("token", "secret", "password", "credential", "session")


@dataclass(frozen=True)
class MaskRule:
    """One masking rule: an RFC 6901 pointer under /input or /result, and an operation."""

    path: str
    op: MaskOp = "remove"
    value: Any = MASKED
    """The replacement for ``upsert``."""

    def __post_init__(self) -> None:
        if self.op not in ("remove", "upsert", "hash", "redact_digits"):
            raise ValueError(f"unknown mask op {self.op!r}")
        parts = _pointer(self.path)
        if not parts or parts[0] not in ("input", "result") or len(parts) < 2:
            raise ValueError(f"mask path {self.path!r} must point below /input or /result")

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any]) -> MaskRule:
        """A rule from OPA's mask forms: a pointer string, or ``{"op", "path", "value"}``."""
        if isinstance(spec, str):
            return cls(spec)
        return cls(str(spec["path"]), spec.get("op", "remove"), spec.get("value", MASKED))


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"mask path {path!r} is not a JSON Pointer")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


_CREDENTIAL_HEADERS: Final = ("authorization", "proxy-authorization", "cookie", "dpop", "x-api-key")
_CREDENTIAL_QUERY: Final = ("access_token", "id_token", "refresh_token", "code", "password")
_CREDENTIAL_CLIENT: Final = ("code_verifier", "client_secret", "client_assertion")
DEFAULT_MASKS: Final[tuple[MaskRule, ...]] = (
    *(MaskRule(f"/input/request/headers/{h}") for h in _CREDENTIAL_HEADERS),
    *(MaskRule(f"/input/request/query/{q}") for q in _CREDENTIAL_QUERY + _CREDENTIAL_CLIENT),
    MaskRule("/input/identity/subject", "hash"),
    MaskRule("/input/device/id", "hash"),
    MaskRule("/input/route/params/*", "hash"),
    MaskRule("/input/request/path", "redact_digits"),
    MaskRule("/input/request/query/*/*", "redact_digits"),
    MaskRule("/input/identity/consent/resources/*", "redact_digits"),
)
"""Credentials removed; personal identifiers pseudonymised; digit runs redacted."""


def rfc3339_ns(ns: int) -> str:
    """``2024-01-02T03:04:05.123456789Z`` — OPA's timestamp spelling."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def build_event(
    *,
    decision_id: str,
    input_doc: Any,
    result: Any,
    revision: str,
    timestamp_ns: int,
    path: str = DEFAULT_ENTRYPOINT,
    bundle_name: str = "ztgate",
    labels: Mapping[str, str] | None = None,
    metrics: Mapping[str, int | float] | None = None,
    requested_by: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An OPA decision-log event (unmasked; see `mask_event`)."""
    event: dict[str, Any] = {
        "decision_id": decision_id,
        "path": path,
        "input": input_doc,
        "result": result,
        "timestamp": rfc3339_ns(timestamp_ns),
        "bundles": {bundle_name: {"revision": revision}},
        "labels": dict(labels or {}),
    }
    if metrics:
        event["metrics"] = dict(metrics)
    if requested_by is not None:
        event["requested_by"] = requested_by
    for key, value in (extra or {}).items():
        if key == "labels":
            event["labels"].update(value)  # e.g. {"mode": "shadow"} beside the configured ones
        else:
            event[key] = value
    return event


def decision_result(decision: Decision) -> dict[str, Any]:
    """The decision as the policy returned it (the revision is in ``bundles``)."""
    result = decision.as_json()
    result.pop("revision", None)
    return result


def _pseudonym(key: bytes | None, value: Any) -> str:
    if key is None:
        return MASKED
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    return "pseud:" + sm3.hmac(key, data)[:16].hex()


class _Masker:
    def __init__(self, rules: Iterable[MaskRule], key: bytes | None, by_name: bool) -> None:
        self.rules = [(rule, _pointer(rule.path)) for rule in rules]
        self.key = key
        self.by_name = by_name

    def apply(self, event: dict[str, Any]) -> dict[str, Any]:
        """A masked copy of `event`, with ``erased``/``masked`` pointer lists."""
        out = dict(event)
        for top in ("input", "result"):
            if top in out:
                out[top] = copy.deepcopy(out[top])
        erased: set[str] = set()
        masked: set[str] = set()
        for rule, parts in self.rules:
            self._walk(out, parts, "", rule, erased, masked)
        if self.by_name and isinstance(out.get("input"), dict | list):
            _erase_by_name(out["input"], "/input", erased)
        if erased:
            out["erased"] = sorted(erased)
        if masked:
            out["masked"] = sorted(masked)
        return out

    def _walk(
        self,
        node: Any,
        parts: list[str],
        where: str,
        rule: MaskRule,
        erased: set[str],
        masked: set[str],
    ) -> None:
        head, rest = parts[0], parts[1:]
        for key in _matches(node, head):
            pointer = f"{where}/{_escape(str(key))}"
            if rest:
                self._walk(node[key], rest, pointer, rule, erased, masked)
            elif rule.op == "remove":
                if isinstance(node, dict):
                    del node[key]
                else:  # list element: blank it rather than shift its neighbours
                    node[key] = None
                erased.add(pointer)
            else:
                node[key] = self._replace(node[key], rule)
                masked.add(pointer)

    def _replace(self, value: Any, rule: MaskRule) -> Any:
        if rule.op == "upsert":
            return rule.value
        if rule.op == "hash":
            return None if value is None else _pseudonym(self.key, value)
        if isinstance(value, str):  # redact_digits
            return _DIGITS.sub(lambda m: "*" * len(m.group()), value)
        return value


def _matches(node: Any, head: str) -> list[Any]:
    if isinstance(node, dict):
        if head == "*":
            return list(node)
        lowered = head.lower()
        return [k for k in node if isinstance(k, str) and k.lower() == lowered]
    if isinstance(node, list):
        if head == "*":
            return list(range(len(node)))
        if head.isdigit() and int(head) < len(node) and (head == "0" or head[0] != "0"):
            return [int(head)]
    return []


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(word in lowered for word in _SECRET_WORDS)


def _erase_by_name(root: Any, where: str, erased: set[str]) -> None:
    stack: list[tuple[Any, str]] = [(root, where)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                pointer = f"{path}/{_escape(str(key))}"
                if isinstance(key, str) and _secret_name(key):
                    del node[key]
                    erased.add(pointer)
                else:
                    stack.append((node[key], pointer))
        elif isinstance(node, list):
            stack.extend((item, f"{path}/{i}") for i, item in enumerate(node))


def mask_event(
    event: dict[str, Any],
    rules: Iterable[MaskRule] = DEFAULT_MASKS,
    *,
    pseudonym_key: bytes | None = None,
    mask_secret_names: bool = True,
) -> dict[str, Any]:
    """A masked copy of `event` (the original is not changed)."""
    return _Masker(rules, pseudonym_key, mask_secret_names).apply(event)


# -- the writer ---------------------------------------------------------------------------

_STOP: Final = object()


@dataclass(frozen=True)
class _Pending:
    decision_id: str
    timestamp_ns: int
    input_doc: Any
    result: Any
    revision: str
    metrics: Mapping[str, int | float] | None
    requested_by: str | None
    extra: Mapping[str, Any] | None


class DecisionLog:
    """Masked OPA decision-log events appended to `path` by a background thread.

    `masks`: rules (or OPA mask specs) replacing `DEFAULT_MASKS`; pass
    ``DEFAULT_MASKS + (...)`` to extend. `pseudonym_key`: the HMAC-SM3 key for
    ``hash`` masks (keep it secret and stable: rotating it breaks correlation).
    Rotation: when the file would exceed `max_bytes`, it becomes ``path.1`` and
    older ones shift, keeping `backups`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        masks: Iterable[MaskRule | str | Mapping[str, Any]] = DEFAULT_MASKS,
        pseudonym_key: bytes | None = None,
        mask_secret_names: bool = True,
        decision_path: str = DEFAULT_ENTRYPOINT,
        bundle_name: str = "ztgate",
        labels: Mapping[str, str] | None = None,
        max_bytes: int = 64 * 1024 * 1024,
        backups: int = 5,
        queue_size: int = 10_000,
        max_event_bytes: int = 256 * 1024,
        fsync: bool = False,
    ) -> None:
        if max_bytes <= 0 or backups < 0 or queue_size <= 0 or max_event_bytes <= 0:
            raise ValueError("max_bytes, queue_size, max_event_bytes > 0 and backups >= 0")
        rules = [m if isinstance(m, MaskRule) else MaskRule.parse(m) for m in masks]
        if pseudonym_key is not None and not pseudonym_key:
            raise ValueError("pseudonym_key must be non-empty")
        self.path = Path(path)
        self._masker = _Masker(rules, pseudonym_key, mask_secret_names)
        self._decision_path = decision_path
        self._bundle_name = bundle_name
        self._labels = dict(labels or {})
        self._max_bytes = max_bytes
        self._backups = backups
        self._max_event = max_event_bytes
        self._fsync = fsync
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    # -- the hot path ----------------------------------------------------------------------

    def record(
        self,
        input_doc: Any,
        decision: Decision,
        *,
        decision_id: str | None = None,
        metrics: Mapping[str, int | float] | None = None,
        requested_by: str | None = None,
        extra: Mapping[str, Any] | None = None,
        result: Any = None,
    ) -> str:
        """Queue one decision; returns its ``decision_id``. Never blocks, never raises.

        `result` overrides the logged result (default: `decision` as the policy
        returned it); `extra` adds top-level members (the shadow comparison).
        """
        decision_id = decision_id or str(uuid.uuid4())
        pending = _Pending(
            decision_id,
            time.time_ns(),
            input_doc,
            decision_result(decision) if result is None else result,
            decision.revision,
            metrics,
            requested_by,
            extra,
        )
        if self._closed:
            self.dropped += 1
            return decision_id
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            self.dropped += 1
        return decision_id

    # -- lifecycle -----------------------------------------------------------------------

    def flush(self) -> None:
        """Wait until everything queued so far is written (tests, shutdown)."""
        self._queue.join()

    def close(self) -> None:
        """Write what is queued, then stop the writer and close the file."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        with contextlib.suppress(OSError):
            os.close(self._fd)

    # -- the writer thread ------------------------------------------------------------------

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.path, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)
            _repair_tail(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < 512:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            lines = [self._line(item) for item in batch if item is not _STOP]
            self._write([line for line in lines if line])
            for _ in batch:
                self._queue.task_done()
            if stop:
                return

    def _line(self, item: _Pending) -> bytes:
        event = build_event(
            decision_id=item.decision_id,
            input_doc=item.input_doc,
            result=item.result,
            revision=item.revision,
            timestamp_ns=item.timestamp_ns,
            path=self._decision_path,
            bundle_name=self._bundle_name,
            labels=self._labels,
            metrics=item.metrics,
            requested_by=item.requested_by,
            extra=item.extra,
        )
        try:
            masked = self._masker.apply(event)
            line = _dumps(masked)
            if len(line) <= self._max_event:
                return line
            note: dict[str, Any] = {"ztgate_truncated": True, "size": len(line)}
        except (RecursionError, ValueError, TypeError) as exc:  # e.g. an absurdly deep input
            masked = self._masker.apply({**event, "input": None})
            note = {"ztgate_unloggable": type(exc).__name__}
        masked["input"] = note
        masked["erased"] = sorted({*masked.get("erased", ()), "/input"})
        try:
            return _dumps(masked)
        except Exception as exc:  # one bad event must not stop the log
            self.errors += 1
            log.warning(
                "decision log event dropped",
                extra={"event": "policy.decision_log_error", "error_type": type(exc).__name__},
            )
            return b""

    def _write(self, lines: list[bytes]) -> None:
        """Append whole lines, one ``write`` per run that fits before the next rotation."""
        done = 0
        try:
            while done < len(lines):
                room = self._max_bytes - self._size
                end, size = done, 0
                while end < len(lines) and (size + len(lines[end]) <= room or end == done):
                    size += len(lines[end])
                    end += 1
                if self._size and size > room:
                    self._rotate()
                    continue
                view = memoryview(b"".join(lines[done:end]))
                while view:
                    view = view[os.write(self._fd, view) :]
                if self._fsync:
                    os.fsync(self._fd)
                self._size += size
                self.written += end - done
                done = end
        except OSError as exc:
            self.errors += len(lines) - done
            log.error(
                "decision log write failed",
                extra={
                    "event": "policy.decision_log_error",
                    "errno": errno.errorcode.get(exc.errno or 0, ""),
                },
            )

    def _rotate(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        if self._backups:
            for n in range(self._backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            os.unlink(self.path)
        self._fd = self._open()
        self._size = 0


def _dumps(event: Mapping[str, Any]) -> bytes:
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=_unknown)
    return text.encode("utf-8", "backslashreplace") + b"\n"


def _unknown(value: object) -> str:
    return f"<{type(value).__name__}>"


def _repair_tail(fd: int) -> None:
    """Cut a line torn by a crash back to the last newline, so every line is whole."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    end = size
    chunk = 64 * 1024
    while end > 0:
        start = max(0, end - chunk)
        data = os.pread(fd, end - start, start)
        cut = data.rfind(b"\n")
        if cut >= 0:
            keep = start + cut + 1
            break
        end = start
    else:
        keep = 0
    if keep == size:
        return
    os.ftruncate(fd, keep)
    log.warning(
        "decision log had a torn last line; cut it",
        extra={"event": "policy.decision_log_repaired", "bytes_cut": size - keep},
    )
