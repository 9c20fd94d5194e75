"""Hostile access tokens against a running server: every one refused with its Twilio code on the
signaling endpoint, and none of them (nor a valid one) accepted by the REST API, which
authenticates with the API key and nothing else."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp
import jwt
import pytest
from rtcroom.accesstoken import CONTENT_TYPE
from serverutil import (
    ACCOUNT_SID,
    API_KEY_SECRET,
    API_KEY_SID,
    connect_body,
    raw_client,
    running_server,
    token,
)

HEADER = {"typ": "JWT", "cty": CONTENT_TYPE}


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    out: dict[str, Any] = {"jti": f"{API_KEY_SID}-{now}", "iss": API_KEY_SID, "sub": ACCOUNT_SID,
                           "nbf": now, "exp": now + 600,
                           "grants": {"identity": "mallory", "video": {"room": "room"}}}
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def signed(payload: dict[str, Any], secret: str = API_KEY_SECRET,
           headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers or HEADER)


def unsigned(payload: dict[str, Any]) -> str:
    """``alg: none``: a token anyone can forge."""
    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{part({'typ': 'JWT', 'alg': 'none', 'cty': CONTENT_TYPE})}.{part(payload)}."


def hostile_tokens() -> list[tuple[str, str, int]]:
    now = int(time.time())
    return [
        ("expired", signed(claims(nbf=now - 700, exp=now - 100)), 20104),
        ("not yet valid", signed(claims(nbf=now + 300, exp=now + 900)), 20105),
        ("bad signature", signed(claims(), secret="not-the-secret-" + "x" * 32), 20107),
        ("alg none", unsigned(claims()), 20102),
        ("wrong key SID", signed(claims(iss="SK" + "9" * 32, jti=f"SK{'9' * 32}-{now}")), 20103),
        ("wrong account", signed(claims(sub="AC" + "9" * 32)), 20103),
        ("wrong room", signed(claims(grants={"identity": "mallory",
                                             "video": {"room": "other"}})), 20106),
        ("missing identity", signed(claims(grants={"video": {"room": "room"}})), 20106),
        ("no video grant", signed(claims(grants={"identity": "mallory"})), 20106),
        ("valid for over 24 h", signed(claims(exp=now + 25 * 3600)), 20104),
        ("not a JWT", "not.a.jwt", 20101),
        ("oversize", signed(claims(grants={"identity": "mallory", "video": {"room": "room"},
                                           "padding": "x" * 100_000})), 20101),
        # A well-formed token whose identity the room refuses: the participant codes apply.
        ("identity too long", signed(claims(grants={"identity": "m" * 257,
                                                    "video": {"room": "room"}})), 53201),
        ("identity with control characters",
         signed(claims(grants={"identity": "mal\x07lory\n", "video": {"room": "room"}})), 53202),
    ]


async def refused_with(server: Any, body: dict[str, Any]) -> int:
    async with raw_client(server) as c:
        await c.hello(body)
        error = await c.body("error")
        assert await c.closed() == 1000
        return int(error["code"])


async def test_every_hostile_token_refused_on_connect_with_its_code() -> None:
    async with running_server() as server:
        for case, tok, code in hostile_tokens():
            assert await refused_with(server, connect_body(tok)) == code, case
        assert server.service.store is not None
        assert await server.service.store.count_in_progress() == 0


async def test_every_hostile_token_refused_on_ice_request() -> None:
    async with running_server() as server:
        for case, tok, code in hostile_tokens():
            if code >= 53000 or case == "wrong room":
                continue  # rooms and identities are checked on joining; ice has neither
            assert await refused_with(server, {"type": "ice", "version": 2,
                                               "token": tok}) == code, case


async def test_token_reuse_after_expiry_cannot_resume_the_session() -> None:
    """A participant joined with a short-lived token; after it expired, the same token cannot
    resume the session (sync) nor join again."""
    now = int(time.time())
    short = signed(claims(nbf=now, exp=now + 1, grants={"identity": "alice",
                                                          "video": {"room": "room"}}))
    async with running_server(session_timeout=60) as server:
        async with raw_client(server) as c:
            await c.hello(connect_body(short))
            session = (await c.body("connected"))["session"]
        # The server allows 5 s of clock skew; wait until the token is expired beyond it.
        await asyncio.sleep(max(0.0, now + 1 + 5.5 - time.time()))
        sync = {"type": "sync", "version": 2, "session": session, "token": short, "name": "room",
                "participant": {"revision": 2, "tracks": []}, "peer_connections": []}
        assert await refused_with(server, sync) == 20104
        assert await refused_with(server, connect_body(short)) == 20104


async def test_a_hostile_token_does_not_disturb_a_connected_participant() -> None:
    async with running_server() as server, raw_client(server) as alice:
        await alice.hello(connect_body(token("alice")))
        alice.session = (await alice.body("connected"))["session"]
        for _, tok, _ in hostile_tokens():
            await refused_with(server, connect_body(tok))
        room = await server.service.store.find_in_progress("room")
        assert room is not None and [p.identity for p in room.active_participants()] == ["alice"]
        # alice's connection still works: a harmless update is accepted without an error.
        await alice.msg({"type": "update", "participant": {"revision": 2, "tracks": []}})
        await alice.send({"type": "heartbeat"})
        assert not alice.ws.closed


# --- REST ------------------------------------------------------------------------------------

def rest_paths(server: Any) -> list[tuple[str, str]]:
    """Every REST route the application serves, with placeholders filled in."""
    out = []
    for route in server.runner.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path and path.startswith("/v1/") and route.method in ("GET", "POST"):
            out.append((route.method, path.replace("{room}", "RM0").replace(
                "{participant}", "PA0").replace("{track}", "MT0")))
    return out


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_rest_refuses_access_tokens_and_wrong_keys_on_every_route() -> None:
    async with running_server() as server, aiohttp.ClientSession() as http:
        paths = rest_paths(server)
        assert len(paths) >= 9  # every route the REST module declares is found
        valid = token("alice")
        headers_list = [
            {},
            {"Authorization": f"Bearer {valid}"},
            {"Authorization": basic(API_KEY_SID, valid)},
            {"Authorization": basic(ACCOUNT_SID, API_KEY_SECRET)},
            {"Authorization": basic(API_KEY_SID, API_KEY_SECRET + "x")},
            {"Authorization": basic(API_KEY_SID, "")},
            {"Authorization": "Basic !!!not-base64"},
            {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
        ] + [{"Authorization": f"Bearer {tok}"} for case, tok, _ in hostile_tokens()
             if case != "oversize"]
        for method, path in paths:
            for headers in headers_list:
                async with http.request(method, server.http_url + path,
                                        headers=headers) as resp:
                    assert resp.status == 401, (method, path, headers)
                    body = await resp.json()
                    assert body["code"] == 20003
            # aiohttp refuses a header line over 8 KiB before any handler runs.
            [oversize] = [tok for case, tok, _ in hostile_tokens() if case == "oversize"]
            async with http.request(method, server.http_url + path,
                                    headers={"Authorization": f"Bearer {oversize}"}) as resp:
                assert resp.status == 400
        # Only the health check (and the API description, which holds no data) are public.
        for path, status in (("/health", 200), ("/openapi.json", 200)):
            async with http.get(server.http_url + path) as resp:
                assert resp.status == status
        async with http.get(server.http_url + "/v1/Rooms",
                            headers={"Authorization": basic(API_KEY_SID, API_KEY_SECRET)}) as r:
            assert r.status == 200


@pytest.mark.parametrize("path", ["/v1/rooms", "/v1//Rooms", "/V1/Rooms", "/v1/Rooms/"])
async def test_rest_path_variants_do_not_bypass_auth(path: str) -> None:
    async with running_server() as server, aiohttp.ClientSession() as http, \
            http.get(server.http_url + path) as resp:
        assert resp.status in (401, 404), path
