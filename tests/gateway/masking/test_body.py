"""Bodies: JSON masked, anything unparseable or of another type blocked."""

from __future__ import annotations

import json

import pytest

from gateway.masking.body import BLOCKED_STATUS, mask_body, media_type
from gateway.masking.engine import MaskingEngine, Request
from gateway.masking.maskers import PseudonymKeys
from gateway.masking.rules import default_rules

ENGINE = MaskingEngine(default_rules(), PseudonymKeys(b"\x03" * 32))
CUSTOMER = Request("cards.detail", "customer")
CARD = b'{"card_number":"6222081234567890128","cvn":"123","status":"active"}'


def _reason(body: bytes) -> str:
    doc = json.loads(body)
    assert doc["error"] == "response_blocked"
    return str(doc["reason"])


def test_json_is_masked_and_reserialised() -> None:
    for content_type in ("application/json", "application/problem+json; charset=UTF-8", None):
        outcome = mask_body(ENGINE, CARD, content_type or "application/json", CUSTOMER)
        assert not outcome.blocked
        assert json.loads(outcome.body) == {
            "card_number": "622208*********0128",
            "status": "active",
        }


def test_chinese_text_stays_text() -> None:
    body = json.dumps({"name": "王芳", "product": "灵通借记卡"}, ensure_ascii=False).encode()
    out = mask_body(ENGINE, body, "application/json", Request("accounts.list", "customer")).body
    assert out.decode() == '{"name":"王*","product":"灵通借记卡"}'


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b'{"card_number": "6222081234567890128"', "application/json", "unparseable_body"),
        (b"\x1f\x8b\x08\x00gzip", "application/json", "unparseable_body"),
        (b'{"a": NaN}', "application/json", "unparseable_body"),
        (b"\xff\xfe{}", "application/json", "unparseable_body"),
        (b"[" * 100 + b"]" * 100, "application/json", "unparseable_body"),
        (b"<html>6222081234567890128</html>", "text/html", "content_type_not_allowed"),
        (b"6222081234567890128", "", "content_type_not_allowed"),
        (CARD, "application/json; charset=latin-1", "unsupported_charset"),
    ],
)
def test_what_cannot_be_checked_is_blocked(body: bytes, content_type: str, reason: str) -> None:
    outcome = mask_body(ENGINE, body, content_type, CUSTOMER)
    assert outcome.blocked and outcome.reason == reason
    assert _reason(outcome.body) == f"masking:{reason}"
    assert b"6222081234567890128" not in outcome.body
    assert BLOCKED_STATUS == 502


def test_configured_text_types_are_scanned_as_text() -> None:
    body = "客户 13812345678 来电".encode()
    outcome = mask_body(
        ENGINE, body, "text/plain; charset=utf-8", CUSTOMER, text_types={"text/plain"}
    )
    assert outcome.body.decode() == "客户 138****5678 来电"
    assert mask_body(ENGINE, b"\xff", "text/plain", CUSTOMER, text_types={"text/plain"}).blocked


def test_an_empty_body_passes() -> None:
    outcome = mask_body(ENGINE, b"", None, CUSTOMER)
    assert outcome.body == b"" and not outcome.blocked and not outcome.changed


def test_media_type() -> None:
    assert media_type('Application/JSON; Charset="UTF-8"') == ("application/json", "utf-8")
    assert media_type(None) == ("", None)
