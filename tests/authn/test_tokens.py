"""Access-token attacks against `TokenVerifier.verify`, on SQLite and PostgreSQL.

Each test forges, alters or replays a token the way an attacker would and
checks the exact refusal: ``invalid_token``, 401, RFC 6750 challenge. Time is
a `Clock` moved by hand. Elsewhere: sender-constrained tokens (DPoP, mTLS) in
test_token_binding.py, revocation and introspection in test_revocation.py,
refresh tokens in test_refresh.py; the shared set-up is token_harness.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authn.errors import AuthnError
from authn.store import Store
from authn.tokens import MAX_TOKEN_LENGTH
from crypto import jose, keys
from tests.authn.token_harness import (
    SUBJECT,
    Env,
    b64u,
    make_env,
    parts,
    refused,
    sign_raw,
)


@pytest.fixture
def env(store: Store) -> Env:
    return make_env(store)


def with_claims(token: str, **changes: Any) -> str:
    """`token` with its payload re-encoded after `changes`, header and signature kept."""
    head, _, sig = token.split(".")
    claims = parts(token)[1]
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return f"{head}.{b64u(json.dumps(claims).encode())}.{sig}"


# -- the baseline everything else deviates from ----------------------------------------


async def test_issued_token_verifies_with_its_claims(env: Env) -> None:
    response = await env.mint()
    header, _ = parts(response.access_token)
    assert header == {"alg": "SM2SM3", "typ": "at+jwt", "kid": env.ring.signing_key()[0]}
    verified = await env.verifier.verify(response.access_token)
    assert verified.subject == SUBJECT and verified.client_id == "mobile-app"
    assert verified.scope == {"accounts:read", "payments:write"}
    assert verified.amr == ("pwd", "otp") and verified.token_type == "Bearer"
    assert verified.claims["iss"] == env.config.issuer and verified.claims["aud"] == "ztgate"
    assert verified.exp == env.clock() + env.config.access_ttl
    assert verified.sid is not None and verified.cnf is None
    assert await env.verifier.verify(response.access_token) is verified  # cache hit


# -- signature and algorithm attacks ----------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", [b"", b"\x00" * 64])
async def test_alg_none_is_refused(env: Env, alg: str, signature: bytes) -> None:
    kid = env.ring.signing_key()[0]
    unsigned = sign_raw({"alg": alg, "typ": "at+jwt", "kid": kid}, env.claims(), None)
    token = unsigned + b64u(signature)
    description = await refused(env.verifier.verify(token))
    assert description == "alg none: unsigned tokens are refused"


def _public_forms(public: keys.PublicKey) -> dict[str, bytes]:
    jwk = public.to_jwk()
    return {
        "pem": public.public_pem(),
        "pem-stripped": public.public_pem().strip(),
        "der": public.public_der(),
        "jwk": json.dumps(jwk).encode(),
        "jwk-compact": json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode(),
        "jwks": json.dumps({"keys": [jwk]}).encode(),
        "thumbprint": public.thumbprint().encode(),
    }


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize(
    "form", ["pem", "pem-stripped", "der", "jwk", "jwk-compact", "jwks", "thumbprint"]
)
async def test_hmac_keyed_with_the_public_key_is_refused(env: Env, alg: str, form: str) -> None:
    """Algorithm confusion (RFC 8725 §2.1): the public key is public, so as an HMAC
    secret it lets anyone mint tokens, unless HS* never reaches a key at all."""
    kid, private = env.ring.signing_key()
    secret = _public_forms(private.public_key())[form]
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    header = b64u(json.dumps({"alg": alg, "typ": "at+jwt", "kid": kid}).encode())
    payload = b64u(json.dumps(env.claims(sub="u-mallory", scope="admin")).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), digest).digest()
    description = await refused(env.verifier.verify(f"{header}.{payload}.{b64u(mac)}"))
    assert description == "symmetric alg refused (algorithm confusion)"


@pytest.mark.parametrize("algorithm", ["ec-p256", "ed25519"])
async def test_other_asymmetric_alg_under_our_kid_is_refused(env: Env, algorithm: str) -> None:
    """A valid ES256/EdDSA signature by the attacker's key, naming our SM2 kid."""
    attacker = keys.generate(algorithm)  # type: ignore[arg-type]
    kid = env.ring.signing_key()[0]
    header = {"alg": keys.JWS_ALG[attacker.algorithm], "typ": "at+jwt", "kid": kid}
    description = await refused(env.verifier.verify(env.forge(header=header, key=attacker)))
    assert description == "alg does not match the key's algorithm (algorithm confusion)"


