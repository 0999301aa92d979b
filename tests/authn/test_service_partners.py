"""Partner clients over HTTP: registration, client_credentials with private_key_jwt
(RFC 7523) and mutual TLS (RFC 8705) on a real TLS listener, scopes, assertion
replay, certificate-bound tokens, introspection (RFC 7662).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from authn.clients import CLIENT_ASSERTION_TYPE
from authn.config import AuthnConfig
from authn.service.runner import free_port
from crypto import jose, keys
from tests.authn.conftest import StoreURL
from tests.authn.service_harness import Api, claims

PARTNER_DN = "CN=tpp-01.partner.example,O=Partner TPP Ltd,C=CN"


def assertion(api: Api, key: keys.PrivateKey, client_id: str, kid: str, **over: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": api.url,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
        **over,
    }
    return jose.encode_jwt(body, key, kid=kid)


def form_for(signed: str, **extra: str) -> dict[str, str]:
    """A client_credentials request authenticated by the assertion `signed`."""
    return {"grant_type": "client_credentials", **auth_for(signed), **extra}


def auth_for(signed: str, **extra: str) -> dict[str, str]:
    return {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": signed, **extra}


async def register(api: Api, **doc: Any) -> str:
    reply = await api.call("POST", "/v1/clients", json_body=doc, token=api.admin)
    assert reply.status == 201, reply
    client_id: str = reply.body["client_id"]
    return client_id


@pytest.mark.parametrize("alg", ["sm2", "ec-p256"])
async def test_private_key_jwt_client_credentials(api: Api, alg: str) -> None:
    key = keys.generate(alg)  # type: ignore[arg-type]
    jwks = {"keys": [{**key.public_key().to_jwk(), "kid": "partner-1"}]}
    client_id = await register(
        api,
        name="Partner TPP",
        auth_method="private_key_jwt",
        jwks=jwks,
        scopes="accounts payments",
    )
    token = assertion(api, key, client_id, "partner-1")
    reply = await api.call("POST", "/v1/token", form=form_for(token, scope="accounts"))
    assert reply.status == 200, reply
    access = claims(reply.body["access_token"])
    assert (access["sub"], access["client_id"], access["scope"]) == (
        client_id,
        client_id,
        "accounts",
    )
    assert "refresh_token" not in reply.body

    # The same assertion again: jti replay (RFC 7523 §3 item 7).
    replay = await api.call("POST", "/v1/token", form=form_for(token, scope="accounts"))
    assert (replay.status, replay.error) == (401, "invalid_client")
    # A scope the client does not hold.
    fresh = assertion(api, key, client_id, "partner-1")
    reply = await api.call("POST", "/v1/token", form=form_for(fresh, scope="admin"))
    assert (reply.status, reply.error) == (400, "invalid_scope")
    # Signed by a key not in the client's JWKS; expired; for another audience.
    for bad in (
        assertion(api, keys.generate(alg), client_id, "partner-1"),  # type: ignore[arg-type]
        assertion(api, key, client_id, "partner-1", exp=int(time.time()) - 60),
        assertion(api, key, client_id, "partner-1", aud="https://other.example"),
        assertion(api, key, client_id, "unknown-kid"),
    ):
        reply = await api.call("POST", "/v1/token", form=form_for(bad))
        assert (reply.status, reply.error) == (401, "invalid_client"), reply
        assert reply.body["error_description"] == "client authentication failed"

    # Introspection (RFC 7662) needs client authentication; inactive is just {active: false}.
    access_token = (
        await api.call(
            "POST", "/v1/token", form=form_for(assertion(api, key, client_id, "partner-1"))
        )
    ).body["access_token"]
    ask = auth_for(assertion(api, key, client_id, "partner-1"), token=access_token)
    info = await api.call("POST", "/v1/introspect", form=ask)
    assert info.body["active"] is True and info.body["client_id"] == client_id
    anonymous = await api.call("POST", "/v1/introspect", form={"token": access_token})
    assert (anonymous.status, anonymous.error) == (401, "invalid_client")
    await api.call("POST", "/v1/revoke", form={"token": access_token})
    ask = auth_for(assertion(api, key, client_id, "partner-1"), token=access_token)
    assert (await api.call("POST", "/v1/introspect", form=ask)).body == {"active": False}
    ask = auth_for(assertion(api, key, client_id, "partner-1"), token="garbage")
    assert (await api.call("POST", "/v1/introspect", form=ask)).body == {"active": False}


async def test_client_secret_is_never_accepted(api: Api) -> None:
    form = {"grant_type": "client_credentials", "client_id": "c-x", "client_secret": "s"}
    reply = await api.call("POST", "/v1/token", form=form)
    assert (reply.status, reply.error) == (401, "invalid_client")


# -- mutual TLS on a real TLS listener -----------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_pem: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # self-signed, same DN: not from the CA


def _issue(
    directory: Path,
    name: str,
    subject: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    dns: str | None = None,
) -> tuple[Path, Path, x509.Name, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject_name = x509.Name.from_rfc4514_string(subject)
    issuer_name, signer = issuer or (subject_name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), False)
    cert = builder.sign(signer, hashes.SHA256())
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, subject_name, key


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca_cert, _, ca_name, ca_key = _issue(tmp_path, "ca", "CN=ztgate test CA", None, ca=True)
    server_cert, server_key, _, _ = _issue(
        tmp_path, "server", "CN=localhost", (ca_name, ca_key), dns="localhost"
    )
    client_cert, client_key, _, _ = _issue(tmp_path, "client", PARTNER_DN, (ca_name, ca_key))
    stranger, _, _, _ = _issue(tmp_path, "stranger", PARTNER_DN, None)
    return Pki(ca_cert, server_cert, server_key, client_cert, client_key, stranger)


@pytest.fixture
async def tls_api(store_url: StoreURL, tmp_path: Path, pki: Pki) -> Any:
    url, schema = store_url
    port = free_port()
    config = AuthnConfig(
        port=port,
        public_url=f"https://localhost:{port}",
        database_url=url,
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
        tls_client_ca=pki.ca_pem,
    )
    api = Api(tmp_path / "state", url, schema, extra={"config": config})
    api.session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=client_context(pki, cert=False))
    )
    await api.start()
    try:
        yield api
    finally:
        await api.close()


def client_context(pki: Pki, *, cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    if cert:
        context.load_cert_chain(pki.client_cert, pki.client_key)
    return context


async def test_mtls_client_credentials_and_bound_token(tls_api: Api, pki: Pki) -> None:
    api = tls_api
    client_id = await register(
        api,
        name="TLS partner",
        auth_method="tls_client_auth",
        tls_subject_dn=PARTNER_DN,
        scopes="accounts",
    )
    form = {"grant_type": "client_credentials", "client_id": client_id, "scope": "accounts"}
    with_cert = aiohttp.TCPConnector(ssl=client_context(pki, cert=True))
    async with (
        aiohttp.ClientSession(connector=with_cert) as session,
        session.post(api.url + "/v1/token", data=form) as response,
    ):
        body = await response.json()
        assert response.status == 200, body
    cert_der = x509.load_pem_x509_certificate(pki.client_cert.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    thumb = base64.urlsafe_b64encode(hashlib.sha256(cert_der).digest()).rstrip(b"=").decode()
    assert claims(body["access_token"])["cnf"] == {"x5t#S256": thumb}

    # No client certificate: the handshake succeeds (optional), authentication does not.
    without = aiohttp.TCPConnector(ssl=client_context(pki, cert=False))
    async with (
        aiohttp.ClientSession(connector=without) as session,
        session.post(api.url + "/v1/token", data=form) as response,
    ):
        assert response.status == 401
        assert (await response.json())["error"] == "invalid_client"

    # A self-signed certificate with the same DN never gets past the handshake.
    stranger = ssl.create_default_context(cafile=str(pki.ca_pem))
    stranger_key = pki.stranger_cert.with_suffix(".key")
    stranger.load_cert_chain(pki.stranger_cert, stranger_key)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=stranger)) as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.post(api.url + "/v1/token", data=form) as response:
                await response.read()


def test_tls_settings_are_validated() -> None:
    with pytest.raises(ValueError, match=r"^tls_key:"):
        AuthnConfig(tls_cert=Path("a.crt"))
    with pytest.raises(ValueError, match=r"^tls_client_ca:"):
        AuthnConfig(tls_client_ca=Path("ca.crt"))
