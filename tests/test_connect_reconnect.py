"""Reconnection: a dropped signaling connection is resumed within the session timeout, and
the room ends with 53002 when it cannot be."""

from __future__ import annotations

from typing import Any

import pytest
import rtcroom
from rtcroom import errors
from serverutil import TcpProxy, loopback_ice, running_server, token, wait_until  # noqa: F401

# Host candidates on 127.0.0.1 only: the tests stay on loopback.
pytestmark = pytest.mark.usefixtures("loopback_ice")


async def test_dropped_websocket_reconnects_and_media_keeps_flowing() -> None:
    async with running_server() as server:
        proxy = TcpProxy(server.port)
        await proxy.start()
        states: list[str] = []
        listener_events: list[str] = []
        alice = await rtcroom.connect(token("alice"), server=server.url, name="room")
        bob = await rtcroom.connect(token("bob"), server=proxy.url, name="room",
                                    event_listener=lambda e: listener_events.append(e.name))
        chat = rtcroom.LocalDataTrack()
        await bob.local_participant.publish_track(chat)
        try:
            bob.on("reconnecting", lambda error: states.append(f"reconnecting {error.code}"))
            bob.on("reconnected", lambda: states.append("reconnected"))
            seen: list[str] = []
            alice.on("participant_reconnecting", lambda p: seen.append("reconnecting"))
            alice.on("participant_reconnected", lambda p: seen.append("reconnected"))
            received: list[Any] = []
            alice.on("track_message", lambda data, track, p: received.append(data))
            await wait_until(lambda: any(pub.track is not None for p in alice.participants.values()
                                         for pub in p.tracks.values()), 30)
            assert listener_events == ["early", "connecting", "open"]

            proxy.cut()
            await wait_until(lambda: states == ["reconnecting 53001", "reconnected"], 20)
            await wait_until(lambda: seen == ["reconnecting", "reconnected"], 20)
            assert bob.state == rtcroom.RoomState.CONNECTED
            assert [p.identity for p in alice.participants.values()] == ["bob"]
            assert listener_events[3] == "closed"
            assert listener_events[-1] == "open"
            # the session is the same one: a publish after the resume reaches alice
            chat.send("still here")
            await wait_until(lambda: received == ["still here"])
            second = rtcroom.LocalDataTrack({"name": "after"})
            await bob.local_participant.publish_track(second)
            await wait_until(lambda: sorted(pub.track_name for p in alice.participants.values()
                                            for pub in p.tracks.values())
                             == sorted([chat.name, "after"]))
        finally:
            await bob.disconnect()
            await alice.disconnect()
            await proxy.stop()


async def test_session_timeout_ends_the_room_with_53002() -> None:
    async with running_server(session_timeout=1.0) as server:
        proxy = TcpProxy(server.port)
        await proxy.start()
        alice = await rtcroom.connect(token("alice"), server=server.url, name="room")
        bob = await rtcroom.connect(token("bob"), server=proxy.url, name="room")
        try:
            ended: list[Any] = []
            bob.on("disconnected", lambda room, error: ended.append(error))
            left: list[str] = []
            alice.on("participant_disconnected", lambda p: left.append(p.identity))
            proxy.refusing = True
            proxy.cut()
            await wait_until(lambda: len(ended) == 1, 20)
            assert isinstance(ended[0], errors.SignalingConnectionTimeoutError)
            assert ended[0].code == 53002
            await wait_until(lambda: left == ["bob"], 20)
        finally:
            await bob.disconnect()
            await alice.disconnect()
            await proxy.stop()


async def test_ice_failure_replaces_the_connection(monkeypatch: Any) -> None:
    # Consent freshness (RFC 7675) declares a path dead after 6 x 5 s; shrink that so the test
    # sees a failure in about a second instead of half a minute.
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 3)
    async with running_server() as server:
        alice = await rtcroom.connect(token("alice"), server=server.url, name="room",
                                      audio=True)
        bob = await rtcroom.connect(token("bob"), server=server.url, name="room")
        try:
            await wait_until(lambda: any(pub.track is not None for p in bob.participants.values()
                                         for pub in p.tracks.values()), 30)
            states: list[str] = []
            alice.on("reconnecting", lambda error: states.append(f"reconnecting {error.code}"))
            alice.on("reconnected", lambda: states.append("reconnected"))
            # Kill bob's end of the path without a goodbye: his ICE transport stops answering.
            incoming = next(pc for _, pc in bob._signaling.pcs.connections()  # type: ignore
                            if pc.getReceivers())
            [publication] = next(iter(bob.participants.values())).tracks.values()
            dead = publication.track.media_stream_track
            await incoming.getReceivers()[0].transport.transport.stop()
            await wait_until(lambda: states == ["reconnecting 53405", "reconnected"], 30)
            # bob hears alice again, on a new connection under the same id
            await wait_until(lambda: publication.track is not None
                             and publication.track.media_stream_track is not dead, 30)
            frames = 0
            async for _ in publication.track.frames():
                frames += 1
                if frames == 10:
                    break
            assert frames == 10
        finally:
            await bob.disconnect()
            await alice.disconnect()
