"""Each server limit, crossed by a real client: the documented error or close code, and the
other participants unaffected."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct

import pytest
from rtcroom.server.config import load_config
from rtcroom.server.limits import CONNECTIONS, RateLimiter
from serverutil import connect_body, joined, raw_client, running_server, token

AUDIO = [{"id": f"a{i}", "kind": "audio", "name": f"mic{i}"} for i in range(4)]


async def error_code(server: object, identity: str, room: str = "room",
                     tracks: list | None = None) -> int:
    async with raw_client(server) as c:  # type: ignore[arg-type]
        await c.hello(connect_body(token(identity, room), room, tracks))
        return int((await c.body("error"))["code"])


async def test_message_over_the_size_limit_closes_with_1009() -> None:
    async with running_server(max_message_bytes=4096) as server:
        alice, _, a_cm = await joined(server, "alice")
        try:
            async with raw_client(server) as c:
                await c.hello()
                await c.send({"type": "msg", "body": {"type": "update", "x": "y" * 5000}})
                assert await c.closed() == 1009
            # the big message cost nobody else anything
            await alice.msg({"type": "update", "participant": {"revision": 2, "tracks": []}})
            assert not alice.ws.closed
        finally:
            await a_cm.__aexit__(None, None, None)


async def test_flood_gets_53006_and_close_1008_and_the_room_goes_on() -> None:
    async with running_server(max_messages_per_second=20) as server:
        alice, _, a_cm = await joined(server, "alice")
        mallory, _, m_cm = await joined(server, "mallory")
        try:
            await alice.body("update")  # mallory joined
            for _ in range(200):
                if mallory.ws.closed:
                    break
                await mallory.send({"type": "heartbeat"})
            error = await mallory.body("error")
            assert error["code"] == 53006 and "20 per second" in error["message"]
            assert await mallory.closed() == 1008
            # alice is told mallory left, and stays connected
            update = await alice.body("update")
            assert [p["state"] for p in update["participants"]] == ["disconnected"]
            room = await server.service.store.find_in_progress("room")
            assert [p.identity for p in room.active_participants()] == ["alice"]
        finally:
            await m_cm.__aexit__(None, None, None)
            await a_cm.__aexit__(None, None, None)


async def test_steady_traffic_under_the_rate_is_not_refused() -> None:
    """The limit is on bursts over the average, not on a client that talks a lot in time."""
    clock = [0.0]
    limiter = RateLimiter(10, 20, clock=lambda: clock[0])
    assert all(limiter.allow() for _ in range(20))  # a burst of 2 x rate
    assert not limiter.allow()
    for _ in range(100):  # then just under the rate, for 10 s
        clock[0] += 0.101
        assert limiter.allow()


async def test_connections_per_address_refused_with_3006_then_freed() -> None:
    async with running_server(max_connections_per_ip=2) as server:
        async with raw_client(server) as a, raw_client(server) as b:
            await a.hello()
            await b.hello()
            async with raw_client(server) as c:
                assert await c.closed() == 3006
                assert c.ws.close_code == 3006
        # both closed: the address may connect again
        async with raw_client(server) as d:
            assert (await d.hello())["type"] == "welcome"
        await asyncio.sleep(0.1)  # the handler's finally runs after the close reply
        assert len(server.runner.app[CONNECTIONS]) == 0


async def test_participants_per_room() -> None:
    async with running_server(max_participants=2) as server:
        _a, _, a_cm = await joined(server, "a")
        _b, _, b_cm = await joined(server, "b")
        try:
            assert await error_code(server, "c") == 53105
        finally:
            await b_cm.__aexit__(None, None, None)
            await a_cm.__aexit__(None, None, None)


async def test_tracks_per_participant_on_connect_and_on_update() -> None:
    async with running_server(max_tracks_per_participant=3) as server:
        assert await error_code(server, "greedy", tracks=AUDIO) == 53203
        alice, _, a_cm = await joined(server, "alice", tracks=AUDIO[:3])
        try:
            await alice.msg({"type": "update", "participant": {"revision": 2, "tracks": AUDIO}})
            error = await alice.body("error")
            assert error["code"] == 53203 and "at most 3 tracks" in error["message"]
        finally:
            await a_cm.__aexit__(None, None, None)


async def test_rooms_per_server() -> None:
    async with running_server(max_rooms=1) as server:
        _a, _, a_cm = await joined(server, "a", room="one")
        try:
            assert await error_code(server, "b", room="two") == 53103
            # the existing room still takes participants
            _b, _, b_cm = await joined(server, "b", room="one")
            await b_cm.__aexit__(None, None, None)
        finally:
            await a_cm.__aexit__(None, None, None)


def test_limits_are_configurable_from_the_environment() -> None:
    config = load_config(env={"RTCROOM_MAX_MESSAGE_BYTES": "2048",
                              "RTCROOM_MAX_MESSAGES_PER_SECOND": "7",
                              "RTCROOM_MAX_CONNECTIONS_PER_IP": "3",
                              "RTCROOM_MAX_TRACKS_PER_PARTICIPANT": "4",
                              "RTCROOM_MAX_OUTBOX_BYTES": "65536"})
    assert (config.max_message_bytes, config.max_messages_per_second,
            config.max_connections_per_ip, config.max_tracks_per_participant,
            config.max_outbox_bytes) == (2048, 7, 3, 4, 65536)
    with pytest.raises(ValueError, match="max_messages_per_second"):
        load_config(env={"RTCROOM_MAX_MESSAGES_PER_SECOND": "0"})


# --- memory per connection -------------------------------------------------------------------

def _masked_text_frame(text: str) -> bytes:
    """One client-to-server WebSocket text frame (RFC 6455 5.2: clients mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_a_client_that_never_reads_is_cut_off_not_buffered() -> None:
    """alice joins from a socket she never reads; bob relays SDP to her until the server's
    outbox bound for her connection is crossed: her connection is aborted (her session kept
    for the grace period, as for any lost connection) and bob's session goes on."""
    async with running_server(max_outbox_bytes=256 << 10, max_messages_per_second=1000) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", server.port))
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(sock, (
            f"GET /signaling HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        hello = {"type": "hello", "id": "x", "timeout": 5000, "version": 2,
                 "body": connect_body(token("alice"))}
        await loop.sock_sendall(sock, _masked_text_frame(json.dumps(hello)))
        try:
            await asyncio.sleep(0.2)
            bob, connected, b_cm = await joined(server, "bob")
            try:
                [pc] = connected["peer_connections"]
                sdp = "v=0\r\n" + "a=x-padding:" + "p" * 60_000 + "\r\n"

                async def alice_state() -> str:
                    room = await server.service.store.find_in_progress("room")
                    return room.by_identity("alice").state

                for revision in range(1, 400):
                    if await alice_state() == "reconnecting":
                        break
                    await bob.msg({"type": "update", "peer_connections": [
                        {"id": pc["id"], "description": {"type": "offer", "sdp": sdp,
                                                         "revision": revision}}]})
                    await asyncio.sleep(0.01)
                    # alice's heartbeats go on, so that only the outbox bound can cut her
                    try:
                        await loop.sock_sendall(sock, _masked_text_frame('{"type":"heartbeat"}'))
                    except OSError:
                        pass  # cut off already
                assert await alice_state() == "reconnecting"
                update = await bob.body("update")
                while not update.get("participants"):
                    update = await bob.body("update")
                assert update["participants"][0]["state"] == "reconnecting"
                assert not bob.ws.closed
            finally:
                await b_cm.__aexit__(None, None, None)
        finally:
            sock.close()
