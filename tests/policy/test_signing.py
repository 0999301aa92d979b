"""Bundle signatures (policy/signing.py): OPA's ``.signatures.json`` with SM2 and ES256.

The negative tests are written as an attacker would try them: change a file,
add or drop one, swap or forge the signature, confuse the algorithm, lie about
the key, truncate, and flood.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import jose, keys
from policy.bundle import MANIFEST, SIGNATURES, Bundle
from policy.signing import (
    MAX_SIGNATURES_SIZE,
    BundleSignatureError,
    canonical_json,
    file_digest,
    sign_bundle,
    verify_bundle,
)

DEFAULT_BUNDLE = Path(__file__).resolve().parents[2] / "policy" / "bundles" / "default"

REGO = b'package ztgate.main\n\ndecision := {"allow": false, "reasons": ["deny"]}\n'
DATA = b'{"routes": {"a": {"min_acr": "urn:ztgate:acr:mfa", "limit": 1.50}}}'


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def sm2_key() -> keys.PrivateKey:
    return keys.generate("sm2")


@pytest.fixture(scope="module")
def ec_key() -> keys.PrivateKey:
    return keys.generate("ec-p256")


@pytest.fixture
def bundle() -> Bundle:
    return Bundle.build(
        {"ztgate/main/main.rego": REGO, "ztgate/config/data.json": DATA}, revision="rev-1"
    )


@pytest.fixture
def signed(bundle: Bundle, sm2_key: keys.PrivateKey) -> Bundle:
    return sign_bundle(bundle, sm2_key, kid="policy-2025")


@pytest.fixture
def trusted(sm2_key: keys.PrivateKey) -> dict[str, keys.PublicKey]:
    return {"policy-2025": sm2_key.public_key()}


def refused(bundle: Bundle, trusted: dict[str, keys.PublicKey], **kw: Any) -> BundleSignatureError:
    with pytest.raises(BundleSignatureError) as info:
        verify_bundle(bundle, keys=trusted, **kw)
    return info.value


def token_of(bundle: Bundle) -> str:
    token: str = json.loads(bundle.files[SIGNATURES])["signatures"][0]
    return token


def with_token(bundle: Bundle, token: str) -> Bundle:
    return bundle.with_files({SIGNATURES: json.dumps({"signatures": [token]}).encode()})


def resign_payload(
    bundle: Bundle, key: keys.PrivateKey, payload: dict[str, Any], kid: str = "policy-2025"
) -> Bundle:
    """A bundle whose signature is valid over an attacker-chosen payload."""
    token = jose.sign_jws(json.dumps(payload).encode(), key, kid=kid)
    return with_token(bundle, token)


def payload_of(bundle: Bundle) -> dict[str, Any]:
    middle = token_of(bundle).split(".")[1]
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(middle + "=" * (-len(middle) % 4)))
    return result


# -- format and round trips ------------------------------------------------------------------


def test_signatures_file_is_opas_format(signed: Bundle, sm2_key: keys.PrivateKey) -> None:
    doc = json.loads(signed.files[SIGNATURES])
    assert list(doc) == ["signatures"] and len(doc["signatures"]) == 1
    head = json.loads(base64.urlsafe_b64decode(token_of(signed).split(".")[0] + "=="))
    assert head == {"alg": "SM2SM3", "kid": "policy-2025", "typ": "JWT"}
    payload = payload_of(signed)
    assert payload["keyid"] == "policy-2025"
    names = [f["name"] for f in payload["files"]]
    assert sorted(names) == sorted(p for p in signed.files if p != SIGNATURES)
    assert MANIFEST in names and SIGNATURES not in names
    for entry in payload["files"]:
        assert entry["algorithm"] == "SHA-256"
        assert entry["hash"] == file_digest(entry["name"], signed.files[entry["name"]]).hex()
    rego = next(f for f in payload["files"] if f["name"].endswith(".rego"))
    assert rego["hash"] == hashlib.sha256(REGO).hexdigest()  # unstructured: the raw bytes


@pytest.mark.parametrize("algorithm", ["sm2", "ec-p256"])
def test_sign_and_verify_round_trip(bundle: Bundle, algorithm: keys.Algorithm) -> None:
    key = keys.generate(algorithm)
    signed = sign_bundle(bundle, key, kid="k")
    assert verify_bundle(signed, keys={"k": key.public_key()}) is signed
    alg = json.loads(base64.urlsafe_b64decode(token_of(signed).split(".")[0] + "=="))["alg"]
    assert alg == keys.JWS_ALG[algorithm]


def test_survives_the_tarball(signed: Bundle, trusted: dict[str, keys.PublicKey]) -> None:
    verify_bundle(Bundle.from_tarball(signed.to_tarball()), keys=trusted)


def test_default_bundle_signs_and_verifies(
    sm2_key: keys.PrivateKey, trusted: dict[str, keys.PublicKey]
) -> None:
    bundle = Bundle.from_dir(DEFAULT_BUNDLE)
    signed = sign_bundle(bundle, sm2_key, kid="policy-2025")
    verify_bundle(signed, keys=trusted)
    assert {f["name"] for f in payload_of(signed)["files"]} == set(bundle.files) - {SIGNATURES}


def test_resigning_replaces_the_old_signature(
    signed: Bundle, ec_key: keys.PrivateKey, trusted: dict[str, keys.PublicKey]
) -> None:
    again = sign_bundle(signed, ec_key, kid="ec")
    verify_bundle(again, keys={"ec": ec_key.public_key()})
    assert refused(again, trusted).code == "unknown_kid"


def test_sm3_file_hashes(bundle: Bundle, sm2_key: keys.PrivateKey) -> None:
    signed = sign_bundle(bundle, sm2_key, kid="k", hash_algorithm="SM3")
    assert {f["algorithm"] for f in payload_of(signed)["files"]} == {"SM3"}
    verify_bundle(signed, keys={"k": sm2_key.public_key()})


def test_scope_must_match_exactly(bundle: Bundle, sm2_key: keys.PrivateKey) -> None:
    trusted = {"k": sm2_key.public_key()}
    scoped = sign_bundle(bundle, sm2_key, kid="k", scope="edge")
    verify_bundle(scoped, keys=trusted, scope="edge")
    assert refused(scoped, trusted).code == "scope_mismatch"
    assert refused(scoped, trusted, scope="control-plane").code == "scope_mismatch"
    unscoped = sign_bundle(bundle, sm2_key, kid="k")
    assert refused(unscoped, trusted, scope="edge").code == "scope_mismatch"


# -- canonical JSON: OPA's hash of structured files ------------------------------------------


def test_canonical_json_matches_opas_own_test_vector() -> None:
    # open-policy-agent/opa v1/bundle/verify_test.go: MD5 of `{"revision": "quickbrownfaux"}`
    # as a .manifest is a005c38a509dc2d5a7407b9494efb2ad.
    canonical = canonical_json(b'{"revision": "quickbrownfaux"}')
    assert hashlib.md5(canonical).hexdigest() == "a005c38a509dc2d5a7407b9494efb2ad"


def test_canonical_json_is_gos_encoding() -> None:
    raw = '{"b": "<&>\u2028\u00e9\\u0001\\n", "a": [1.50, 1e3, -0, true, null, {"z": 1, "y": {}}]}'
    assert (
        canonical_json(raw.encode())
        == (
            '{"a":[1.50,1e3,-0,true,null,{"y":{},"z":1}],"b":"<&>\\u2028\u00e9\\u0001\\n"}'
        ).encode()
    )
    assert canonical_json(b"\xef\xbb\xbf{}") == b"{}"  # OPA strips a BOM


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}',  # duplicate key: which one counts is parser-dependent
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": "\\ud800"}',  # lone surrogate
        b'{"a": 1} {"b": 2}',
        b"\xff",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_canonical_json_refuses_ambiguous_documents(raw: bytes) -> None:
    with pytest.raises(ValueError):
        canonical_json(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values, st.integers(min_value=0, max_value=3))
def test_canonical_json_ignores_layout_not_content(value: Any, indent: int) -> None:
    compact = json.dumps(value).encode()
    pretty = json.dumps(value, indent=indent, ensure_ascii=bool(indent % 2)).encode()
    assert canonical_json(compact) == canonical_json(pretty)
    assert json.loads(canonical_json(compact)) == value


def test_reformatted_data_json_still_verifies(
    signed: Bundle, trusted: dict[str, keys.PublicKey]
) -> None:
    pretty = json.dumps(json.loads(DATA), indent=4, sort_keys=False).encode()
    pretty = pretty.replace(b"1.5", b"1.50")  # same literal as signed
    verify_bundle(signed.with_files({"ztgate/config/data.json": pretty}), keys=trusted)


# -- attacks ---------------------------------------------------------------------------------


def test_unsigned_bundle_is_refused(bundle: Bundle, trusted: dict[str, keys.PublicKey]) -> None:
    error = refused(bundle, trusted)
    assert error.code == "unsigned" and ".signatures.json" in str(error)


def test_tampered_rego_is_refused(signed: Bundle, trusted: dict[str, keys.PublicKey]) -> None:
    evil = REGO.replace(b'"allow": false', b'"allow": true')
    error = refused(signed.with_files({"ztgate/main/main.rego": evil}), trusted)
    assert error.code == "hash_mismatch" and "ztgate/main/main.rego" in str(error)


@pytest.mark.parametrize(
    "evil",
    [
        b'{"routes": {"a": {"min_acr": "urn:ztgate:acr:pwd", "limit": 1.50}}}',
        b'{"routes": {"a": {"min_acr": "urn:ztgate:acr:mfa", "limit": 1.5}}}',  # same float
        b'{"routes": {"a": {"min_acr": "urn:ztgate:acr:mfa", "limit": 1.50, "x": 0}}}',
    ],
)
def test_tampered_data_json_is_refused(
    signed: Bundle, trusted: dict[str, keys.PublicKey], evil: bytes
) -> None:
    error = refused(signed.with_files({"ztgate/config/data.json": evil}), trusted)
    assert error.code == "hash_mismatch" and "data.json" in str(error)


def test_tampered_manifest_is_refused(signed: Bundle, trusted: dict[str, keys.PublicKey]) -> None:
    forged = json.dumps({"revision": "rev-2", "roots": [""]}).encode()
    assert refused(signed.with_files({MANIFEST: forged}), trusted).code == "hash_mismatch"


def test_added_file_is_refused(signed: Bundle, trusted: dict[str, keys.PublicKey]) -> None:
    extra = b'package ztgate.main\n\nbackdoor if input.request.headers["x-god"] == "1"\n'
    error = refused(signed.with_files({"ztgate/main/zz_backdoor.rego": extra}), trusted)
    assert error.code == "unlisted_file" and "zz_backdoor.rego" in str(error)


def test_removed_file_is_refused(signed: Bundle, trusted: dict[str, keys.PublicKey]) -> None:
    files = {p: b for p, b in signed.files.items() if p != "ztgate/config/data.json"}
    error = refused(Bundle.from_files(files), trusted)
    assert error.code == "missing_file" and "data.json" in str(error)


def test_signature_from_another_bundle_is_refused(
    signed: Bundle, sm2_key: keys.PrivateKey, trusted: dict[str, keys.PublicKey]
) -> None:
    """A genuine signature, lifted from another bundle signed with the same key."""
    same_names = sign_bundle(
        signed.with_files({"ztgate/main/main.rego": b"package ztgate.main\n"}),
        sm2_key,
        kid="policy-2025",
    )
    error = refused(with_token(signed, token_of(same_names)), trusted)
    assert error.code == "hash_mismatch" and "main.rego" in str(error)
    fewer = sign_bundle(
        Bundle.build({"ztgate/main/main.rego": REGO}, revision="rev-1"), sm2_key, kid="policy-2025"
    )
    assert refused(with_token(signed, token_of(fewer)), trusted).code == "unlisted_file"


def test_forged_signature_bytes_are_refused(
    signed: Bundle, trusted: dict[str, keys.PublicKey]
) -> None:
    head, body, sig = token_of(signed).split(".")
    flipped = bytearray(base64.urlsafe_b64decode(sig + "=="))
    flipped[5] ^= 1
    assert refused(with_token(signed, f"{head}.{body}.{b64u(bytes(flipped))}"), trusted).code == (
        "bad_signature"
    )


def test_payload_swapped_under_a_valid_signature_is_refused(
    signed: Bundle, trusted: dict[str, keys.PublicKey]
) -> None:
    head, _, sig = token_of(signed).split(".")
    payload = payload_of(signed)
    payload["files"] = [f for f in payload["files"] if not f["name"].endswith(".rego")]
    token = f"{head}.{b64u(json.dumps(payload).encode())}.{sig}"
    assert refused(with_token(signed, token), trusted).code == "bad_signature"


def test_alg_none_is_refused(signed: Bundle, trusted: dict[str, keys.PublicKey]) -> None:
    head = b64u(json.dumps({"alg": "none", "kid": "policy-2025"}).encode())
    body = token_of(signed).split(".")[1]
    for token in (f"{head}.{body}.", f"{head}.{body}.AAAA"):
        assert refused(with_token(signed, token), trusted).code == "alg_mismatch"


def test_hs256_with_the_public_key_as_secret_is_refused(
    signed: Bundle, sm2_key: keys.PrivateKey, trusted: dict[str, keys.PublicKey]
) -> None:
    """The classic confusion: HMAC keyed with the verifier's public key (PEM or raw)."""
    body = token_of(signed).split(".")[1]
    head = b64u(json.dumps({"alg": "HS256", "kid": "policy-2025", "typ": "JWT"}).encode())
    for secret in (sm2_key.public_key().public_pem(), sm2_key.public_key().public_der()):
        mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        token = f"{head}.{body}.{b64u(mac)}"
        assert refused(with_token(signed, token), trusted).code == "alg_mismatch"


