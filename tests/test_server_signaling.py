"""The signaling endpoint against a raw WebSocket client: handshake, room protocol, errors."""

from __future__ import annotations

import json
import random

import pytest
from serverutil import connect_body, joined, raw_client, running_server, token

DATA = {"id": "d1", "kind": "data", "name": "chat"}


async def test_hello_gets_welcome_with_negotiated_timeout() -> None:
    async with running_server(max_heartbeat_timeout_ms=3000) as server:
        async with raw_client(server) as c:
            welcome = await c.hello(timeout=5000)
            assert welcome == {"type": "welcome", "negotiatedTimeout": 3000}
        async with raw_client(server) as c:
            assert (await c.hello(timeout=1200))["negotiatedTimeout"] == 1200


async def test_server_sends_heartbeats_and_closes_a_silent_client() -> None:
    async with running_server() as server, raw_client(server) as c:
        c.heartbeats = False
        await c.hello(timeout=300)
        assert (await c.frame("heartbeat"))["type"] == "heartbeat"
        # 3 x 300 ms of silence from us: the server gives up with 3001.
        assert await c.closed() == 3001


async def test_connect_returns_connected_with_identity_and_session() -> None:
    async with running_server() as server:
        tracks = [{"id": "a1", "kind": "audio", "name": "mic", "enabled": True,
                   "priority": "standard"}]
        _, connected, cm = await joined(server, "alice", tracks=tracks)
        try:
            assert connected["participant"]["identity"] == "alice"
            assert connected["participant"]["sid"].startswith("PA")
            assert connected["sid"].startswith("RM") and connected["name"] == "room"
            assert connected["options"]["session_timeout"] == server.service.config.session_timeout
            assert connected["participants"] == []
            [published] = connected["published"]["tracks"]
            assert published["id"] == "a1" and published["sid"].startswith("MT")
        finally:
            await cm.__aexit__(None, None, None)


async def test_second_participant_sees_first_and_first_gets_update() -> None:
    async with running_server() as server:
        tracks = [{"id": "v1", "kind": "video", "name": "cam"}]
        alice, _, a_cm = await joined(server, "alice", tracks=tracks)
        bob, b_connected, b_cm = await joined(server, "bob")
        try:
            [remote] = b_connected["participants"]
            assert remote["identity"] == "alice" and remote["state"] == "connected"
            assert [t["name"] for t in remote["tracks"]] == ["cam"]
            assert [t["id"] for t in b_connected["subscribed"]["tracks"]] == ["v1"]
            # peer-to-peer: bob is asked to offer to alice, alice to bob.
            [pc] = b_connected["peer_connections"]
            assert pc["description"]["type"] == "create-offer"
            update = await alice.body("update")
            assert [p["identity"] for p in update["participants"]] == ["bob"]
            assert update["peer_connections"][0]["description"]["type"] == "create-offer"
            # bob's offer on his connection reaches alice unchanged
            offer = {"id": pc["id"], "description": {"type": "offer", "sdp": "v=0\r\n",
                                                       "revision": 1}}
            await bob.msg({"type": "update", "peer_connections": [offer]})
            relayed = await alice.body("update")
            assert relayed["peer_connections"] == [offer]
        finally:
            await b_cm.__aexit__(None, None, None)
            await a_cm.__aexit__(None, None, None)


async def test_publish_update_reaches_others_with_new_revision() -> None:
    async with running_server() as server:
        alice, _, a_cm = await joined(server, "alice")
        bob, _, b_cm = await joined(server, "bob")
        try:
            await alice.body("update")  # bob joined
            await bob.msg({"type": "update", "participant": {"revision": 2, "tracks": [
                {"id": "d1", "kind": "data", "name": "chat"}]}})
            mine = await bob.body("update")
            assert [t["id"] for t in mine["published"]["tracks"]] == ["d1"]
            theirs = await alice.body("update")
            [bob_state] = theirs["participants"]
            assert [t["kind"] for t in bob_state["tracks"]] == ["data"]
            assert theirs["subscribed"]["tracks"][0]["id"] == "d1"
            # a stale revision changes nothing
            await bob.msg({"type": "update", "participant": {"revision": 1, "tracks": []}})
            await bob.msg({"type": "update", "participant": {"revision": 3, "tracks": []}})
            theirs2 = await alice.body("update")
            assert theirs2["participants"][0]["tracks"] == []
            assert theirs2["participants"][0]["revision"] > bob_state["revision"]
        finally:
            await b_cm.__aexit__(None, None, None)
            await a_cm.__aexit__(None, None, None)


