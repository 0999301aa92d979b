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

Masking is compiled once per log (`_Masker`): the rules become states keyed by
the member names they name, so an event costs a walk of the members the rules
reach plus one scan of the input's names (the name-based safety net), and
copies only what changes; tests/policy/test_decision_log_masking.py checks it
against the plain reading (each rule walked in turn over a deep copy).

Writing. `DecisionLog.record` never blocks a decision: it stamps the time and
decision ID and appends the raw pieces to a bounded in-memory queue; a writer
thread wakes every `write_interval` (50 ms; sooner once 512 events wait),
masks, serialises and appends them to the file (``O_APPEND``, mode 0600, no
symlinks), one ``write`` per batch of whole lines, rotating by size (``path.1``
… ``path.N``). When the queue is full (`queue_size` events behind: a stalled
disk) the event is dropped and counted; `DecisionLog.offer` says so, for a
caller that must not act on a decision it cannot audit (the edge agent turns
such an allow into a deny, docs/edge-agent.md). An event larger than
`max_event_bytes` keeps its metadata and result but its input is replaced by a
note (and ``/input`` is listed as erased). A crash loses what is queued (at
most about `write_interval` of decisions when the disk keeps up) and can at
worst tear the last line; on open the writer cuts a torn tail back to the last
newline, so the file is always valid JSON lines. The caller must not mutate an
input it has logged.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import functools
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

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


_GONE: Final = object()
"""A member a ``remove`` rule deleted (list elements are blanked to None instead)."""


@dataclass(frozen=True, slots=True)
class _State:
    """The rules whose pointer reaches one node, compiled: `steps`, in rule order,
    are either a rule that ends here (it masks this node) or a `_Down`: a run of
    rules that continue into this node's members."""

    steps: tuple[tuple[MaskRule | None, _Down | None], ...]


@dataclass(frozen=True, slots=True)
class _Down:
    """Where a run of rules goes next: the state of each member, by member name
    (lower case: names match case-insensitively) or list index; `star` for any
    other member (the rules whose next segment is ``*``), None when there are none."""

    star: _State | None
    named: dict[str, _State]
    indexed: dict[int, _State]


def _index(head: str) -> int | None:
    """The list index a pointer segment names (RFC 6901: no leading zeros), or None."""
    if head.isdigit() and (head == "0" or head[0] != "0"):
        with contextlib.suppress(ValueError):
            return int(head)
    return None


def _pointer_of(path: list[Any]) -> str:
    return "".join("/" + _escape(str(part)) for part in path)


@functools.lru_cache(maxsize=4096)
def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(word in lowered for word in _SECRET_WORDS)


