"""Access tokens in Twilio's format: mint them, and verify them as a Twilio Video server would.

A token is an HS256 JWT signed with an API key secret. Header
``{"typ": "JWT", "alg": "HS256", "cty": "twilio-fpa;v=1"}`` (plus ``twr`` when a region is set);
claims ``jti`` = ``"<API key SID>-<issued at>"``, ``iss`` = API key SID, ``sub`` = account SID,
``nbf``, ``exp`` and ``grants`` = ``{"identity": ..., "video": {"room": ...}}``. This is exactly
what the official ``twilio`` package's ``AccessToken`` + ``VideoGrant`` produce (it sets no
``iat``), so tokens move freely between the two.

:func:`verify_token` checks a token in this order and raises the first error that applies:

======  =====================================================================================
20101   not a JWT at all (longer than 16 KiB, wrong number of parts, bad base64 or JSON,
        claims not an object)
20102   header is not ``alg: HS256`` / ``typ: JWT`` / ``cty: twilio-fpa;v=1``
20103   ``iss`` or ``sub`` missing or not a string, or ``iss`` is not an accepted API key
20107   signature does not match the API key secret
20104   ``exp`` missing, not a number, past; or the token lives longer than 24 hours
20105   ``nbf`` not a number, or in the future
20106   ``grants`` not an object, no ``identity``, no ``video`` grant, or a room grant for
        another room
======  =====================================================================================
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TypeGuard

import jwt

from rtcroom.errors import (
    AccessTokenExpiredError,
    AccessTokenGrantsInvalidError,
    AccessTokenHeaderInvalidError,
    AccessTokenInvalidError,
    AccessTokenIssuerInvalidError,
    AccessTokenNotYetValidError,
    AccessTokenSignatureInvalidError,
)

__all__ = ["CONTENT_TYPE", "MAX_TOKEN_LENGTH", "MAX_TOKEN_TTL", "AccessToken", "VideoGrant",
           "verify_token"]

ALGORITHM = "HS256"
CONTENT_TYPE = "twilio-fpa;v=1"
MAX_TOKEN_TTL = 24 * 3600
"""Twilio refuses tokens valid for longer than this many seconds, and so does rtcroom."""
MAX_TOKEN_LENGTH = 16384
"""Longest token accepted: a token with a 128-character room name and a 256-character identity
is under 1 KiB."""


class VideoGrant:
    """Permission to join Video rooms: any room, or only the one named by ``room``."""

    key = "video"

    def __init__(self, room: str | None = None) -> None:
        if room is not None and not isinstance(room, str):
            raise TypeError(f"VideoGrant room: expected a string, got {type(room).__name__}")
        self.room = room

    def to_payload(self) -> dict[str, Any]:
        """The grant as it appears under ``grants.video`` in the token."""
        return {"room": self.room} if self.room else {}

    def __repr__(self) -> str:
        return f"VideoGrant(room={self.room!r})"


class AccessToken:
    """A token a participant presents to join a room.

    Same call shape as ``twilio.jwt.access_token.AccessToken``::

        token = AccessToken(account_sid, api_key_sid, api_key_secret, identity="alice")
        token.add_grant(VideoGrant(room="standup"))
        jwt_string = token.to_jwt()

    ``nbf`` defaults to the time of :meth:`to_jwt` (pass ``None`` to omit it); ``valid_until``
    (seconds since the epoch) overrides ``ttl``. ``region`` goes into the ``twr`` header.
    """

    def __init__(
        self,
        account_sid: str,
        api_key_sid: str,
        api_key_secret: str,
        grants: list[VideoGrant] | None = None,
        identity: str | None = None,
        nbf: int | None | object = ...,
        ttl: int = 3600,
        valid_until: int | None = None,
        region: str | None = None,
    ) -> None:
        for name, value in (
            ("account_sid", account_sid),
            ("api_key_sid", api_key_sid),
            ("api_key_secret", api_key_secret),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"AccessToken {name}: expected a non-empty string, got {value!r}")
        if identity is not None and not isinstance(identity, str):
            raise TypeError(f"AccessToken identity: expected a string, got {identity!r}")
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 < ttl <= MAX_TOKEN_TTL:
            raise ValueError(
                f"AccessToken ttl: expected seconds in 1..{MAX_TOKEN_TTL}, got {ttl!r}"
            )
        self.account_sid = account_sid
        self.api_key_sid = api_key_sid
        self.api_key_secret = api_key_secret
        self.identity = identity
        self.nbf = nbf
        self.ttl = ttl
        self.valid_until = valid_until
        self.region = region
        self.grants: list[VideoGrant] = []
        for grant in grants or []:
            self.add_grant(grant)

    def add_grant(self, grant: VideoGrant) -> None:
        """Add a grant; a later grant of the same kind replaces an earlier one."""
        if not isinstance(grant, VideoGrant):
            raise TypeError(f"AccessToken grant: expected a VideoGrant, got {grant!r}")
        self.grants = [g for g in self.grants if g.key != grant.key] + [grant]

    def claims(self, now: int | None = None, ttl: int | None = None) -> dict[str, Any]:
        """The claims :meth:`to_jwt` signs, issued at ``now`` (default: the current time)."""
        issued_at = int(time.time()) if now is None else now
        grants: dict[str, Any] = {g.key: g.to_payload() for g in self.grants}
        if self.identity:
            grants["identity"] = self.identity
        claims: dict[str, Any] = {
            "jti": f"{self.api_key_sid}-{issued_at}",
            "grants": grants,
            "iss": self.api_key_sid,
            "sub": self.account_sid,
            "exp": issued_at + ttl if ttl else self.valid_until or issued_at + self.ttl,
        }
        if self.nbf is ...:
            claims["nbf"] = issued_at
        elif self.nbf is not None:
            claims["nbf"] = self.nbf
        return claims

    def to_jwt(self, ttl: int | None = None, *, now: int | None = None) -> str:
        """The signed token, issued at ``now`` (default: the current time).

        ``ttl`` overrides the constructor's lifetime for this one token, as in the official
        package.
        """
        headers = {"typ": "JWT", "cty": CONTENT_TYPE}
        if self.region:
            headers["twr"] = self.region
        claims = self.claims(now, ttl)
        return jwt.encode(claims, self.api_key_secret, algorithm=ALGORITHM, headers=headers)

    def __repr__(self) -> str:
        return (
            f"AccessToken(account_sid={self.account_sid!r}, api_key_sid={self.api_key_sid!r}, "
            f"identity={self.identity!r}, grants={self.grants!r})"
        )


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def verify_token(
    token: str,
    api_key_secret: str | Mapping[str, str],
    room: str | None = None,
    *,
    account_sid: str | None = None,
    now: float | None = None,
    leeway: float = 0,
) -> dict[str, Any]:
    """Check ``token`` and return its claims, or raise the Twilio error 20101-20107 that applies.

    ``api_key_secret`` is the secret of the one API key tokens are signed with, or a mapping from
    API key SID to secret when several keys are accepted (a token whose ``iss`` is not in it is
    refused with 20103). ``room``: the room being joined; a token granting another room is
    refused (a token whose video grant names no room may join any). ``account_sid``: when given,
    ``sub`` must equal it. ``now`` (seconds since the epoch) defaults to the current time;
    ``leeway`` allows that much clock skew on ``exp`` and ``nbf``.
    """
    if not isinstance(token, str) or not token:
        raise AccessTokenInvalidError("Invalid Access Token: not a string")
    if len(token) > MAX_TOKEN_LENGTH:
        # Refused before any decoding: a hostile client must not make the server parse megabytes.
        raise AccessTokenInvalidError(
            f"Invalid Access Token: longer than {MAX_TOKEN_LENGTH} characters")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AccessTokenInvalidError(f"Invalid Access Token: {exc}") from exc
    if not isinstance(claims, dict):
        raise AccessTokenInvalidError("Invalid Access Token: claims are not an object")

    if header.get("alg") != ALGORITHM:
        raise AccessTokenHeaderInvalidError(
            f"Invalid Access Token header: alg {header.get('alg')!r}, expected {ALGORITHM!r}"
        )
    if header.get("typ", "JWT") != "JWT":
        raise AccessTokenHeaderInvalidError(
            f"Invalid Access Token header: typ {header.get('typ')!r}, expected 'JWT'"
        )
    if header.get("cty") != CONTENT_TYPE:
        raise AccessTokenHeaderInvalidError(
            f"Invalid Access Token header: cty {header.get('cty')!r}, expected {CONTENT_TYPE!r}"
        )

    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not issuer:
        raise AccessTokenIssuerInvalidError("Invalid Access Token issuer/subject: no iss")
    if not isinstance(subject, str) or not subject:
        raise AccessTokenIssuerInvalidError("Invalid Access Token issuer/subject: no sub")
    if account_sid is not None and subject != account_sid:
        raise AccessTokenIssuerInvalidError(
            f"Invalid Access Token issuer/subject: sub {subject!r} is not this account"
        )
    if isinstance(api_key_secret, Mapping):
        secret = api_key_secret.get(issuer)
        if secret is None:
            raise AccessTokenIssuerInvalidError(
                f"Invalid Access Token issuer/subject: unknown API key {issuer!r}"
            )
    else:
        secret = api_key_secret

    try:
        jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise AccessTokenSignatureInvalidError() from exc
    except jwt.PyJWTError as exc:
        raise AccessTokenInvalidError(f"Invalid Access Token: {exc}") from exc

    current = time.time() if now is None else now
    expires, not_before = claims.get("exp"), claims.get("nbf")
    if not _is_number(expires):
        raise AccessTokenExpiredError(
            f"Access Token expired or expiration date invalid: exp {expires!r}"
        )
    if expires <= current - leeway:
        raise AccessTokenExpiredError()
    if not_before is not None and not _is_number(not_before):
        raise AccessTokenNotYetValidError(f"Access Token not yet valid: nbf {not_before!r}")
    # The lifetime counts from nbf, else from when the token was minted (the jti suffix).
    start: float | None = not_before if not_before is not None else _issued_at(claims, issuer)
    if start is not None and expires - start > MAX_TOKEN_TTL:
        raise AccessTokenExpiredError(
            "Access Token expired or expiration date invalid: "
            f"valid for {expires - start:.0f} s, more than {MAX_TOKEN_TTL} s"
        )
    if not_before is not None and not_before > current + leeway:
        raise AccessTokenNotYetValidError()

    grants = claims.get("grants")
    if not isinstance(grants, dict):
        raise AccessTokenGrantsInvalidError("Invalid Access Token grants: no grants object")
    identity = grants.get("identity")
    if not isinstance(identity, str) or not identity:
        raise AccessTokenGrantsInvalidError("Invalid Access Token grants: no identity")
    video = grants.get("video")
    if not isinstance(video, dict):
        raise AccessTokenGrantsInvalidError("Invalid Access Token grants: no video grant")
    granted_room = video.get("room")
    if granted_room is not None and not isinstance(granted_room, str):
        raise AccessTokenGrantsInvalidError("Invalid Access Token grants: video.room not a string")
    if room is not None and granted_room and granted_room != room:
        raise AccessTokenGrantsInvalidError(
            f"Invalid Access Token grants: granted room {granted_room!r}, not {room!r}"
        )
    return claims


def _issued_at(claims: dict[str, Any], issuer: str) -> int | None:
    jti = claims.get("jti")
    prefix = f"{issuer}-"
    if isinstance(jti, str) and jti.startswith(prefix) and jti[len(prefix) :].isdigit():
        return int(jti[len(prefix) :])
    return None
