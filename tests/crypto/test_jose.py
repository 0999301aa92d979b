"""JWS/JWT: round trips, the attacks of RFC 8725, and SM2SM3 interop."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto import jose, keys, sm2
from crypto.errors import CryptoError
from crypto.jose import JoseError
from tests.conftest import Run

AUD = "https://gw.bank.example"
ISS = "https://idp.bank.example"
DISTID = "distid:1234567812345678"  # OpenSSL's default SM2 ID is empty: pass GM/T 0009's


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(seg: str) -> bytes:
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def seg(obj: Any) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISS, "sub": "alice", "aud": AUD, "exp": now + 300, "iat": now, "jti": "j-1"}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def craft(header: dict[str, Any], payload: dict[str, Any], key: keys.PrivateKey | None) -> str:
    """A token signed over exactly these header/payload JSON objects (or unsigned)."""
    signing_input = f"{seg(header)}.{seg(payload)}"
    sig = key.sign(signing_input.encode(), encoding="raw") if key else b""
    return f"{signing_input}.{b64u(sig)}"


def code_of(token: str, **kwargs: Any) -> str:
    kwargs.setdefault("audience", AUD)
    kwargs.setdefault("issuer", ISS)
    with pytest.raises(JoseError) as info:
        jose.decode_jwt(token, **kwargs)
    return info.value.code


@pytest.fixture(scope="module")
def ring() -> dict[str, keys.PrivateKey]:
    return {alg: keys.generate(alg) for alg in keys.ALGORITHMS}


@pytest.fixture(scope="module")
def sm2_key(ring: dict[str, keys.PrivateKey]) -> keys.PrivateKey:
    return ring["sm2"]


@pytest.fixture(scope="module")
def es_key(ring: dict[str, keys.PrivateKey]) -> keys.PrivateKey:
    return ring["ec-p256"]


def kid_resolver(
    table: dict[str, keys.PrivateKey],
) -> Callable[[str | None, str], keys.PublicKey]:
    def resolve(kid: str | None, alg: str) -> keys.PublicKey:
        if kid not in table:
            raise JoseError("unknown_kid", f"no key {kid!r}")
        return table[kid].public_key()

    return resolve


# -- round trips -------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", keys.ALGORITHMS)
def test_jwt_round_trip(algorithm: keys.Algorithm, ring: dict[str, keys.PrivateKey]) -> None:
    key = ring[algorithm]
    body = claims()
    token = jose.encode_jwt(body, key, kid="k1")
    header = jwt.get_unverified_header(token)
    assert header == {"alg": keys.JWS_ALG[algorithm], "kid": "k1", "typ": "JWT"}
    assert jose.decode_jwt(token, key=key.public_key(), audience=AUD, issuer=ISS) == body
    resolved = jose.decode_jwt(
        token, key=kid_resolver({"k1": key}), audience=[AUD, "other"], issuer=ISS
    )
    assert resolved == body


@pytest.mark.parametrize("algorithm", keys.ALGORITHMS)
def test_signature_is_raw_fixed_length(
    algorithm: keys.Algorithm, ring: dict[str, keys.PrivateKey]
) -> None:
    token = jose.encode_jwt(claims(), ring[algorithm])
    assert len(unb64u(token.split(".")[2])) == 64  # r || s (RFC 7518 §3.4) / RFC 8032


@pytest.mark.parametrize("algorithm", keys.ALGORITHMS)
def test_jws_round_trip_attached_and_detached(
    algorithm: keys.Algorithm, ring: dict[str, keys.PrivateKey]
) -> None:
    key, payload = ring[algorithm], b"\x00bundle\xff" * 10
    token = jose.sign_jws(payload, key, kid="b1", headers={"typ": "ztgate-bundle+jws"})
    assert "typ" in jwt.get_unverified_header(token)
    assert jose.verify_jws(token, key=key.public_key(), typ="ztgate-bundle+jws") == payload
    detached = jose.sign_jws(payload, key, detached=True)
    head, middle, _ = detached.split(".")
    assert middle == ""
    assert "typ" not in json.loads(unb64u(head))
    out = jose.verify_jws(detached, key=key.public_key(), detached_payload=payload)
    assert out == payload
    with pytest.raises(JoseError) as info:
        jose.verify_jws(detached, key=key.public_key(), detached_payload=payload + b"!")
    assert info.value.code == "invalid_signature"


def test_typ_is_enforced_when_asked(sm2_key: keys.PrivateKey) -> None:
    pub = sm2_key.public_key()
    token = jose.encode_jwt(claims(), sm2_key)
    at = jose.encode_jwt(claims(), sm2_key, headers={"typ": "at+jwt"})
    assert jose.decode_jwt(at, key=pub, audience=AUD, issuer=ISS, typ="application/AT+JWT")
    assert code_of(token, key=pub, typ="at+jwt") == "invalid_typ"
    bundle = jose.sign_jws(json.dumps(claims()).encode(), sm2_key, headers={"typ": "bundle"})
    assert code_of(bundle, key=pub, typ="JWT") == "invalid_typ"


def test_encode_refuses_caller_alg_and_bad_keys(sm2_key: keys.PrivateKey) -> None:
    for headers in ({"alg": "HS256"}, {"alg": "none"}, {"crit": ["x"]}, {"b64": False}):
        with pytest.raises(JoseError):
            jose.encode_jwt(claims(), sm2_key, headers=headers)
    with pytest.raises(JoseError) as info:
        jose.encode_jwt(claims(), sm2_key.public_key())  # type: ignore[arg-type]
    assert info.value.code == "invalid_key"
    with pytest.raises(JoseError) as info:
        jose.encode_jwt(claims(), b"secret")  # type: ignore[arg-type]
    assert info.value.code == "invalid_key"
    with pytest.raises(JoseError) as info:
        jose.encode_jwt({"x": object()}, sm2_key)
    assert info.value.code == "malformed"


def test_registry_is_dedicated() -> None:
    assert set(jose._JWS.get_algorithms()) == {"SM2SM3", "ES256", "EdDSA"}
    assert jose._JWT._jws is jose._JWS
    default = jwt.api_jws._jws_global_obj.get_algorithms()
    assert "SM2SM3" not in default and "HS256" in default  # global registry untouched


def test_algorithm_prepare_key_refuses_everything_but_its_own_keys(
    ring: dict[str, keys.PrivateKey],
) -> None:
    alg = jose.SM2SM3Algorithm()
    sm2_pub = ring["sm2"].public_key()
    assert alg.prepare_key(sm2_pub) is sm2_pub
    for bad in (b"secret", "secret", sm2_pub.public_pem(), ring["ec-p256"], ring["ed25519"]):
        with pytest.raises(jwt.InvalidKeyError):
            alg.prepare_key(bad)
    with pytest.raises(jwt.InvalidKeyError):
        alg.sign(b"m", sm2_pub)  # a public key cannot sign
    sig = alg.sign(b"m", ring["sm2"])
    assert alg.verify(b"m", sm2_pub, sig) is True
    for bad_sig in (b"", b"\x00" * 64, sig[:-1], sig + b"\x00", b"\xff" * 64):
        assert alg.verify(b"m", sm2_pub, bad_sig) is False
    assert alg.verify(b"m", ring["ec-p256"].public_key(), sig) is False


def test_algorithm_jwk_round_trip(ring: dict[str, keys.PrivateKey]) -> None:
    jwk = jose.SM2SM3Algorithm.to_jwk(ring["sm2"], as_dict=True)  # private in, public out
    assert jwk["crv"] == "SM2" and jwk["kty"] == "EC" and "d" not in jwk
    back = jose.SM2SM3Algorithm.from_jwk(json.dumps(jwk))
    assert back.thumbprint() == ring["sm2"].public_key().thumbprint()
    with pytest.raises(jwt.InvalidKeyError):
        jose.SM2SM3Algorithm.from_jwk({**jwk, "d": jwk["x"]})
    with pytest.raises(jwt.InvalidKeyError):
        jose.SM2SM3Algorithm.from_jwk(ring["ec-p256"].public_key().to_jwk())
    with pytest.raises(jwt.InvalidKeyError):
        jose.SM2SM3Algorithm.to_jwk(ring["ed25519"])
    assert jose.EdDSAAlgorithm.from_jwk(jose.EdDSAAlgorithm.to_jwk(ring["ed25519"])).algorithm == (
        "ed25519"
    )


# -- attacks -----------------------------------------------------------------------


def test_alg_none_is_rejected(sm2_key: keys.PrivateKey) -> None:
    pub = sm2_key.public_key()
    for alg in ("none", "None", "NONE", ""):
        token = craft({"alg": alg, "typ": "JWT"}, claims(), None)
        assert token.endswith(".")
        assert code_of(token, key=pub) == "alg_not_allowed"
    token = craft({"typ": "JWT"}, claims(), sm2_key)  # no alg at all
    assert code_of(token, key=pub) == "alg_not_allowed"


@pytest.mark.parametrize("algorithm", ["sm2", "ec-p256"])
def test_hs256_with_public_key_pem_as_secret(
    algorithm: keys.Algorithm, ring: dict[str, keys.PrivateKey]
) -> None:
    pub = ring[algorithm].public_key()
    signing_input = f"{seg({'alg': 'HS256', 'typ': 'JWT'})}.{seg(claims())}"
    mac = hmac.new(pub.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64u(mac)}"
    assert code_of(token, key=pub) == "alg_not_allowed"
    assert code_of(token, key=kid_resolver({"k": ring[algorithm]})) == "alg_not_allowed"


def test_es256_header_on_kid_that_resolves_to_sm2(
    sm2_key: keys.PrivateKey, es_key: keys.PrivateKey
) -> None:
    resolver = kid_resolver({"sm2-kid": sm2_key})
    # a genuine ES256 signature, kid pointing at the SM2 key
    forged = craft({"alg": "ES256", "kid": "sm2-kid"}, claims(), es_key)
    assert code_of(forged, key=resolver) == "alg_not_allowed"
    # an SM2 token relabelled ES256
    head, body, sig = jose.encode_jwt(claims(), sm2_key, kid="sm2-kid").split(".")
    relabel = {**json.loads(unb64u(head)), "alg": "ES256"}
    assert code_of(f"{seg(relabel)}.{body}.{sig}", key=resolver) == "alg_not_allowed"


def test_alg_swapped_to_sm2sm3_on_es256_token(
    sm2_key: keys.PrivateKey, es_key: keys.PrivateKey
) -> None:
    head, body, sig = jose.encode_jwt(claims(), es_key, kid="es").split(".")
    swapped = f"{seg({**json.loads(unb64u(head)), 'alg': 'SM2SM3'})}.{body}.{sig}"
    assert code_of(swapped, key=es_key.public_key()) == "alg_not_allowed"
    assert code_of(swapped, key=kid_resolver({"es": es_key})) == "alg_not_allowed"
    # and if an attacker's kid makes the resolver hand back an SM2 key, the SM2 check fails
    assert code_of(swapped, key=sm2_key.public_key()) == "invalid_signature"


def test_unknown_kid(sm2_key: keys.PrivateKey) -> None:
    token = jose.encode_jwt(claims(), sm2_key, kid="nope")
    assert code_of(token, key=kid_resolver({"other": sm2_key})) == "unknown_kid"

    def lookup(kid: str | None, alg: str) -> keys.PublicKey:
        return {"other": sm2_key.public_key()}[kid or ""]  # KeyError on a miss

    assert code_of(token, key=lookup) == "unknown_kid"


def test_audience(sm2_key: keys.PrivateKey) -> None:
    pub = sm2_key.public_key()
    token = jose.encode_jwt(claims(), sm2_key)
    assert code_of(token, key=pub, audience="https://evil.example") == "invalid_audience"
    assert code_of(token, key=pub, audience=[]) == "invalid_audience"
    # audience=None: a token addressed to someone is not for us (fail closed)
    assert code_of(token, key=pub, audience=None) == "invalid_audience"
    no_aud = jose.encode_jwt(claims(aud=None), sm2_key)
    assert code_of(no_aud, key=pub) == "invalid_audience"
    assert jose.decode_jwt(no_aud, key=pub, audience=None, issuer=ISS)["sub"] == "alice"
    multi = jose.encode_jwt(claims(aud=["a", AUD]), sm2_key)
    assert jose.decode_jwt(multi, key=pub, audience=AUD, issuer=ISS)["aud"] == ["a", AUD]


def test_issuer(sm2_key: keys.PrivateKey) -> None:
    pub = sm2_key.public_key()
    token = jose.encode_jwt(claims(), sm2_key)
    assert code_of(token, key=pub, issuer="https://evil.example") == "invalid_issuer"
    assert code_of(jose.encode_jwt(claims(iss=None), sm2_key), key=pub) == "invalid_issuer"
    assert jose.decode_jwt(token, key=pub, audience=AUD, issuer=None)["iss"] == ISS


def test_expiry_with_leeway(sm2_key: keys.PrivateKey) -> None:
    pub, now = sm2_key.public_key(), int(time.time())
    expired = jose.encode_jwt(claims(exp=now - 30, iat=now - 300), sm2_key)
    assert code_of(expired, key=pub) == "expired"
    just = jose.encode_jwt(claims(exp=now - 5, iat=now - 300), sm2_key)
    assert jose.decode_jwt(just, key=pub, audience=AUD, issuer=ISS)["exp"] == now - 5
    assert code_of(just, key=pub, leeway=0) == "expired"


def test_not_before_with_leeway(sm2_key: keys.PrivateKey) -> None:
    pub, now = sm2_key.public_key(), int(time.time())
    future = jose.encode_jwt(claims(nbf=now + 15), sm2_key)
    assert code_of(future, key=pub) == "not_yet_valid"
    skewed = jose.encode_jwt(claims(nbf=now + 5), sm2_key)
    assert jose.decode_jwt(skewed, key=pub, audience=AUD, issuer=ISS)["nbf"] == now + 5
    issued_later = jose.encode_jwt(claims(iat=now + 60), sm2_key)
    assert code_of(issued_later, key=pub) == "not_yet_valid"


def test_required_claims_and_types(sm2_key: keys.PrivateKey) -> None:
    pub = sm2_key.public_key()
    assert code_of(jose.encode_jwt(claims(exp=None), sm2_key), key=pub) == "missing_claim"
    assert code_of(jose.encode_jwt(claims(iat=None), sm2_key), key=pub) == "missing_claim"
    no_exp = jose.encode_jwt(claims(exp=None), sm2_key)
    assert jose.decode_jwt(no_exp, key=pub, audience=AUD, issuer=ISS, required=("iat",))
    far = int(time.time()) + 300
    for bad in (str(far), True, [far], {"t": far}):
        token = jose.encode_jwt(claims(exp=bad), sm2_key)
        assert code_of(token, key=pub) == "malformed"


def test_tampered_header_and_payload(sm2_key: keys.PrivateKey) -> None:
    pub = sm2_key.public_key()
    head, body, sig = jose.encode_jwt(claims(), sm2_key, kid="k").split(".")
    new_head = seg({**json.loads(unb64u(head)), "kid": "j"})
    assert code_of(f"{new_head}.{body}.{sig}", key=pub) == "invalid_signature"
    new_body = seg({**json.loads(unb64u(body)), "sub": "mallory"})
    assert code_of(f"{head}.{new_body}.{sig}", key=pub) == "invalid_signature"


def test_every_single_character_flip_is_rejected(es_key: keys.PrivateKey) -> None:
    pub = es_key.public_key()
    token = jose.encode_jwt(claims(), es_key)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, ch in enumerate(token):
        if ch == ".":
            continue
        flipped = token[:i] + alphabet[(alphabet.index(ch) + 1) % 64] + token[i + 1 :]
        with pytest.raises(JoseError) as info:
            jose.decode_jwt(flipped, key=pub, audience=AUD, issuer=ISS)
        # bits the base64url decoder ignores make the segment non-canonical
        assert info.value.code in {"invalid_signature", "malformed", "alg_not_allowed"}, i


def test_truncated_and_foreign_signatures(ring: dict[str, keys.PrivateKey]) -> None:
    key = ring["sm2"]
    pub, other = key.public_key(), keys.generate("sm2")
    head, body, sig = jose.encode_jwt(claims(), key).split(".")
    raw = unb64u(sig)
    for cut in (raw[:-1], raw[:32], raw[:1]):
        assert code_of(f"{head}.{body}.{b64u(cut)}", key=pub) == "invalid_signature"
    assert code_of(f"{head}.{body}.", key=pub) == "malformed"
    foreign = other.sign(f"{head}.{body}".encode(), encoding="raw")
    assert code_of(f"{head}.{body}.{b64u(foreign)}", key=pub) == "invalid_signature"
    assert code_of(jose.encode_jwt(claims(), other), key=pub) == "invalid_signature"
    der = sm2.signature_to_der(raw)  # DER is not the JWS encoding
    assert code_of(f"{head}.{body}.{b64u(der)}", key=pub) == "invalid_signature"


def test_oversized_token_rejected_before_parsing(sm2_key: keys.PrivateKey) -> None:
    pub = sm2_key.public_key()
    assert code_of("A" * (16 * 1024 + 1), key=pub) == "malformed"
    token = jose.encode_jwt(claims(blob="x" * 13_000), sm2_key)
    assert len(token) > 16 * 1024
    with pytest.raises(JoseError, match="longer than"):
        jose.decode_jwt(token, key=pub, audience=AUD, issuer=ISS)
    assert jose.decode_jwt(token, key=pub, audience=AUD, issuer=ISS, max_length=len(token))
    small = jose.encode_jwt(claims(), sm2_key)
    assert code_of(small, key=pub, max_length=len(small) - 1) == "malformed"


GARBAGE = [
    "",
    ".",
    "..",
    "...",
    "a.b.c",
    "a.b",
    "a.b.c.d",
    "x" * 100,
    "é.é.é",
    "eyJhbGciOiJTTTJTTTMifQ.e30.\u00e9",
    "\x00\x00.\x00.\x00",
    "eyJ.eyJ.eyJ",
    f"{seg([1])}.{seg({})}.AAAA",
    f"{seg(None)}.{seg({})}.AAAA",
    f"{seg('SM2SM3')}.{seg({})}.AAAA",
    f"{b64u(b'{}')}==.e30.AAAA",
    f"{b64u(bytes([0xFF, 0xFE]))}.e30.AAAA",
    b64u(b'{"alg":"SM2SM3","alg":"SM2SM3"}') + ".e30.AAAA",
    b64u(b'{"alg":"SM2SM3",') + ".e30.AAAA",
    f"{seg({'alg': 'SM2SM3', 'kid': 7})}.e30.AAAA",
    f"{seg({'alg': 'SM2SM3', 'kid': ''})}.e30.AAAA",
    f"{seg({'alg': 'SM2SM3'})}.e30+.AAAA",
    f"{seg({'alg': 'SM2SM3'})}.e30.AA/A",
    f"{seg({'alg': 'SM2SM3'})}.!!!!.AAAA",
    f"{seg({'alg': 'SM2SM3'})}.{b64u(b'[]')}.AAAA",
    f"{seg({'alg': 'SM2SM3', 'b64': False})}..AAAA",
    f" {seg({'alg': 'SM2SM3'})}.e30.AAAA",
]


@pytest.mark.parametrize("token", GARBAGE)
def test_garbage_is_malformed(token: str, sm2_key: keys.PrivateKey) -> None:
    code = code_of(token, key=sm2_key.public_key())
    assert code in {"malformed", "invalid_signature"}
    if "SM2SM3" not in token and "eyJhbGciOiJTTTJTTTMifQ" not in token:
        assert code == "malformed"


def test_crit_header_is_rejected(sm2_key: keys.PrivateKey) -> None:
    pub = sm2_key.public_key()
    for crit in (["exp"], ["b64"], [], "exp"):
        header = {"alg": "SM2SM3", "typ": "JWT", "crit": crit, "exp": 1, "b64": True}
        token = craft(header, claims(), sm2_key)  # correctly signed: crit alone is the fault
        assert code_of(token, key=pub) == "unsupported_crit"


def test_correctly_crafted_token_is_accepted(sm2_key: keys.PrivateKey) -> None:
    token = craft({"alg": "SM2SM3", "jku": "https://evil.example/jwks"}, claims(), sm2_key)
    body = jose.decode_jwt(token, key=sm2_key.public_key(), audience=AUD, issuer=ISS)
    assert body["sub"] == "alice"  # jku ignored: the key comes from the caller


def test_verify_jws_attacks(sm2_key: keys.PrivateKey, es_key: keys.PrivateKey) -> None:
    pub = sm2_key.public_key()
    token = jose.sign_jws(b"payload", sm2_key)
    with pytest.raises(JoseError) as info:
        jose.verify_jws(token, key=pub, detached_payload=b"payload")  # segment not empty
    assert info.value.code == "malformed"
    for bad, code in (
        (craft({"alg": "none"}, {}, None), "alg_not_allowed"),
        (jose.sign_jws(b"payload", es_key), "alg_not_allowed"),
        (jose.sign_jws(b"payload", keys.generate("sm2")), "invalid_signature"),
        ("A" * (1024 * 1024 + 1), "malformed"),
    ):
        with pytest.raises(JoseError) as info:
            jose.verify_jws(bad, key=pub)
        assert info.value.code == code


def test_jose_error_is_a_crypto_error() -> None:
    err = JoseError("expired", "Signature has expired")
    assert isinstance(err, CryptoError) and err.code == "expired"
    assert "expired" in repr(err)


# -- property: untrusted text never escapes as anything but JoseError ---------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
_header = st.fixed_dictionaries(
    {"alg": st.sampled_from(["SM2SM3", "ES256", "EdDSA", "none", "HS256"])},
    optional={"kid": _json, "crit": _json, "typ": _json, "b64": _json},
)
_b64 = st.binary(max_size=80).map(b64u)
_PROPERTY_KEY = keys.generate("sm2")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.lists(st.text(alphabet="eyJABCabc019-_.=", max_size=40), max_size=5).map(".".join),
        st.tuples(_header, _json, _b64).map(
            lambda t: f"{seg(t[0])}.{b64u(json.dumps(t[1]).encode())}.{t[2]}"
        ),
    )
)
def test_decode_never_raises_anything_but_jose_error(text: str) -> None:
    pub = _PROPERTY_KEY.public_key()
    for key in (pub, kid_resolver({"k": _PROPERTY_KEY})):
        try:
            jose.decode_jwt(text, key=key, audience=None, issuer=None)
        except JoseError as exc:
            assert exc.code in jose.ErrorCode.__args__  # type: ignore[attr-defined]
        with contextlib.suppress(JoseError):
            jose.verify_jws(text, key=key)


# -- interop: SM2SM3 signatures are plain SM2 over the JWS Signing Input -------------


def test_sm2sm3_signature_verifies_with_keys_api(sm2_key: keys.PrivateKey) -> None:
    token = jose.encode_jwt(claims(), sm2_key)
    signing_input, _, sig = token.rpartition(".")
    raw = unb64u(sig)
    sm2_key.public_key().verify(raw, signing_input.encode("ascii"), encoding="raw")
    sm2_key.public_key().verify(sm2.signature_to_der(raw), signing_input.encode("ascii"))


@pytest.mark.interop
def test_sm2sm3_signature_verifies_in_openssl(
    sm2_key: keys.PrivateKey, tmp_path: Path, ossl: Run
) -> None:
    token = jose.encode_jwt(claims(), sm2_key, kid="interop")
    signing_input, _, sig = token.rpartition(".")
    pub, msg, der = tmp_path / "pub.pem", tmp_path / "input.txt", tmp_path / "sig.der"
    pub.write_bytes(sm2_key.public_key().public_pem())
    msg.write_bytes(signing_input.encode("ascii"))
    der.write_bytes(sm2.signature_to_der(unb64u(sig)))
    args = ["pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", DISTID,
            "-pubin", "-inkey", pub, "-in", msg, "-sigfile", der]  # fmt: skip
    assert b"Signature Verified Successfully" in ossl(*args).stdout
    msg.write_bytes(signing_input.encode("ascii") + b"x")  # and OpenSSL does say no
    proc = ossl(*args, ok=False)
    assert proc.returncode != 0
    assert b"Signature Verified Successfully" not in proc.stdout
