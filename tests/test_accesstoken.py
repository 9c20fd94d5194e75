"""Access tokens: interoperability with the official twilio package, and every verification rule."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from rtcroom import errors
from rtcroom.accesstoken import MAX_TOKEN_TTL, AccessToken, VideoGrant, verify_token
from twilio.jwt.access_token import AccessToken as TwilioAccessToken
from twilio.jwt.access_token.grants import VideoGrant as TwilioVideoGrant

ACCOUNT = "AC" + "0" * 32
KEY = "SK" + "1" * 32
SECRET = "s3cret-of-the-api-key-0123456789abcdef"  # Twilio secrets are 32 characters
NOW = 1_800_000_000


def mint(identity: str | None = "alice", room: str | None = "standup", **kwargs: Any) -> str:
    token = AccessToken(ACCOUNT, KEY, SECRET, identity=identity, **kwargs)
    token.add_grant(VideoGrant(room=room))
    return token.to_jwt(now=NOW)


def forge(header: dict[str, Any], claims: Any, secret: str = SECRET) -> str:
    """A token with exactly this header and claims, signed with PyJWT (or not a JWT at all)."""
    return jwt.encode(claims, secret, algorithm="HS256", headers=header)


def good_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "jti": f"{KEY}-{NOW}",
        "iss": KEY,
        "sub": ACCOUNT,
        "nbf": NOW,
        "exp": NOW + 3600,
        "grants": {"identity": "alice", "video": {"room": "standup"}},
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


OTHER_SECRET = "another-secret-0123456789abcdefghij"
HEADER = {"typ": "JWT", "cty": "twilio-fpa;v=1"}


def expect(code: int, token: str, **kwargs: Any) -> errors.TwilioError:
    kwargs.setdefault("now", NOW + 10)
    with pytest.raises(errors.TwilioError) as info:
        verify_token(token, SECRET, **kwargs)
    assert info.value.code == code, info.value
    assert type(info.value) is errors.ERRORS_BY_CODE[code]
    return info.value


# --- interoperability ---------------------------------------------------------------------------


def test_official_token_verifies_here() -> None:
    token = TwilioAccessToken(ACCOUNT, KEY, SECRET, identity="bob", ttl=600)
    token.add_grant(TwilioVideoGrant(room="standup"))
    claims = verify_token(token.to_jwt(), SECRET, room="standup")
    assert claims["grants"] == {"identity": "bob", "video": {"room": "standup"}}
    assert claims["iss"] == KEY and claims["sub"] == ACCOUNT


def test_official_token_without_room_joins_any_room() -> None:
    token = TwilioAccessToken(ACCOUNT, KEY, SECRET, identity="bob")
    token.add_grant(TwilioVideoGrant())
    assert verify_token(token.to_jwt(), SECRET, room="anything")["grants"]["video"] == {}


def test_our_token_has_the_official_shape() -> None:
    ours = AccessToken(ACCOUNT, KEY, SECRET, identity="carol", ttl=900, region="us1")
    ours.add_grant(VideoGrant(room="r1"))
    theirs = TwilioAccessToken(ACCOUNT, KEY, SECRET, identity="carol", ttl=900, region="us1")
    theirs.add_grant(TwilioVideoGrant(room="r1"))
    a, b = ours.to_jwt(), theirs.to_jwt()
    assert jwt.get_unverified_header(a) == jwt.get_unverified_header(b)
    ca = jwt.decode(a, SECRET, algorithms=["HS256"])
    cb = jwt.decode(b, SECRET, algorithms=["HS256"])
    assert ca.keys() == cb.keys()
    assert {k: ca[k] for k in ("iss", "sub", "grants")} == {
        k: cb[k] for k in ("iss", "sub", "grants")
    }
    assert ca["exp"] - ca["nbf"] == 900
    assert ca["jti"] == f"{KEY}-{ca['nbf']}"


def test_our_token_reads_back_with_the_official_decoder() -> None:
    token = AccessToken(ACCOUNT, KEY, SECRET, identity="dave")
    token.add_grant(VideoGrant(room="r2"))
    decoded = TwilioAccessToken.from_jwt(token.to_jwt(), SECRET)
    assert decoded.payload["grants"] == {"identity": "dave", "video": {"room": "r2"}}
    assert decoded.headers["cty"] == "twilio-fpa;v=1"


def test_ttl_override_and_valid_until() -> None:
    token = AccessToken(ACCOUNT, KEY, SECRET, identity="x", ttl=100)
    assert token.claims(now=NOW)["exp"] == NOW + 100
    assert token.claims(now=NOW, ttl=50)["exp"] == NOW + 50
    assert AccessToken(ACCOUNT, KEY, SECRET, valid_until=NOW + 7).claims(now=NOW)["exp"] == NOW + 7
    assert "nbf" not in AccessToken(ACCOUNT, KEY, SECRET, nbf=None).claims(now=NOW)


def test_later_video_grant_replaces_earlier() -> None:
    token = AccessToken(ACCOUNT, KEY, SECRET, identity="x", grants=[VideoGrant(room="a")])
    token.add_grant(VideoGrant(room="b"))
    assert token.claims(now=NOW)["grants"]["video"] == {"room": "b"}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"account_sid": ""}, "account_sid"),
        ({"api_key_sid": None}, "api_key_sid"),
        ({"api_key_secret": ""}, "api_key_secret"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": MAX_TOKEN_TTL + 1}, "ttl"),
    ],
)
def test_minting_refuses_bad_arguments(kwargs: dict[str, Any], fragment: str) -> None:
    args: dict[str, Any] = {"account_sid": ACCOUNT, "api_key_sid": KEY, "api_key_secret": SECRET}
    args.update(kwargs)
    with pytest.raises(ValueError, match=fragment):
        AccessToken(**args)


def test_minting_refuses_foreign_grants_and_bad_identity() -> None:
    with pytest.raises(TypeError, match="grant"):
        AccessToken(ACCOUNT, KEY, SECRET).add_grant(TwilioVideoGrant())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="identity"):
        AccessToken(ACCOUNT, KEY, SECRET, identity=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="room"):
        VideoGrant(room=3)  # type: ignore[arg-type]


# --- verification: the happy path and its options -----------------------------------------------


def test_valid_token_returns_claims() -> None:
    claims = verify_token(mint(), SECRET, room="standup", now=NOW + 10)
    assert claims == good_claims()


def test_several_api_keys() -> None:
    other = "SK" + "2" * 32
    keys = {KEY: SECRET, other: OTHER_SECRET}
    assert verify_token(mint(), keys, now=NOW)["iss"] == KEY
    token = AccessToken(ACCOUNT, other, OTHER_SECRET, identity="y")
    token.add_grant(VideoGrant())
    assert verify_token(token.to_jwt(now=NOW), keys, now=NOW)["iss"] == other
    with pytest.raises(errors.AccessTokenIssuerInvalidError):
        verify_token(mint(), {other: OTHER_SECRET}, now=NOW)


def test_leeway_accepts_small_clock_skew() -> None:
    token = mint(ttl=60)
    verify_token(token, SECRET, now=NOW + 61, leeway=5)
    verify_token(token, SECRET, now=NOW - 3, leeway=5)
    expect(20104, token, now=NOW + 66, leeway=5)
    expect(20105, token, now=NOW - 6, leeway=5)


# --- verification: one test per rule ------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b",
        "a.b.c.d",
        "!!!.@@@.###",
        base64.urlsafe_b64encode(b'{"alg":"HS256"}').decode() + ".bm90IGpzb24." + "c2ln",
    ],
)
def test_20101_not_a_jwt(token: str) -> None:
    expect(20101, token)


def test_20101_claims_not_an_object() -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", **HEADER}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(b"[1, 2]").rstrip(b"=")
    expect(20101, f"{header.decode()}.{body.decode()}.c2ln")


def test_20101_non_string() -> None:
    with pytest.raises(errors.AccessTokenInvalidError):
        verify_token(None, SECRET)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "header",
    [
        {"typ": "JWT"},  # no cty
        {"typ": "JWT", "cty": "JWT"},
        {"typ": "JOSE+JSON", "cty": "twilio-fpa;v=1"},
    ],
)
def test_20102_header(header: dict[str, Any]) -> None:
    expect(20102, forge(header, good_claims()))


def test_20102_algorithm() -> None:
    token = jwt.encode(good_claims(), SECRET * 2, algorithm="HS512", headers=HEADER)
    expect(20102, token)
    unsigned = jwt.encode(good_claims(), None, algorithm="none", headers=HEADER)
    expect(20102, unsigned)


@pytest.mark.parametrize(
    "claims",
    [good_claims(iss=None), good_claims(sub=None), good_claims(iss=""), good_claims(sub=7)],
)
def test_20103_issuer_subject(claims: dict[str, Any]) -> None:
    expect(20103, forge(HEADER, claims))


def test_20103_wrong_account() -> None:
    expect(20103, mint(), account_sid="AC" + "9" * 32)
    verify_token(mint(), SECRET, account_sid=ACCOUNT, now=NOW)


def test_20107_signature() -> None:
    expect(20107, forge(HEADER, good_claims(), secret=SECRET[::-1]))
    head, _body, sig = mint().split(".")
    tampered = base64.urlsafe_b64encode(
        json.dumps(good_claims(grants={"identity": "mallory", "video": {}})).encode()
    ).rstrip(b"=")
    expect(20107, f"{head}.{tampered.decode()}.{sig}")


def test_20104_expired() -> None:
    token = mint(ttl=60)
    verify_token(token, SECRET, now=NOW + 59)
    expect(20104, token, now=NOW + 60)


@pytest.mark.parametrize("exp", [None, "tomorrow", True])
def test_20104_expiration_invalid(exp: Any) -> None:
    expect(20104, forge(HEADER, good_claims(exp=exp)))


def test_20104_validity_longer_than_24_hours() -> None:
    expect(20104, forge(HEADER, good_claims(exp=NOW + MAX_TOKEN_TTL + 1)))
    verify_token(forge(HEADER, good_claims(exp=NOW + MAX_TOKEN_TTL)), SECRET, now=NOW)
    # Without nbf the lifetime counts from the issue time in jti.
    expect(20104, forge(HEADER, good_claims(nbf=None, exp=NOW + MAX_TOKEN_TTL + 1)))
    # The official package mints such a token when asked to; it is refused here as by Twilio.
    official = TwilioAccessToken(ACCOUNT, KEY, SECRET, identity="z", ttl=MAX_TOKEN_TTL + 60)
    official.add_grant(TwilioVideoGrant())
    with pytest.raises(errors.AccessTokenExpiredError):
        verify_token(official.to_jwt(), SECRET)


def test_20105_not_yet_valid() -> None:
    token = forge(HEADER, good_claims(nbf=NOW + 100, exp=NOW + 200))
    expect(20105, token, now=NOW + 99)
    verify_token(token, SECRET, now=NOW + 100)
    expect(20105, forge(HEADER, good_claims(nbf="soon")))


@pytest.mark.parametrize(
    "grants",
    [
        "video",
        {"video": {"room": "standup"}},  # no identity
        {"identity": "", "video": {}},
        {"identity": 42, "video": {}},
        {"identity": "alice"},  # no video grant
        {"identity": "alice", "video": "standup"},
        {"identity": "alice", "video": {"room": 5}},
    ],
)
def test_20106_grants(grants: Any) -> None:
    expect(20106, forge(HEADER, good_claims(grants=grants)))


def test_20106_missing_grants() -> None:
    expect(20106, forge(HEADER, good_claims(grants=None)))


def test_20106_identity_missing_from_minted_token() -> None:
    expect(20106, mint(identity=None))


def test_20106_wrong_room() -> None:
    token = mint(room="standup")
    expect(20106, token, room="retro")
    assert (
        verify_token(token, SECRET, room="standup", now=NOW)["grants"]["video"]["room"] == "standup"
    )
    assert verify_token(mint(room=None), SECRET, room="retro", now=NOW)["grants"]["video"] == {}


def test_checks_run_in_documented_order() -> None:
    # A bad signature wins over expiry and grants: nothing unsigned is trusted.
    bad = forge(HEADER, good_claims(exp=NOW - 1, grants={}), secret=SECRET[::-1])
    expect(20107, bad)
    # Expiry is checked before grants.
    expect(20104, forge(HEADER, good_claims(exp=NOW - 1, grants={})))


def test_real_clock_is_the_default() -> None:
    token = AccessToken(ACCOUNT, KEY, SECRET, identity="now", ttl=60)
    token.add_grant(VideoGrant())
    verify_token(token.to_jwt(), SECRET)
    old = AccessToken(ACCOUNT, KEY, SECRET, identity="old", ttl=60)
    old.add_grant(VideoGrant())
    with pytest.raises(errors.AccessTokenExpiredError):
        verify_token(old.to_jwt(now=int(time.time()) - 120), SECRET)