@pytest.mark.parametrize("extra", [{}, {"jwk": True}, {"jku": "https://evil.example/jwks"}])
@pytest.mark.parametrize("kid", ["not-in-ring", "THUMBPRINT", None])
async def test_unknown_kid_is_refused(env: Env, kid: str | None, extra: dict[str, Any]) -> None:
    """The attacker's own key, even when embedded in the header (RFC 8725 §3.10)."""
    attacker = keys.generate("sm2")
    header: dict[str, Any] = {"alg": "SM2SM3", "typ": "at+jwt"}
    if kid is not None:
        header["kid"] = attacker.public_key().thumbprint() if kid == "THUMBPRINT" else kid
    if extra.get("jwk"):
        header["jwk"] = attacker.public_key().to_jwk()
    elif extra:
        header.update(extra)
    description = await refused(env.verifier.verify(env.forge(header=header, key=attacker)))
    assert description == "unknown kid"


async def test_right_kid_wrong_key_is_an_invalid_signature(env: Env) -> None:
    token = env.forge(key=keys.generate("sm2"))  # header names the ring's kid
    assert await refused(env.verifier.verify(token)) == "invalid signature"


@pytest.mark.parametrize(
    "change",
    [
        {"sub": "u-mallory"},
        {"scope": "accounts:read payments:write admin"},
        {"exp": 4102444800},
        {"aud": "core-banking"},
        {"client_id": "other-app"},
        {"acr": "urn:ztgate:acr:hardware"},
        {"sid": None},
        {"cnf": {"jkt": "attacker-thumbprint"}},
    ],
    ids=lambda change: next(iter(change)),
)
async def test_tampered_payload_is_refused(env: Env, change: dict[str, Any]) -> None:
    token = await env.token()
    assert await refused(env.verifier.verify(with_claims(token, **change))) == "invalid signature"


async def test_cached_token_does_not_vouch_for_a_tampered_copy(env: Env) -> None:
    token = await env.token()
    await env.verifier.verify(token)
    tampered = with_claims(token, sub="u-mallory")
    assert await refused(env.verifier.verify(tampered)) == "invalid signature"


async def test_spliced_and_tampered_headers_are_refused(env: Env) -> None:
    first, second = await env.token(), await env.token(subject="u-bob")
    head, payload, _ = first.split(".")
    spliced = f"{head}.{payload}.{second.split('.')[2]}"
    assert await refused(env.verifier.verify(spliced)) == "invalid signature"
    old_kid = env.ring.signing_key()[0]
    new_kid = env.ring.rotate("sm2")
    header = parts(first)[0] | {"kid": new_kid}
    rekeyed = f"{b64u(json.dumps(header).encode())}.{payload}.{first.split('.')[2]}"
    assert await refused(env.verifier.verify(rekeyed)) == "invalid signature"
    assert parts(first)[0]["kid"] == old_kid


# -- claim checks --------------------------------------------------------------------


async def test_wrong_audience_is_refused_even_from_the_cache(env: Env) -> None:
    for_payments = await env.token(audience="payments-api")
    assert await refused(env.verifier.verify(for_payments)) == "wrong audience"
    assert (await env.verifier.verify(for_payments, audience="payments-api")).subject == SUBJECT
    ours = await env.token()
    await env.verifier.verify(ours)
    assert await refused(env.verifier.verify(ours, audience="payments-api")) == "wrong audience"