def test_alg_must_match_the_key_the_kid_names(
    bundle: Bundle, sm2_key: keys.PrivateKey, ec_key: keys.PrivateKey
) -> None:
    signed = sign_bundle(bundle, ec_key, kid="policy-2025")  # ES256, but kid names the SM2 key
    error = refused(signed, {"policy-2025": sm2_key.public_key()})
    assert error.code == "alg_mismatch" and "ES256" in str(error)


def test_swapped_kid_is_refused(
    bundle: Bundle, sm2_key: keys.PrivateKey, trusted: dict[str, keys.PublicKey]
) -> None:
    attacker = keys.generate("sm2")
    forged = sign_bundle(bundle, attacker, kid="policy-2025")  # claims the trusted kid
    assert refused(forged, trusted).code == "bad_signature"
    unknown = sign_bundle(bundle, attacker, kid="attacker")
    assert refused(unknown, trusted).code == "unknown_kid"
    both = {**trusted, "old": keys.generate("sm2").public_key()}
    relabelled = sign_bundle(bundle, sm2_key, kid="old")  # real key, another key's kid
    assert refused(relabelled, both).code == "bad_signature"


def test_missing_kid_is_refused(signed: Bundle, sm2_key: keys.PrivateKey) -> None:
    token = jose.sign_jws(json.dumps(payload_of(signed)).encode(), sm2_key)  # no kid header
    assert refused(with_token(signed, token), {"policy-2025": sm2_key.public_key()}).code == (
        "unknown_kid"
    )


