"""The REST API (/v1/Rooms...) against a real server, with real participants."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import rtcroom
from rtcroom import errors
from serverutil import API_KEY_SECRET, API_KEY_SID, loopback_ice, running_server, token, wait_until  # noqa: F401

AUTH = aiohttp.encode_basic_auth(API_KEY_SID, API_KEY_SECRET)

# Host candidates on 127.0.0.1 only: the tests stay on loopback.
pytestmark = pytest.mark.usefixtures("loopback_ice")


async def call(http: aiohttp.ClientSession, method: str, url: str, auth: str | None = AUTH,
               **kwargs: Any) -> tuple[int, Any]:
    headers = {"Authorization": auth} if auth is not None else {}
    async with http.request(method, url, headers=headers, **kwargs) as response:
        return response.status, await response.json()


async def test_rest_needs_the_api_key() -> None:
    async with running_server() as server, aiohttp.ClientSession() as http:
        status, body = await call(http, "GET", f"{server.http_url}/v1/Rooms", auth=None)
        assert status == 401 and body["code"] == 20003
        status, body = await call(http, "GET", f"{server.http_url}/v1/Rooms",
                                  auth=aiohttp.encode_basic_auth(API_KEY_SID, "wrong"))
        assert status == 401
        status, body = await call(http, "GET", f"{server.http_url}/health", auth=None)
        assert status == 200 and body["status"] == "ok"


async def test_create_list_fetch_complete() -> None:
    async with running_server() as server, aiohttp.ClientSession() as http:
        base = f"{server.http_url}/v1/Rooms"
        status, room = await call(http, "POST", base, data={
            "UniqueName": "standup", "Type": "group", "MaxParticipants": "7"})
        assert status == 201
        assert room["sid"].startswith("RM") and room["unique_name"] == "standup"
        assert room["type"] == "group" and room["max_participants"] == 7
        assert room["status"] == "in-progress" and room["end_time"] is None
        status, again = await call(http, "POST", base, data={"UniqueName": "standup"})
        assert status == 400 and again["code"] == 53113
        status, bad = await call(http, "POST", base, data={"Type": "mesh"})
        assert status == 400 and bad["code"] == 53108
        status, bad = await call(http, "POST", base, data={"MaxParticipants": "0"})
        assert status == 400 and bad["code"] == 53107
        status, listing = await call(http, "GET", base, params={"Status": "in-progress"})
        assert [r["unique_name"] for r in listing["rooms"]] == ["standup"]
        assert listing["meta"]["key"] == "rooms"
        status, by_name = await call(http, "GET", f"{base}/standup")
        assert by_name["sid"] == room["sid"]
        status, done = await call(http, "POST", f"{base}/{room['sid']}",
                                  data={"Status": "completed"})
        assert status == 200 and done["status"] == "completed" and done["end_time"]
        status, again = await call(http, "POST", f"{base}/{room['sid']}",
                                   data={"Status": "completed"})
        assert status == 400 and again["code"] == 53112
        status, missing = await call(http, "GET", f"{base}/RM{'f' * 32}")
        assert status == 404 and missing["code"] == 53106
        status, openapi = await call(http, "GET", f"{server.http_url}/openapi.json", auth=None)
        assert openapi["openapi"].startswith("3.") and "/v1/Rooms" in openapi["paths"]


async def test_participants_tracks_kick_and_complete_with_real_clients() -> None:
    async with running_server() as server, aiohttp.ClientSession() as http:
        alice = await rtcroom.connect(token("alice"), server=server.url, name="room")
        bob = await rtcroom.connect(token("bob"), server=server.url, name="room")
        await bob.local_participant.publish_track(rtcroom.LocalDataTrack({"name": "chat"}))
        try:
            base = f"{server.http_url}/v1/Rooms/{alice.sid}"
            status, listing = await call(http, "GET", f"{base}/Participants",
                                         params={"Status": "connected"})
            assert sorted(p["identity"] for p in listing["participants"]) == ["alice", "bob"]
            status, published = await call(
                http, "GET", f"{base}/Participants/bob/PublishedTracks")
            assert [t["name"] for t in published["published_tracks"]] == ["chat"]
            status, subscribed = await call(
                http, "GET", f"{base}/Participants/alice/SubscribedTracks")
            assert [t["name"] for t in subscribed["subscribed_tracks"]] == ["chat"]
            # kick bob: he is disconnected, alice sees him leave
            left: list[str] = []
            alice.on("participant_disconnected", lambda p: left.append(p.identity))
            ended: list[Any] = []
            bob.on("disconnected", lambda room, error: ended.append(error))
            status, kicked = await call(http, "POST", f"{base}/Participants/bob",
                                        data={"Status": "disconnected"})
            assert status == 200 and kicked["status"] == "disconnected"
            await wait_until(lambda: left == ["bob"] and ended == [None])
            # completing the room ends alice's session with 53118
            alice_end: list[Any] = []
            alice.on("disconnected", lambda room, error: alice_end.append(error))
            status, _ = await call(http, "POST", base, data={"Status": "completed"})
            assert status == 200
            await wait_until(lambda: len(alice_end) == 1)
            assert isinstance(alice_end[0], errors.RoomCompletedError)
        finally:
            await bob.disconnect()
            await alice.disconnect()


async def test_empty_room_completes_after_its_timeout() -> None:
    async with running_server(empty_room_timeout=0.3) as server, aiohttp.ClientSession() as http:
        alice = await rtcroom.connect(token("alice"), server=server.url, name="room")
        await alice.disconnect()
        base = f"{server.http_url}/v1/Rooms/{alice.sid}"
        room = await server.service.get_room(alice.sid)
        await wait_until(lambda: room.status == "completed")
        assert (await call(http, "GET", base))[1]["status"] == "completed"
