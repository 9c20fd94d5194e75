"""rtcroom.connect() against a real server: peer-to-peer rooms with real aiortc media."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import rtcroom
from rtcroom import errors
from rtcroom.aiortc_ext.ice import udp_endpoints
from rtcroom.dscp import get_traffic_class
from serverutil import loopback_ice, running_server, token, wait_until  # noqa: F401

# Host candidates on 127.0.0.1 only: the tests stay on loopback.
pytestmark = pytest.mark.usefixtures("loopback_ice")


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
            reports = await bob.get_stats()
            # bob's two one-way connections: what he sends to alice, what he gets from her
            assert len(reports) == 2
            received_sids = {s.track_sid for r in reports
                             for s in r.remote_audio_track_stats + r.remote_video_track_stats}
            alice_participant = next(iter(bob.participants.values()))
            assert received_sids == {pub.track_sid for pub in alice_participant.tracks.values()
                                     if str(pub.kind) != "data"}
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


async def test_options_object_and_keywords_together_are_refused() -> None:
    with pytest.raises(TypeError, match="options= came with tracks"):
        await rtcroom.connect(token("a"), server="ws://127.0.0.1:9/signaling",
                              options=rtcroom.ConnectOptions(), tracks=[])


async def test_unreachable_server_is_53000() -> None:
    async with running_server() as server:
        url = server.url
    with pytest.raises(errors.SignalingConnectionError) as info:
        await rtcroom.connect(token("a"), server=url)
    assert info.value.code == 53000


SMALL_VIDEO = {"width": 160, "height": 120, "frame_rate": 10}


async def test_five_participants_all_receive_each_other() -> None:
    async with running_server() as server:
        names = [f"p{i}" for i in range(5)]
        rooms: list[rtcroom.Room] = []
        data_tracks = [rtcroom.LocalDataTrack() for _ in names]
        try:
            for name, data in zip(names, data_tracks):
                room = await join(server, name, audio=True, video=SMALL_VIDEO)
                await room.local_participant.publish_track(data)
                rooms.append(room)
            for room, name in zip(rooms, names):
                others = sorted(n for n in names if n != name)
                await wait_until(lambda room=room, others=others:
                                 sorted(subscribed_tracks(room)) == others
                                 and all(len(k) == 3 for k in subscribed_tracks(room).values()),
                                 60)
            # every participant hears and sees every other one, and gets its messages
            for room in rooms:
                for identity, tracks in subscribed_tracks(room).items():
                    assert await count_frames(tracks["audio"], 5) == 5, identity
                    assert await count_frames(tracks["video"], 2) == 2, identity
            received: dict[str, list[Any]] = {n: [] for n in names}
            for room, name in zip(rooms, names):
                for tracks in subscribed_tracks(room).values():
                    tracks["data"].on("message",
                                      lambda data, track, name=name: received[name].append(data))
            for data, name in zip(data_tracks, names):
                data.send(f"from {name}")
            await wait_until(lambda: all(len(v) == 4 for v in received.values()))
            for name in names:
                assert sorted(received[name]) == sorted(f"from {n}" for n in names if n != name)
        finally:
            for room in rooms:
                await room.disconnect()


async def test_join_publish_unpublish_leave_events_seen_by_all() -> None:
    async with running_server() as server:
        alice = await join(server, "alice")
        bob = await join(server, "bob")
        seen: dict[str, list[str]] = {"alice": [], "bob": []}
        for room, who in ((alice, "alice"), (bob, "bob")):
            room.on("participant_connected", lambda p, who=who: seen[who].append(
                f"joined {p.identity}"))
            room.on("participant_disconnected", lambda p, who=who: seen[who].append(
                f"left {p.identity}"))
            room.on("track_published", lambda pub, p, who=who: seen[who].append(
                f"published {pub.kind}"))
            room.on("track_subscribed", lambda t, pub, p, who=who: seen[who].append(
                f"subscribed {pub.kind}"))
            room.on("track_unpublished", lambda pub, p, who=who: seen[who].append(
                f"unpublished {pub.kind}"))
        for room in (alice, bob):
            room.on("reconnecting", lambda error: seen["alice"].append(f"reconnecting {error}"))
        carol = await join(server, "carol", audio=True)
        try:
            chat = rtcroom.LocalDataTrack({"name": "chat"})
            publication = await carol.local_participant.publish_track(chat)
            assert publication.track_sid.startswith("MT")
            expected = sorted(["joined carol", "published audio", "subscribed audio",
                               "published data", "subscribed data"])
            await wait_until(lambda: sorted(seen["alice"]) == expected
                             and sorted(seen["bob"]) == expected, 30)
            assert seen["alice"][0] == "joined carol"
            await carol.local_participant.unpublish_track(chat)
            await wait_until(lambda: seen["alice"][-1] == "unpublished data"
                             and seen["bob"][-1] == "unpublished data")
        finally:
            await carol.disconnect()
        await wait_until(lambda: seen["alice"][-1] == "left carol"
                         and seen["bob"][-1] == "left carol")
        assert [p.identity for p in alice.participants.values()] == ["bob"]
        # carol's connections closing with her is a leave, not a media failure
        assert not any(e.startswith("reconnecting") for e in seen["alice"] + seen["bob"])
        await bob.disconnect()
        await alice.disconnect()


async def test_disabling_a_track_reaches_the_other_side() -> None:
    async with running_server() as server:
        alice = await join(server, "alice", audio=True)
        bob = await join(server, "bob")
        try:
            await wait_until(lambda: "alice" in subscribed_tracks(bob), 30)
            publication = next(iter(next(iter(bob.participants.values())).tracks.values()))
            changes: list[str] = []
            publication.on("track_disabled", lambda: changes.append("disabled"))
            publication.on("track_enabled", lambda: changes.append("enabled"))
            next(iter(alice.local_participant.audio_tracks.values())).track.disable()
            await wait_until(lambda: changes == ["disabled"])
            assert publication.is_track_enabled is False
            next(iter(alice.local_participant.audio_tracks.values())).track.enable()
            await wait_until(lambda: changes == ["disabled", "enabled"])
        finally:
            await bob.disconnect()
            await alice.disconnect()


async def test_duplicate_identity_disconnects_the_first_room_with_53205() -> None:
    async with running_server() as server:
        first = await join(server, "alice")
        ended: list[Any] = []
        first.on("disconnected", lambda room, error: ended.append(error))
        second = await join(server, "alice")
        try:
            await wait_until(lambda: len(ended) == 1)
            assert isinstance(ended[0], errors.ParticipantDuplicateIdentityError)
            assert first.state == rtcroom.RoomState.DISCONNECTED
            assert second.state == rtcroom.RoomState.CONNECTED
        finally:
            await second.disconnect()


async def test_full_room_refuses_with_53105() -> None:
    async with running_server(max_participants=1) as server:
        alice = await join(server, "alice")
        try:
            with pytest.raises(errors.RoomMaxParticipantsExceededError):
                await join(server, "bob")
        finally:
            await alice.disconnect()


async def test_group_room_signaling_and_lifecycle() -> None:
    # Group rooms' media (through the SFU) is tested in test_group_room.py.
    async with running_server(room_type="group") as server:
        alice = await join(server, "alice")
        bob = await join(server, "bob")
        published: list[str] = []
        alice.on("track_published", lambda pub, p: published.append(f"{p.identity} {pub.kind}"))
        try:
            await bob.local_participant.publish_track(rtcroom.LocalDataTrack())
            await wait_until(lambda: published == ["bob data"])
            room = await server.service.get_room(alice.sid)
            assert room.type == "group" and room.links == {}
        finally:
            await bob.disconnect()
        await wait_until(lambda: alice.participants == {})
        await alice.disconnect()


async def test_enable_dscp_marks_the_media_sockets() -> None:
    async with running_server() as server:
        alice = await join(server, "alice", audio=True, enable_dscp=True)
        bob = await join(server, "bob", audio=True)
        try:
            await wait_until(lambda: "alice" in subscribed_tracks(bob)
                             and "bob" in subscribed_tracks(alice), 30)

            def classes(room: rtcroom.Room) -> set[int]:
                pcs = room._signaling.pcs.connections()  # type: ignore[union-attr]
                return {get_traffic_class(e.socket) for _, pc in pcs for e in udp_endpoints(pc)}

            assert classes(alice) and 0 not in classes(alice)
            assert classes(bob) == {0}
        finally:
            await bob.disconnect()
            await alice.disconnect()


async def test_automatic_subscription_off_receives_nothing() -> None:
    async with running_server() as server:
        alice = await join(server, "alice", audio=True)
        lurker = await join(server, "lurker", automatic_subscription=False)
        bob = await join(server, "bob")
        try:
            # bob gets alice's audio; the lurker sees the publication but is not subscribed
            await wait_until(lambda: "alice" in subscribed_tracks(bob), 30)
            [alice_seen] = [p for p in lurker.participants.values() if p.identity == "alice"]
            assert [str(pub.kind) for pub in alice_seen.tracks.values()] == ["audio"]
            assert subscribed_tracks(lurker) == {}
            room = await server.service.get_room(alice.sid)
            lurker_sid = lurker.local_participant.sid
            assert not any(lk.subscriber == lurker_sid for lk in room.links.values())
            assert [t.name for t in room.subscriptions(room.participants[lurker_sid])] == []
        finally:
            for room_ in (bob, lurker, alice):
                await room_.disconnect()


async def test_connect_needs_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RTCROOM_SERVER", raising=False)
    with pytest.raises(errors.SignalingConnectionError, match="RTCROOM_SERVER"):
        await rtcroom.connect(token("a"))
    with pytest.raises(errors.SignalingConnectionError, match="cannot open"):
        await rtcroom.connect(token("a"), server="not a url")


async def test_server_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_server() as server:
        monkeypatch.setenv("RTCROOM_SERVER", server.url)
        room = await rtcroom.connect(token("alice"), name="room")
        assert room.local_participant.identity == "alice"
        await room.disconnect()