class _Masker:
    """The configured rules compiled once into states (`_State`), so masking an event
    is one pass over the members the rules name — no copy of the whole document
    and no pointer strings but for what is masked. What it does is defined by the
    plain reading (rules applied one after the other, each walking its pointer,
    then the name-based erasure over the input); tests/policy hold that reading
    and check the two agree."""

    def __init__(self, rules: Iterable[MaskRule], key: bytes | None, by_name: bool) -> None:
        self.rules = tuple(rules)
        self._parts = [_pointer(rule.path) for rule in self.rules]
        self._states: dict[tuple[int, tuple[int, ...]], _State] = {}
        self._root = self._state(0, tuple(range(len(self.rules))))
        self._mac = None if key is None else sm3.HmacKey(key)
        self.by_name = by_name

    def _state(self, depth: int, rules: tuple[int, ...]) -> _State:
        state = self._states.get((depth, rules))
        if state is not None:
            return state
        steps: list[tuple[MaskRule | None, _Down | None]] = []
        run: list[int] = []
        for i in rules:
            if len(self._parts[i]) == depth:
                if run:
                    steps.append((None, self._down(depth, run)))
                    run = []
                steps.append((self.rules[i], None))
            else:
                run.append(i)
        if run:
            steps.append((None, self._down(depth, run)))
        state = self._states[(depth, rules)] = _State(tuple(steps))
        return state

    def _down(self, depth: int, run: list[int]) -> _Down:
        heads = {i: self._parts[i][depth] for i in run}
        star = tuple(i for i in run if heads[i] == "*")
        named: dict[str, list[int]] = {}
        indexed: dict[int, list[int]] = {}
        for i, head in heads.items():
            if head == "*":
                continue
            named.setdefault(head.lower(), []).append(i)
            index = _index(head)
            if index is not None:
                indexed.setdefault(index, []).append(i)

        def state(matched: list[int]) -> _State:
            return self._state(depth + 1, tuple(sorted({*star, *matched})))

        return _Down(
            self._state(depth + 1, star) if star else None,
            {name: state(matched) for name, matched in named.items()},
            {index: state(matched) for index, matched in indexed.items()},
        )

    def apply(self, event: dict[str, Any], *, names: bool = True) -> dict[str, Any]:
        """A masked copy of `event`, with ``erased``/``masked`` pointer lists. Members
        no rule touches are shared with `event`, never changed. `names`: False
        leaves out the name-based erasure (`line` decides whether it is needed)."""
        erased: set[str] = set()
        masked: set[str] = set()
        out = self._node(event, self._root, [], False, erased, masked)
        out = dict(event) if out is event else out
        if erased:
            out["erased"] = sorted(erased)
        if masked:
            out["masked"] = sorted(masked)
        if names and self.by_name:
            self._erase_names(out)
        return out

    def line(self, event: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The masked event and its JSON text. The name-based erasure walks the whole
        input, so it runs only when the text, lower-cased, holds a credential's
        name or word at all — a member so named shows there literally (JSON
        escapes none of their characters), so nothing it would erase is missed."""
        out = self.apply(event, names=False)
        text = _json(out)
        if self.by_name and _may_name_secrets(text):
            self._erase_names(out)
            text = _json(out)
        return out, text

    @staticmethod
    def _erase_names(out: dict[str, Any]) -> None:
        if not isinstance(out.get("input"), dict | list):
            return
        erased = set(out.get("erased", ()))
        out["input"] = _without_secret_names(out["input"], ["input"], erased)
        if erased:
            masked = out.pop("masked", None)
            out["erased"] = sorted(erased)
            if masked is not None:
                out["masked"] = masked  # the same member order with or without the walk

    def _node(
        self,
        value: Any,
        state: _State,
        path: list[Any],
        in_list: bool,
        erased: set[str],
        masked: set[str],
    ) -> Any:
        for rule, down in state.steps:
            if down is not None:
                value = self._members(value, down, path, erased, masked)
            elif rule is not None and rule.op == "remove":
                erased.add(_pointer_of(path))
                if not in_list:
                    return _GONE
                value = None  # a list element is blanked rather than shift its neighbours
            elif rule is not None:
                value = self._replace(value, rule)
                masked.add(_pointer_of(path))
        return value

    def _members(
        self, value: Any, down: _Down, path: list[Any], erased: set[str], masked: set[str]
    ) -> Any:
        out: Any = None
        if isinstance(value, dict):
            for key, state in self._dict_members(value, down):
                member = value[key]
                path.append(key)
                new = self._node(member, state, path, False, erased, masked)
                path.pop()
                if new is not member:
                    if out is None:
                        out = dict(value)
                    if new is _GONE:
                        del out[key]
                    else:
                        out[key] = new
        elif isinstance(value, list):
            if down.star is not None:
                pairs: Iterable[tuple[int, _State]] = (
                    (i, down.indexed.get(i, down.star)) for i in range(len(value))
                )
            else:
                pairs = sorted((i, s) for i, s in down.indexed.items() if i < len(value))
            for i, state in pairs:
                member = value[i]
                path.append(i)
                new = self._node(member, state, path, True, erased, masked)
                path.pop()
                if new is not member:
                    if out is None:
                        out = list(value)
                    out[i] = new
        return value if out is None else out

    @staticmethod
    def _dict_members(value: dict[Any, Any], down: _Down) -> Iterable[tuple[Any, _State]]:
        """The members of `value` the rules go on into, with their states. Names match
        case-insensitively, so in general every name is looked at; when the rules name
        members (no ``*``) and `value`'s names are all lower case already (HTTP header
        names as Envoy passes them, the contract's own members), a look-up per rule."""
        if down.star is None and _lower_case_names(value):
            return [(name, state) for name, state in down.named.items() if name in value]
        found = []
        for key in value:
            state = down.star
            if isinstance(key, str) and down.named:
                state = down.named.get(key.lower(), state)
            if state is not None:
                found.append((key, state))
        return found

    def _replace(self, value: Any, rule: MaskRule) -> Any:
        if rule.op == "upsert":
            return rule.value
        if rule.op == "hash":
            if value is None:
                return None
            if self._mac is None:
                return MASKED  # no key: a guessable identifier's unkeyed hash is no mask
            data = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
            return "pseud:" + self._mac.mac(data.encode())[:16].hex()
        if isinstance(value, str):  # redact_digits
            return _DIGITS.sub(lambda m: "*" * len(m.group()), value)
        return value


def _lower_case_names(node: dict[Any, Any]) -> bool:
    """Every member name is a string that lower-casing leaves as it is (one C-level
    pass: ``\\0`` joins them, and only Σ lower-cases by context, always changing)."""
    try:
        joined = "\0".join(node)
    except TypeError:
        return False
    return joined.lower() == joined


_QUOTED_SECRET_NAMES: Final = tuple(f'"{name}":' for name in sorted(_SECRET_NAMES))
"""As member names appear in the JSON text (a value such as ``"otp"`` in ``amr`` is
not followed by a colon)."""


def _may_name_secrets(text: str) -> bool:
    """Whether JSON `text` may hold a member named like a credential (`_secret_name`)."""
    lowered = text.lower()
    return any(word in lowered for word in _SECRET_WORDS) or any(
        name in lowered for name in _QUOTED_SECRET_NAMES
    )


def _may_hold_secret_names(node: dict[Any, Any]) -> bool:
    """Whether any of `node`'s names may be a credential's (`_secret_name`), in a few
    C-level scans of the names lower-cased and ``\\0``-joined; True for odd names."""
    try:
        joined = "\0".join(node).lower()
    except TypeError:
        return True
    return any(word in joined for word in _SECRET_WORDS) or not _SECRET_NAMES.isdisjoint(
        joined.split("\0")
    )


def _without_secret_names(node: Any, path: list[Any], erased: set[str]) -> Any:
    """`node` less the members, at any depth, whose name looks like a credential
    (copies only the containers that change)."""
    out: Any = None
    if isinstance(node, dict):
        check = _may_hold_secret_names(node)
        for key, member in node.items():
            if check and isinstance(key, str) and _secret_name(key):
                if out is None:
                    out = dict(node)
                del out[key]
                erased.add(_pointer_of([*path, key]))
            elif isinstance(member, dict | list):
                path.append(key)
                new = _without_secret_names(member, path, erased)
                path.pop()
                if new is not member:
                    if out is None:
                        out = dict(node)
                    out[key] = new
    elif isinstance(node, list):
        for i, member in enumerate(node):
            if isinstance(member, dict | list):
                path.append(i)
                new = _without_secret_names(member, path, erased)
                path.pop()
                if new is not member:
                    if out is None:
                        out = list(node)
                    out[i] = new
    return node if out is None else out


def mask_event(
    event: dict[str, Any],
    rules: Iterable[MaskRule] = DEFAULT_MASKS,
    *,
    pseudonym_key: bytes | None = None,
    mask_secret_names: bool = True,
) -> dict[str, Any]:
    """A masked copy of `event` (the original is not changed; members no rule
    touches are shared with it, so do not change the copy's)."""
    return _Masker(rules, pseudonym_key, mask_secret_names).apply(event)


# -- the writer ---------------------------------------------------------------------------


class _Pending(NamedTuple):
    decision_id: str
    timestamp_ns: int
    input_doc: Any
    result: Any
    revision: str
    metrics: Mapping[str, int | float] | None
    requested_by: str | None
    extra: Mapping[str, Any] | None


_BATCH: Final = 512


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
        write_interval: float = 0.05,
    ) -> None:
        if max_bytes <= 0 or backups < 0 or queue_size <= 0 or max_event_bytes <= 0:
            raise ValueError("max_bytes, queue_size, max_event_bytes > 0 and backups >= 0")
        if not 0 < write_interval <= 1:
            raise ValueError("write_interval must be in (0, 1] seconds")
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
        self._pending: collections.deque[_Pending] = collections.deque()
        self._queue_size = queue_size
        self._interval = write_interval
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._queued = 0
        self._handled = 0
        self._stopping = False
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
        """Queue one decision; returns its ``decision_id``. Never blocks, never raises;
        an event the queue has no room for is dropped and counted (`dropped`).

        `result` overrides the logged result (default: `decision` as the policy
        returned it); `extra` adds top-level members (the shadow comparison).
        """
        decision_id = decision_id or str(uuid.uuid4())
        self.offer(
            input_doc,
            decision,
            decision_id=decision_id,
            metrics=metrics,
            requested_by=requested_by,
            extra=extra,
            result=result,
        )
        return decision_id

    def offer(
        self,
        input_doc: Any,
        decision: Decision,
        *,
        decision_id: str,
        metrics: Mapping[str, int | float] | None = None,
        requested_by: str | None = None,
        extra: Mapping[str, Any] | None = None,
        result: Any = None,
    ) -> bool:
        """`record`, saying whether the event was queued: False when the queue is full
        (the writer is behind by `queue_size` events: a stalled disk) or the log is
        closed — the event is then dropped and counted. For a caller that must not
        act on a decision it cannot audit (the edge agent allows nothing unlogged)."""
        if self._closed or len(self._pending) >= self._queue_size:
            self.dropped += 1
            return False
        self._pending.append(
            _Pending(
                decision_id,
                time.time_ns(),
                input_doc,
                decision_result(decision) if result is None else result,
                decision.revision,
                metrics,
                requested_by,
                extra,
            )
        )
        self._queued += 1
        if len(self._pending) == _BATCH:
            self._wake.set()  # a full batch is waiting: do not wait for the interval
        return True

    @property
    def backlog(self) -> int:
        """Events queued and not yet written."""
        return len(self._pending)

    # -- lifecycle -----------------------------------------------------------------------

    def flush(self) -> None:
        """Wait until everything queued so far is written (tests, shutdown)."""
        target = self._queued
        self._wake.set()
        with self._done:
            self._done.wait_for(lambda: self._handled >= target or not self._thread.is_alive())

    def close(self) -> None:
        """Write what is queued, then stop the writer and close the file."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self.dropped += len(self._pending)  # a record racing with close: not written
        self._pending.clear()
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
        """Every `write_interval` (or sooner, once a batch is waiting): mask, serialise
        and append what is queued. Waking per interval rather than per event keeps the
        request path free of lock hand-offs with this thread."""
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            stopping = self._stopping  # read before draining: nothing queued before is left
            while self._pending:
                batch: list[_Pending] = []
                while self._pending and len(batch) < _BATCH:
                    batch.append(self._pending.popleft())
                lines = [self._line(item) for item in batch]
                self._write([line for line in lines if line])
                with self._done:
                    self._handled += len(batch)
                    self._done.notify_all()
            if stopping:
                with self._done:
                    self._done.notify_all()
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
            masked, text = self._masker.line(event)
            line = _encode(text)
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


def _json(event: Mapping[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=_unknown)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "backslashreplace") + b"\n"


def _dumps(event: Mapping[str, Any]) -> bytes:
    return _encode(_json(event))


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
