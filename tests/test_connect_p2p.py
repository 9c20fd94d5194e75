"""rtcroom.connect() against a real server: peer-to-peer rooms with real aiortc media."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from serverutil import running_server, token, wait_until

import rtcroom
from rtcroom import errors


async def count_frames(track: Any, want: int, timeout: float = 30.0) -> int:
    """Read frames from a remote media track until ``want`` arrived."""
    n = 0

    async def read() -> None:
        nonlocal n
        async for _ in track.frames():
            n += 1
            if n >= want:
                return

    await asyncio.wait_for(read(), timeout)
    return n


def subscribed_tracks(room: rtcroom.Room) -> dict[str, dict[str, Any]]:
    """identity -> {kind: RemoteTrack} of what ``room`` receives."""
    out: dict[str, dict[str, Any]] = {}
    for p in room.participants.values():
        for pub in p.tracks.values():
            if pub.track is not None:
                out.setdefault(p.identity, {})[str(pub.kind)] = pub.track
    return out


async def join(server: Any, identity: str, **options: Any) -> rtcroom.Room:
    return await rtcroom.connect(token(identity), server=server.url, name="room", **options)


async def test_two_participants_exchange_audio_video_and_data() -> None:
    async with running_server() as server:
        alice_data = rtcroom.LocalDataTrack({"name": "chat"})
        alice = await join(server, "alice", audio=True, video=True)
        await alice.local_participant.publish_track(alice_data)
        events: list[str] = []
        alice.on("participant_connected", lambda p: events.append(f"connected {p.identity}"))
        bob_data = rtcroom.LocalDataTrack()
        bob = await join(server, "bob", audio=True, video=True, tracks=None)
        await bob.local_participant.publish_track(bob_data)
        try:
            assert [p.identity for p in bob.participants.values()] == ["alice"]
            await wait_until(lambda: events == ["connected bob"])
            await wait_until(lambda: len(subscribed_tracks(bob).get("alice", {})) == 3, 30)
            await wait_until(lambda: len(subscribed_tracks(alice).get("bob", {})) == 3, 30)
            got_bob = subscribed_tracks(bob)["alice"]
            got_alice = subscribed_tracks(alice)["bob"]
            assert await count_frames(got_bob["audio"], 20) == 20
            assert await count_frames(got_bob["video"], 5) == 5
            assert await count_frames(got_alice["video"], 5) == 5
            messages: list[Any] = []
            got_alice["data"].on("message", lambda data, track: messages.append(data))
            bob_data.send("hello alice")
            bob_data.send(b"\x00\x01")
            await wait_until(lambda: len(messages) == 2)
            assert messages == ["hello alice", b"\x00\x01"]
        finally:
            await bob.disconnect()
            await alice.disconnect()


async def test_bad_token_raises_its_code() -> None:
    async with running_server() as server:
        with pytest.raises(errors.AccessTokenSignatureInvalidError):
            await rtcroom.connect(token("a", secret="x" * 40), server=server.url)
        with pytest.raises(errors.AccessTokenGrantsInvalidError):
            await rtcroom.connect(token("a", "other"), server=server.url, name="room")


async def test_unreachable_server_is_53000() -> None:
    async with running_server() as server:
        url = server.url
    with pytest.raises(errors.SignalingConnectionError) as info:
        await rtcroom.connect(token("a"), server=url)
    assert info.value.code == 53000
