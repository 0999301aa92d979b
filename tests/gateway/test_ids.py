"""Random identifiers from the buffered kernel CSPRNG (gateway/ids.py)."""

from __future__ import annotations

import base64
import os
import uuid

from gateway import ids


def test_decision_ids_are_distinct_uuid4s_across_buffer_refills() -> None:
    seen = {ids.decision_id() for _ in range(1000)}  # 16 KB: several 4 KiB refills
    assert len(seen) == 1000
    for value in seen:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == value


def test_tokens_are_base64url_of_fresh_bytes() -> None:
    tokens = [ids.token(16) for _ in range(600)]
    assert len(set(tokens)) == 600
    for value in tokens:
        assert len(base64.urlsafe_b64decode(value + "==")) == 16 and "=" not in value


def test_a_forked_child_never_hands_out_the_parents_bytes() -> None:
    ids.random_bytes(1)  # the parent's buffer holds unused bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, ids.random_bytes(64))
        os._exit(0)
    os.close(write)
    child = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 64 and child != ids.random_bytes(64)