async def test_audience_array_must_name_us(env: Env) -> None:
    assert await env.verifier.verify(env.forge(env.claims(aud=["payments-api", "ztgate"])))
    token = env.forge(env.claims(aud=["payments-api", "core-banking"]))
    assert await refused(env.verifier.verify(token)) == "wrong audience"


@pytest.mark.parametrize(
    "iss", ["https://evil.example", "http://localhost:8081/", "HTTP://LOCALHOST:8081", ""]
)
async def test_wrong_issuer_is_refused(env: Env, iss: str) -> None:
    assert await refused(env.verifier.verify(env.forge(env.claims(iss=iss)))) == "wrong issuer"


async def test_expiry_beyond_leeway_is_refused_also_when_cached(env: Env) -> None:
    token, cached = await env.token(), await env.token()
    await env.verifier.verify(cached)
    env.clock.advance(env.config.access_ttl + env.config.leeway - 1)  # expired, within leeway
    assert await env.verifier.verify(cached) and await env.verifier.verify(token)
    env.clock.advance(1)
    assert await refused(env.verifier.verify(token)) == "token expired"
    assert await refused(env.verifier.verify(cached)) == "token expired"


async def test_nbf_beyond_skew_is_refused_within_skew_accepted(env: Env) -> None:
    now, leeway = int(env.clock()), env.config.leeway
    early = env.forge(env.claims(nbf=now + leeway + 1))
    assert await refused(env.verifier.verify(early)) == "token not yet valid (nbf)"
    assert await env.verifier.verify(env.forge(env.claims(nbf=now + leeway)))
    env.clock.advance(1)  # a refusal is not cached: the token becomes good on time
    assert await env.verifier.verify(early)


async def test_iat_in_the_future_and_overlong_lifetime_are_refused(env: Env) -> None:
    now, leeway, ttl = int(env.clock()), env.config.leeway, env.config.access_ttl
    future = env.forge(env.claims(iat=now + leeway + 1, exp=now + ttl))
    assert await refused(env.verifier.verify(future)) == "token issued in the future (iat)"
    assert await env.verifier.verify(env.forge(env.claims(exp=now + ttl + leeway)))
    overlong = env.forge(env.claims(exp=now + ttl + leeway + 1))
    assert await refused(env.verifier.verify(overlong)) == "token lifetime exceeds the maximum"


@pytest.mark.parametrize("typ", ["JWT", None, "dpop+jwt", "at+jwt2", "jwt", ""])
async def test_wrong_typ_is_refused(env: Env, typ: str | None) -> None:
    kid = env.ring.signing_key()[0]
    header: dict[str, Any] = {"alg": "SM2SM3", "kid": kid}
    if typ is not None:
        header["typ"] = typ
    description = await refused(env.verifier.verify(env.forge(header=header)))
    assert description == "not an access token (typ is not at+jwt)"


async def test_plain_jwt_by_the_same_key_is_not_an_access_token(env: Env) -> None:
    kid, key = env.ring.signing_key()
    plain = jose.encode_jwt(env.claims(), key, kid=kid)  # e.g. an ID token, typ JWT
    assert parts(plain)[0]["typ"] == "JWT"
    description = await refused(env.verifier.verify(plain))
    assert description == "not an access token (typ is not at+jwt)"
    media_type = env.forge(header={"alg": "SM2SM3", "typ": "application/at+jwt", "kid": kid})
    assert await env.verifier.verify(media_type)  # RFC 7515 §4.1.9: same type


@pytest.mark.parametrize("member", ["sub", "aud", "exp", "iss", "jti"])
async def test_duplicate_claim_is_refused(env: Env, member: str) -> None:
    """Parsers differ on which duplicate wins (RFC 8259 §4): refuse them all."""
    claims = env.claims()
    body = json.dumps(claims)[:-1] + f", {json.dumps(member)}: {json.dumps(claims[member])}}}"
    assert await refused(env.verifier.verify(env.forge(body.encode()))) == "malformed claims"