def test_payload_keyid_contradicting_the_header_is_refused(
    signed: Bundle, sm2_key: keys.PrivateKey, trusted: dict[str, keys.PublicKey]
) -> None:
    payload = payload_of(signed) | {"keyid": "someone-else"}
    assert refused(resign_payload(signed, sm2_key, payload), trusted).code == "unknown_kid"


def test_ed25519_keys_are_not_bundle_keys(bundle: Bundle) -> None:
    ed = keys.generate("ed25519")
    with pytest.raises(BundleSignatureError):
        sign_bundle(bundle, ed, kid="ed")
    token = jose.sign_jws(b'{"files": []}', ed, kid="ed")
    error = refused(with_token(bundle, token), {"ed": ed.public_key()})
    assert error.code == "unknown_kid"


@pytest.mark.parametrize("cut", [1, 10, 40, -1, -30])
def test_truncated_jws_is_refused(
    signed: Bundle, trusted: dict[str, keys.PublicKey], cut: int
) -> None:
    token = token_of(signed)
    short = token[:-cut] if cut > 0 else token[: len(token) // 2 + cut]
    assert refused(with_token(signed, short), trusted).code in ("malformed", "bad_signature")


def test_huge_signatures_file_is_refused_before_parsing(
    signed: Bundle, trusted: dict[str, keys.PublicKey]
) -> None:
    huge = b'{"signatures": ["' + b"A" * MAX_SIGNATURES_SIZE + b'"]}'
    error = refused(signed.with_files({SIGNATURES: huge}), trusted)
    assert error.code == "malformed" and "larger than" in str(error)


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        (b"not json", "malformed"),
        (b"[]", "malformed"),
        (b"{}", "unsigned"),
        (b'{"signatures": []}', "unsigned"),
        (b'{"signatures": [1]}', "malformed"),
        (b'{"signatures": ["a.b.c"], "plugin": "custom"}', "malformed"),
        (b'{"signatures": ["a.b.c"], "extra": 1}', "malformed"),
        (b'{"signatures": ["a.b.c"], "signatures": []}', "malformed"),
        (b'{"signatures": ' + b"[" * 5000 + b"]" * 5000 + b"}", "malformed"),
    ],
)
def test_malformed_signatures_files_are_refused(
    signed: Bundle, trusted: dict[str, keys.PublicKey], doc: bytes, code: str
) -> None:
    assert refused(signed.with_files({SIGNATURES: doc}), trusted).code == code