async def test_disconnect_tells_the_others() -> None:
    async with running_server() as server:
        alice, _, a_cm = await joined(server, "alice")
        bob, _, b_cm = await joined(server, "bob")
        try:
            await alice.body("update")
            await bob.msg({"type": "disconnect", "version": 2})
            await bob.send({"type": "bye"})
            update = await alice.body("update")
            bob_state = [p for p in update["participants"] if p["identity"] == "bob"]
            assert bob_state[0]["state"] == "disconnected"
            assert update["peer_connections"][0]["description"]["type"] == "close"
        finally:
            await b_cm.__aexit__(None, None, None)
            await a_cm.__aexit__(None, None, None)


@pytest.mark.parametrize("make_token, code", [
    (lambda: "not-a-jwt", 20101),
    (lambda: token("alice", "room", secret="wrong-secret-of-the-right-length-0123456"), 20107),
    (lambda: token("alice", "another-room"), 20106),
])
async def test_bad_tokens_get_their_codes_and_leave_others_alone(make_token, code) -> None:
    async with running_server() as server:
        bob, _, b_cm = await joined(server, "bob")
        try:
            async with raw_client(server) as c:
                await c.hello(connect_body(make_token(), "room"))
                error = await c.body("error")
                assert error["code"] == code
                assert await c.closed() == 1000
            # bob's session is untouched: an update still round-trips.
            await bob.msg({"type": "update", "participant": {"revision": 2, "tracks": [DATA]}})
            assert (await bob.body("update"))["published"]["tracks"][0]["id"] == "d1"
            assert len(server.service.store._rooms) == 1
        finally:
            await b_cm.__aexit__(None, None, None)


async def test_malformed_frames_get_bad_and_invalid_messages_get_53004() -> None:
    async with running_server() as server:
        bob, _, b_cm = await joined(server, "bob")
        alice, _, a_cm = await joined(server, "alice")
        try:
            await bob.body("update")
            await alice.send("{not json")
            assert "JSON" in (await alice.frame("bad"))["reason"]
            await alice.send(json.dumps({"type": "teleport"}))
            assert "teleport" in (await alice.frame("bad"))["reason"]
            # a room message with a wrongly typed field ends only alice's session
            await alice.msg({"type": "update", "participant": {"revision": "two",
                                                                "tracks": []}})
            error = await alice.body("error")
            assert error["code"] == 53004 and "participant.revision" in error["message"]
            left = await bob.body("update")
            assert [p["state"] for p in left["participants"]] == ["disconnected"]
            await bob.msg({"type": "update", "participant": {"revision": 2, "tracks": [DATA]}})
            assert (await bob.body("update"))["published"]["tracks"][0]["id"] == "d1"
        finally:
            await a_cm.__aexit__(None, None, None)
            await b_cm.__aexit__(None, None, None)


async def test_hello_with_wrong_version_is_refused() -> None:
    async with running_server() as server, raw_client(server) as c:
        await c.send({"type": "hello", "id": "x", "timeout": 5000, "version": 1})
        assert "version" in (await c.frame("bad"))["reason"]
        assert await c.closed() == 3002


async def test_duplicate_identity_disconnects_the_first_with_53205() -> None:
    async with running_server() as server:
        first, _, f_cm = await joined(server, "alice")
        _, connected, s_cm = await joined(server, "alice")
        try:
            error = await first.body("error")
            assert error["code"] == 53205
            assert connected["participants"] == []
        finally:
            await s_cm.__aexit__(None, None, None)
            await f_cm.__aexit__(None, None, None)