@pytest.mark.parametrize("member", ["alg", "kid", "typ"])
async def test_duplicate_header_member_is_refused(env: Env, member: str) -> None:
    kid = env.ring.signing_key()[0]
    header = {"alg": "SM2SM3", "typ": "at+jwt", "kid": kid}
    raw = json.dumps(header)[:-1] + f", {json.dumps(member)}: {json.dumps(header[member])}}}"
    assert await refused(env.verifier.verify(env.forge(header=raw.encode()))) == "malformed token"


async def test_crit_header_is_refused(env: Env) -> None:
    kid = env.ring.signing_key()[0]
    header = {"alg": "SM2SM3", "typ": "at+jwt", "kid": kid, "crit": ["exp"], "exp": 1}
    description = await refused(env.verifier.verify(env.forge(header=header)))
    assert description == "unsupported crit header"


async def test_oversized_token_is_refused_before_parsing(env: Env) -> None:
    assert await refused(env.verifier.verify("A" * (MAX_TOKEN_LENGTH + 1))) == "malformed token"
    signed = await env.token(extra={"padding": "x" * MAX_TOKEN_LENGTH})
    assert len(signed) > MAX_TOKEN_LENGTH
    assert await refused(env.verifier.verify(signed)) == "malformed token"
    at_limit = env.forge(env.claims(padding="x" * (MAX_TOKEN_LENGTH * 3 // 4 - 1000)))
    assert len(at_limit) <= MAX_TOKEN_LENGTH and await env.verifier.verify(at_limit)


def _malformed(token: str) -> dict[str, str]:
    head, payload, sig = token.split(".")
    return {
        "empty": "",
        "dots": "..",
        "two-segments": f"{head}.{payload}",
        "four-segments": f"{token}.{sig}",
        "trailing-dot": token + ".",
        "padded": f"{head}=.{payload}.{sig}",
        "space": f"{head}.{payload}. {sig}",
        "newline": token + "\n",
        "non-ascii": token[:-1] + "é",
        "standard-b64": f"{head}.{payload}.{sig.replace('-', '+').replace('_', '/')}+/",
        "no-signature": f"{head}.{payload}.",
        "no-header": f".{payload}.{sig}",
        "header-not-json": f"{b64u(b'alg=SM2SM3')}.{payload}.{sig}",
        "header-array": f"{b64u(b'[1]')}.{payload}.{sig}",
        "bearer-prefix": "Bearer " + token,
        "nul": head + "\x00." + payload + "." + sig,
    }


@pytest.mark.parametrize("case", list(_malformed("a.b.c")))
async def test_malformed_token_is_refused(env: Env, case: str) -> None:
    token = await env.token()
    malformed = _malformed(token)[case]
    assert malformed != token
    description = await refused(env.verifier.verify(malformed))
    assert description == "malformed token"


@pytest.mark.parametrize("value", [None, b"a.b.c", 42, ["a", "b", "c"]])
async def test_non_string_token_is_refused(env: Env, value: object) -> None:
    assert await refused(env.verifier.verify(cast(str, value))) == "malformed token"


@pytest.mark.parametrize("missing", ["iss", "sub", "aud", "exp", "iat", "jti"])
async def test_missing_required_claim_is_refused(env: Env, missing: str) -> None:
    token = env.forge(env.claims(**{missing: None}))
    assert await refused(env.verifier.verify(token)) == f"missing required claim {missing}"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        b"\xff\xfe{}",
        b"NaN",
        {"exp": "4102444800"},
        {"exp": True},
        {"amr": ["pwd", 1]},
        {"sub": ""},
        {"sub": 7},
        {"aud": []},
        {"aud": 7},
        {"aud": ["ztgate", 7]},
        {"jti": "j" * 257},
        {"jti": ""},
        {"amr": "pwd"},
        {"scope": ["admin"]},
        {"client_id": None, "acr": 3},
        {"cnf": "jkt"},
        {"cnf": {"x5t#S256": 1}},
        {"nbf": "0"},
        {"auth_time": "yesterday"},
    ],
    ids=repr,
)
async def test_malformed_claims_are_refused(env: Env, payload: dict[str, Any] | bytes) -> None:
    """Signed by the real key, so only the claim checks stand between them and access."""
    if isinstance(payload, dict):
        payload = env.claims(**payload)
    description = await refused(env.verifier.verify(env.forge(payload)))
    assert description == "malformed claims" or description.startswith("missing required")


async def test_nonfinite_numeric_dates_are_refused(env: Env) -> None:
    for literal in ("NaN", "Infinity", "-Infinity", "1e400"):
        body = json.dumps(env.claims(exp=0)).replace('"exp": 0', f'"exp": {literal}')
        assert await refused(env.verifier.verify(env.forge(body.encode()))) == "malformed claims"


@pytest.mark.parametrize("depth", [900, 5000])
async def test_deeply_nested_claims_are_refused_not_a_crash(env: Env, depth: int) -> None:
    """Within the size limit; json parses 900 levels, but nothing may recurse on them."""
    body = json.dumps(env.claims())[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    token = env.forge(body.encode())
    assert len(token) < MAX_TOKEN_LENGTH
    assert await refused(env.verifier.verify(token)) == "malformed claims"
    assert await env.issuer.introspect(token) == {"active": False}


# -- keys --------------------------------------------------------------------------------


async def test_rotation_keeps_old_tokens_and_signs_new_ones_with_the_new_kid(env: Env) -> None:
    old_kid = env.ring.signing_key()[0]
    old = await env.token()
    await env.verifier.verify(old)
    new_kid = env.ring.rotate()
    new = await env.token()
    assert (parts(old)[0]["kid"], parts(new)[0]["kid"]) == (old_kid, new_kid)
    assert await env.verifier.verify(old) and await env.verifier.verify(new)
    assert await env.other_verifier(env.store).verify(old)  # cold path, too


@pytest.mark.parametrize("how", ["retire", "remove"])
async def test_retired_key_stops_cached_tokens(env: Env, how: str) -> None:
    old_kid = env.ring.signing_key()[0]
    old = await env.token()
    await env.verifier.verify(old)  # cached
    env.ring.rotate()
    new = await env.token()
    getattr(env.ring, how)(old_kid)
    assert await refused(env.verifier.verify(old)) == "unknown kid"
    assert await env.verifier.verify(new)


async def test_kid_reused_for_another_key_stops_cached_tokens(env: Env) -> None:
    old_kid = env.ring.signing_key()[0]
    old = await env.token()
    await env.verifier.verify(old)
    env.ring.rotate()
    env.ring.remove(old_kid)
    env.ring.generate("sm2", kid=old_kid)  # same name, different key
    assert await refused(env.verifier.verify(old)) == "invalid signature"


@pytest.mark.parametrize(("algorithm", "alg"), [("ec-p256", "ES256"), ("ed25519", "EdDSA")])
async def test_es256_and_eddsa_key_rings(store: Store, algorithm: str, alg: str) -> None:
    env = make_env(store, algorithm)  # type: ignore[arg-type]
    token = await env.token()
    assert parts(token)[0]["alg"] == alg
    assert (await env.verifier.verify(token)).subject == SUBJECT
    assert await refused(env.verifier.verify(with_claims(token, sub="u-x"))) == "invalid signature"
    assert (await env.issuer.introspect(token))["active"] is True
    env.ring.rotate("sm2")  # to the default algorithm: old tokens still verify
    assert await env.verifier.verify(token)
    sm2_token = await env.token()
    assert parts(sm2_token)[0]["alg"] == "SM2SM3" and await env.verifier.verify(sm2_token)
    await env.issuer.revoke(token)
    assert await refused(env.verifier.verify(token)) == "token revoked"


# -- properties --------------------------------------------------------------------------

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _assert_invalid_token(err: AuthnError) -> None:
    assert (err.code, err.status) == ("invalid_token", 401)
    assert err.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=400),
        st.lists(st.text(B64URL, max_size=60), min_size=1, max_size=5).map(".".join),
        st.text(B64URL + ".=+/ ", max_size=700),
    )
)
async def test_arbitrary_strings_only_raise_invalid_token(env: Env, text: str) -> None:
    try:
        await env.verifier.verify(text)
    except AuthnError as err:
        _assert_invalid_token(err)
    else:  # pragma: no cover - would need a forged SM2 signature
        pytest.fail(f"an arbitrary string verified: {text!r}")