def test_two_signatures_are_refused(signed: Bundle, trusted: dict[str, keys.PublicKey]) -> None:
    token = token_of(signed)
    doc = json.dumps({"signatures": [token, token]}).encode()
    assert refused(signed.with_files({SIGNATURES: doc}), trusted).code == "malformed"


def test_duplicate_file_entries_are_refused(
    signed: Bundle, sm2_key: keys.PrivateKey, trusted: dict[str, keys.PublicKey]
) -> None:
    payload = payload_of(signed)
    payload["files"].append(dict(payload["files"][0]))
    error = refused(resign_payload(signed, sm2_key, payload), trusted)
    assert error.code == "duplicate_file"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e | {"algorithm": "MD5", "hash": hashlib.md5(b"").hexdigest()},
        lambda e: e | {"algorithm": "SHA-1", "hash": hashlib.sha1(b"").hexdigest()},
        lambda e: e | {"algorithm": "sha256"},
        lambda e: e | {"hash": e["hash"][:-2]},
        lambda e: e | {"hash": " " + e["hash"][1:]},
        lambda e: e | {"hash": 12},
        lambda e: {"name": e["name"], "hash": e["hash"]},
        lambda e: e | {"extra": True},
        lambda e: e | {"name": None},
    ],
)
def test_malformed_file_entries_are_refused(
    signed: Bundle, sm2_key: keys.PrivateKey, trusted: dict[str, keys.PublicKey], mutate: Any
) -> None:
    payload = payload_of(signed)
    payload["files"][0] = mutate(payload["files"][0])
    assert refused(resign_payload(signed, sm2_key, payload), trusted).code == "bad_file_entry"


