"""Structured JSON logging: one object per line, secrets never written."""

from __future__ import annotations

import io
import json
import logging

from ztgate import logs


def test_json_lines_with_extra_fields_and_redaction() -> None:
    stream = io.StringIO()
    logs.configure("info", stream)
    log = logging.getLogger("ztgate.test")
    log.info(
        "login",
        extra={
            "subject": "u-1",
            "password": "hunter2",
            "request": {"authorization": "Bearer abc", "path": "/x"},
        },
    )
    log.debug("hidden")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["msg"] == "login" and doc["level"] == "info" and doc["subject"] == "u-1"
    assert doc["password"] == logs.REDACTED
    assert doc["request"] == {"authorization": logs.REDACTED, "path": "/x"}
    assert "hunter2" not in stream.getvalue() and "Bearer abc" not in stream.getvalue()


def test_configure_is_idempotent() -> None:
    stream = io.StringIO()
    logs.configure("info", stream)
    logs.configure("info", stream)
    logging.getLogger("ztgate.test").warning("once")
    assert len(stream.getvalue().splitlines()) == 1