@FUZZ
@given(data=st.data())
async def test_mutated_tokens_only_raise_invalid_token(env: Env, data: st.DataObject) -> None:
    token = await env.token()
    other = await env.token(subject="u-bob")
    i = data.draw(st.integers(0, len(token) - 1), label="index")
    segments = [token.split("."), other.split(".")]
    mutated = data.draw(
        st.one_of(
            st.sampled_from(B64URL + ".=").map(lambda c: token[:i] + c + token[i + 1 :]),
            st.text(max_size=3).map(lambda s: token[:i] + s + token[i:]),
            st.integers(0, len(token)).map(lambda j: token[: min(i, j)] + token[max(i, j) :]),
            st.tuples(*[st.sampled_from(segments)] * 3).map(
                lambda picks: ".".join(p[n] for n, p in enumerate(picks))
            ),
        ),
        label="mutated",
    )
    try:
        verified = await env.verifier.verify(mutated)
    except AuthnError as err:
        _assert_invalid_token(err)
    else:  # only a token we issued, re-spelled exactly, passes
        assert mutated in (token, other)
        assert verified.subject == (SUBJECT if mutated == token else "u-bob")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
CLAIMS = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "amr", "auth_time", "cnf"]


@FUZZ
@given(
    changes=st.dictionaries(st.sampled_from(CLAIMS), JSON, max_size=4),
    cnf=st.none() | st.dictionaries(st.sampled_from(["jkt", "x5t#S256", "jwk"]), st.text()),
)
async def test_hostile_claims_under_our_signature_only_raise_authn_error(
    env: Env, changes: dict[str, Any], cnf: dict[str, str] | None
) -> None:
    """Claims a buggy issuer (or a fuzzer holding the key) could sign: never a crash."""
    claims = env.claims() | changes | ({} if cnf is None else {"cnf": cnf})
    token = env.forge(json.dumps(claims).encode())
    try:
        verified = await env.verifier.verify(token, client_cert_sha256="é" * 43)
    except AuthnError as err:
        assert (err.code, err.status) == ("invalid_token", 401)
    else:
        assert verified.claims_dict() == json.loads(json.dumps(claims))


async def test_only_a_lapse_in_time_is_flagged_lapsed(env: Env) -> None:
    """Expired and not-yet-valid tokens are genuine, just outside their window (the edge
    does not count them as attacks); a forged, foreign or malformed one never is."""
    now, leeway, ttl = int(env.clock()), env.config.leeway, env.config.access_ttl

    async def lapsed(token: str) -> bool:
        with pytest.raises(AuthnError) as info:
            await env.verifier.verify(token)
        return info.value.lapsed

    assert await lapsed(env.forge(env.claims(nbf=now + leeway + 1)))
    assert not await lapsed(env.forge(env.claims(iss="https://evil.example")))
    assert not await lapsed(env.forge(env.claims(iat=now + leeway + 1, exp=now + ttl)))
    assert not await lapsed(env.forge(env.claims(aud="core-banking")))
    token = await env.token()
    assert not await lapsed(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    env.clock.advance(ttl + leeway)
    assert await lapsed(token)