def test_names_are_compared_exactly(
    signed: Bundle, sm2_key: keys.PrivateKey, trusted: dict[str, keys.PublicKey]
) -> None:
    payload = payload_of(signed)
    for entry in payload["files"]:
        if entry["name"].endswith(".rego"):
            entry["name"] = "/" + entry["name"]
    assert refused(resign_payload(signed, sm2_key, payload), trusted).code == "missing_file"


def test_payload_with_unknown_members_or_no_files_is_refused(
    signed: Bundle, sm2_key: keys.PrivateKey, trusted: dict[str, keys.PublicKey]
) -> None:
    payload = payload_of(signed)
    assert refused(resign_payload(signed, sm2_key, payload | {"exp": 1}), trusted).code == (
        "malformed"
    )
    assert refused(resign_payload(signed, sm2_key, payload | {"files": []}), trusted).code == (
        "bad_file_entry"
    )


def test_ambiguous_data_json_is_refused(
    bundle: Bundle, sm2_key: keys.PrivateKey, trusted: dict[str, keys.PublicKey]
) -> None:
    ambiguous = bundle.with_files({"ztgate/config/data.json": b'{"routes": {}, "routes": {}}'})
    with pytest.raises(BundleSignatureError):
        sign_bundle(ambiguous, sm2_key, kid="policy-2025")
    signed = sign_bundle(bundle, sm2_key, kid="policy-2025")
    evil = signed.with_files({"ztgate/config/data.json": b'{"routes": {}, "routes": {}}'})
    assert refused(evil, trusted).code == "malformed"