async def test_max_participants_gives_53105() -> None:
    async with running_server(max_participants=2) as server:
        _, _, a_cm = await joined(server, "a")
        _, _, b_cm = await joined(server, "b")
        try:
            async with raw_client(server) as c:
                await c.hello(connect_body(token("c"), "room"))
                assert (await c.body("error"))["code"] == 53105
        finally:
            await b_cm.__aexit__(None, None, None)
            await a_cm.__aexit__(None, None, None)


async def test_ice_message_gets_configured_ice_servers() -> None:
    from rtcroom.signaling.messages import IceServer

    turn = IceServer(urls=["turn:127.0.0.1:3478"], username="u", credential="p")
    async with running_server(ice_servers=(turn,)) as server, raw_client(server) as c:
        await c.hello({"type": "ice", "edge": "roaming", "token": token("a"), "version": 1})
        iced = await c.body("iced")
        assert iced["ice_servers"] == [{"urls": ["turn:127.0.0.1:3478"], "username": "u",
                                        "credential": "p"}]
        await c.msg(connect_body(token("a"), "room"))
        connected = await c.body("connected")
        assert connected["ice_servers"] == iced["ice_servers"]


def _junk(rng: random.Random) -> str:
    """A malformed frame or room message of some kind."""
    choices = [
        lambda: "".join(rng.choice('{}[]":,ab1 ') for _ in range(rng.randint(0, 40))),
        lambda: json.dumps(rng.choice([None, 1, "x", [], {"type": None}, {"type": 7}])),
        lambda: json.dumps({"type": "msg", "body": rng.choice([None, 3, "x", [], {}])}),
        lambda: json.dumps({"type": "msg", "body": {"type": rng.choice(
            ["connect", "sync", "update", "ice", "bogus"]), "version": rng.choice([2, "2", None]),
            "participant": rng.choice([{}, {"revision": -1, "tracks": [{}]}, None]),
            "session": rng.choice([None, "SS0", 5]), "token": rng.choice([None, "x", 1])}}),
        lambda: json.dumps({"type": rng.choice(["welcome", "bad", "busy", "heartbeat", "bye"])}),
    ]
    return rng.choice(choices)()


async def test_garbage_from_many_clients_leaves_a_joined_pair_working() -> None:
    rng = random.Random(7)
    async with running_server() as server:
        alice, _, a_cm = await joined(server, "alice")
        bob, _, b_cm = await joined(server, "bob")
        try:
            await alice.body("update")
            for _ in range(30):
                async with raw_client(server) as c:
                    if rng.random() < 0.5:
                        await c.hello()
                    for _ in range(rng.randint(1, 5)):
                        await c.send(_junk(rng))
            # alice and bob still talk through the server
            await bob.msg({"type": "update", "participant": {"revision": 2, "tracks": [DATA]}})
            update = await alice.body("update")
            assert [t["kind"] for t in update["participants"][0]["tracks"]] == ["data"]
            room = next(iter(server.service.store._rooms.values()))
            assert sorted(p.identity for p in room.active_participants()) == ["alice", "bob"]
        finally:
            await b_cm.__aexit__(None, None, None)
            await a_cm.__aexit__(None, None, None)


async def test_sync_resumes_only_with_the_same_identity() -> None:
    async with running_server() as server:
        alice, connected, a_cm = await joined(server, "alice")
        session = connected["session"]
        await alice.ws.close()  # dropped without disconnect: the session is kept
        try:
            sync = {"type": "sync", "version": 2, "session": session, "name": "room",
                    "participant": {"revision": 2, "tracks": []}}
            async with raw_client(server) as thief:
                await thief.hello({**sync, "token": token("mallory")})
                assert (await thief.body("error"))["code"] == 20106
            async with raw_client(server) as back:
                await back.hello({**sync, "token": token("alice")})
                synced = await back.body("synced")
                assert synced["session"] == session
                assert synced["participant"]["identity"] == "alice"
            async with raw_client(server) as late:
                await late.hello({**sync, "session": "SS" + "0" * 32, "token": token("alice")})
                assert (await late.body("error"))["code"] == 53002
        finally:
            await a_cm.__aexit__(None, None, None)
