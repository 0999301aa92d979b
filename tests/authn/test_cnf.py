"""RFC 8705 certificate binding: the x5t#S256 value and the constant-time check."""

from __future__ import annotations

import base64
import hashlib

import pytest

from authn import cnf
from authn.errors import AuthnError
from tests.authn.token_harness import make_cert

CERT_A = make_cert("partner-a")
CERT_B = make_cert("partner-b")


def test_x5t_s256_is_base64url_sha256_of_der() -> None:
    expected = base64.urlsafe_b64encode(hashlib.sha256(CERT_A).digest()).rstrip(b"=").decode()
    assert cnf.x5t_s256(CERT_A) == expected
    assert len(expected) == 43 and "=" not in expected
    assert cnf.cnf_for_certificate(CERT_A) == {"x5t#S256": expected}


def test_x5t_s256_from_envoy_hex_hash() -> None:
    hex_hash = hashlib.sha256(CERT_A).hexdigest()
    assert cnf.x5t_s256_from_hex(hex_hash) == cnf.x5t_s256(CERT_A)
    assert cnf.x5t_s256_from_hex(hex_hash.upper()) == cnf.x5t_s256(CERT_A)
    for bad in ("", "zz" * 32, hex_hash[:-1]):
        with pytest.raises(ValueError):
            cnf.x5t_s256_from_hex(bad)


def test_x5t_s256_refuses_empty() -> None:
    with pytest.raises(ValueError):
        cnf.x5t_s256(b"")


def test_matching_certificate_passes_as_der_or_thumbprint() -> None:
    claims = {"cnf": cnf.cnf_for_certificate(CERT_A)}
    cnf.check_certificate_binding(claims, CERT_A)
    cnf.check_certificate_binding(claims, cnf.x5t_s256(CERT_A))


def test_unbound_token_needs_no_certificate() -> None:
    cnf.check_certificate_binding({}, None)
    cnf.check_certificate_binding({"cnf": {"jkt": "abc"}}, None)


@pytest.mark.parametrize(
    ("presented", "description"),
    [
        (CERT_B, "client certificate does not match the token binding"),
        ("not-a-thumbprint", "client certificate does not match the token binding"),
        ("é" * 43, "client certificate does not match the token binding"),
        (None, "certificate-bound token presented without a client certificate"),
    ],
)
def test_other_or_missing_certificate_is_refused(
    presented: bytes | str | None, description: str
) -> None:
    claims = {"cnf": cnf.cnf_for_certificate(CERT_A)}
    with pytest.raises(AuthnError) as info:
        cnf.check_certificate_binding(claims, presented)
    assert info.value.code == "invalid_token"
    assert info.value.status == 401
    assert info.value.description == description
    assert info.value.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_malformed_confirmation_is_refused() -> None:
    with pytest.raises(AuthnError) as info:
        cnf.check_certificate_binding({"cnf": {"x5t#S256": 42}}, CERT_A)
    assert info.value.description == "malformed x5t#S256 confirmation"
