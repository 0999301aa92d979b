"""Digest Fields (RFC 9530): the RFC's and RFC 9421's published digests, and attacks.

Vectors (values copied from the RFCs, contents from the same examples):

- RFC 9530 §2: ``sha-512=:YMAam51J…44T3qg==:`` is the digest of
  ``{"hello": "world"}`` followed by a line feed;
- RFC 9421 Appendix B.2 test-request: ``{"hello": "world"}`` has
  ``sha-512=:WZDPaVn/…XvJwew==:``; test-response ``{"message": "good dog"}``
  has ``sha-512=:mEWXIS7M…aGgfLQ==:``;
- the sha-256 of ``{"hello": "world"}`` as RFC 9530's examples give it,
  ``X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=``.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authn import rfc9530
from authn.rfc9530 import DigestError

HELLO = b'{"hello": "world"}'
HELLO_SHA256 = "X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
HELLO_SHA512 = (
    "WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew=="
)
HELLO_LF_SHA512 = (
    "YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg=="
)
GOOD_DOG = b'{"message": "good dog"}'
GOOD_DOG_SHA512 = (
    "mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ=="
)


def test_create_matches_the_published_values() -> None:
    assert rfc9530.content_digest(HELLO) == f"sha-256=:{HELLO_SHA256}:"
    assert rfc9530.content_digest(HELLO, algorithms=("sha-512",)) == f"sha-512=:{HELLO_SHA512}:"
    assert rfc9530.content_digest(HELLO + b"\n", algorithms=("sha-512",)) == (
        f"sha-512=:{HELLO_LF_SHA512}:"
    )
    assert rfc9530.repr_digest(GOOD_DOG, algorithms=("sha-512",)) == f"sha-512=:{GOOD_DOG_SHA512}:"
    both = rfc9530.content_digest(HELLO, algorithms=("sha-256", "sha-512"))
    assert both == f"sha-256=:{HELLO_SHA256}:, sha-512=:{HELLO_SHA512}:"


@pytest.mark.parametrize(
    ("field", "content", "verified"),
    [
        (f"sha-512=:{HELLO_SHA512}:", HELLO, ("sha-512",)),
        (f"sha-256=:{HELLO_SHA256}:", HELLO, ("sha-256",)),
        (f"sha-512=:{HELLO_LF_SHA512}:", HELLO + b"\n", ("sha-512",)),
        (f"sha-512=:{GOOD_DOG_SHA512}:", GOOD_DOG, ("sha-512",)),
        (f"sha-256=:{HELLO_SHA256}:,sha-512=:{HELLO_SHA512}:", HELLO, ("sha-256", "sha-512")),
        # an unknown or deprecated algorithm is ignored next to an accepted one (§2, §5)
        (f"md5=:AAAA:, sha-256=:{HELLO_SHA256}:, x-new=:AA==:", HELLO, ("sha-256",)),
    ],
)
def test_verify_published_values(field: str, content: bytes, verified: tuple[str, ...]) -> None:
    assert rfc9530.verify_content_digest(field, content) == verified
    assert rfc9530.verify_repr_digest(field, content) == verified


def test_tampered_content_is_a_mismatch() -> None:
    with pytest.raises(DigestError) as err:
        rfc9530.verify_content_digest(f"sha-512=:{HELLO_SHA512}:", b'{"hello": "World"}')
    assert err.value.code == "digest_mismatch"
    assert err.value.status == 400


def test_every_accepted_digest_present_must_match() -> None:
    """§6.7: a right SHA-256 does not excuse a wrong SHA-512 next to it."""
    wrong512 = rfc9530.content_digest(b"other", algorithms=("sha-512",))
    field = f"sha-256=:{HELLO_SHA256}:, {wrong512}"
    with pytest.raises(DigestError) as err:
        rfc9530.verify_content_digest(field, HELLO)
    assert err.value.code == "digest_mismatch"
    # ... unless the deployment accepts only SHA-256, then SHA-512 is just ignored
    assert rfc9530.verify_content_digest(field, HELLO, accepted=("sha-256",)) == ("sha-256",)


def test_deprecated_algorithms_are_never_enough() -> None:
    import base64
    import hashlib

    md5 = base64.b64encode(hashlib.md5(HELLO).digest()).decode()  # the attacker's choice
    with pytest.raises(DigestError) as err:
        rfc9530.verify_content_digest(f"md5=:{md5}:", HELLO)
    assert err.value.code == "unsupported_digest_algorithm"


def test_sm3_is_opt_in() -> None:
    field = rfc9530.content_digest(HELLO, algorithms=("sm3",))
    assert field.startswith("sm3=:")
    with pytest.raises(DigestError) as err:
        rfc9530.verify_content_digest(field, HELLO)  # not accepted by default
    assert err.value.code == "unsupported_digest_algorithm"
    assert rfc9530.verify_content_digest(field, HELLO, accepted=("sm3", "sha-256")) == ("sm3",)
    with pytest.raises(DigestError):
        rfc9530.verify_content_digest(field, HELLO + b" ", accepted=("sm3",))


@pytest.mark.parametrize(
    "field",
    [
        "",  # empty Dictionary: no digest at all
        "sha-256",  # Boolean, not a Byte Sequence
        "sha-256=abc",  # Token
        'sha-256="X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="',  # String
        "sha-256=(:AA==:)",  # Inner List
        "sha-256=:not base64:",
        "SHA-256=:AA==:",  # keys are lower-case
        f"sha-256=:{HELLO_SHA256}:,",  # trailing comma
        f"sha-256=:{HELLO_SHA256}:, sha-256=:{HELLO_SHA256}:",  # duplicate key
        "sha-256=:" + "A" * 5000 + ":",  # oversized
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\u00e9",  # non-ASCII
    ],
)
def test_malformed_fields(field: str) -> None:
    with pytest.raises(DigestError) as err:
        rfc9530.verify_content_digest(field, HELLO)
    expected = "unsupported_digest_algorithm" if field == "" else "malformed_digest"
    assert err.value.code == expected


def test_bad_configuration_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        rfc9530.content_digest(HELLO, algorithms=("md5",))
    with pytest.raises(ValueError):
        rfc9530.verify_content_digest("sha-256=:AA==:", HELLO, accepted=())


@given(st.binary(max_size=512), st.sampled_from(["sha-256", "sha-512", "sm3"]))
def test_round_trip(content: bytes, algorithm: str) -> None:
    field = rfc9530.content_digest(content, algorithms=(algorithm,))
    assert rfc9530.verify_content_digest(field, content, accepted=(algorithm,)) == (algorithm,)


@given(st.text(max_size=200))
def test_arbitrary_fields_fail_only_with_digest_error(field: str) -> None:
    try:
        rfc9530.verify_content_digest(field, HELLO)
    except DigestError as exc:
        assert exc.code in ("malformed_digest", "unsupported_digest_algorithm", "digest_mismatch")
