"""Data tracks relayed per leg (issue 8): in a group room the server gives each subscriber its own
channel of a publisher's data track, with the publisher's ordered / max_retransmits /
max_packet_life_time, and every subscriber's RemoteDataTrack reports them."""

from __future__ import annotations

import pytest
import rtcroom
from serverutil import loopback_ice, running_server, token, wait_until  # noqa: F401

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(180)]

SETTINGS = {"reliable": {},
            "unordered-no-retransmits": {"ordered": False, "max_retransmits": 0},
            "lifetime": {"ordered": False, "max_packet_life_time": 500},
            "ordered-retransmits": {"max_retransmits": 3}}


def received_data(room: rtcroom.Room) -> dict[str, rtcroom.RemoteDataTrack]:
    """Track name -> the data track ``room`` receives under it."""
    return {pub.track_name: pub.track for p in room.participants.values()
            for pub in p.data_tracks.values() if pub.track is not None}


@pytest.mark.parametrize("room_type", ["group", "peer-to-peer"])
async def test_each_subscriber_gets_the_publishers_reliability_settings(room_type: str) -> None:
    tracks = {name: rtcroom.LocalDataTrack({"name": name, **options})
              for name, options in SETTINGS.items()}
    async with running_server(room_type=room_type) as server:
        publisher = await rtcroom.connect(token("publisher"), server=server.url, name="room",
                                          tracks=list(tracks.values()))
        subscribers = [await rtcroom.connect(token(f"s{i}"), server=server.url, name="room",
                                             tracks=[]) for i in range(2)]
        rooms = [publisher, *subscribers]
        try:
            messages: dict[tuple[int, str], list[str | bytes]] = {}
            for i, room in enumerate(subscribers):
                await wait_until(lambda room=room: len(received_data(room)) == len(SETTINGS),
                                 60)
                for name, remote in received_data(room).items():
                    local = tracks[name]
                    assert (remote.ordered, remote.max_retransmits, remote.max_packet_life_time,
                            remote.reliable) == (local.ordered, local.max_retransmits,
                                                 local.max_packet_life_time, local.reliable), name
                    got = messages[(i, name)] = []
                    remote.on("message", lambda m, t, got=got: got.append(m))
            assert tracks["reliable"].reliable and not tracks["lifetime"].reliable
            if room_type == "group":
                # The server's channel to each subscriber, one per leg, has the same settings.
                group = server.service.media.rooms[publisher.sid]
                sids = {pub.track_name: pub.track_sid
                        for pub in publisher.local_participant.data_tracks.values()}
                for room in subscribers:
                    legs = group.peers[room.local_participant.sid].legs
                    channels = [legs[sids[name]].channel for name in SETTINGS]
                    assert len({id(c) for c in channels}) == len(SETTINGS)
                    for name, channel in zip(SETTINGS, channels):
                        local = tracks[name]
                        assert (channel.ordered, channel.maxRetransmits,
                                channel.maxPacketLifeTime) == (
                            local.ordered, local.max_retransmits, local.max_packet_life_time)
            for name, track in tracks.items():
                track.send(f"{name} 1")
                track.send(f"{name} 2".encode())
            # Loopback loses nothing: every message arrives, on every leg.
            await wait_until(lambda: all(len(m) == 2 for m in messages.values()), 20)
            for (_, name), got in messages.items():
                assert sorted(map(repr, got)) == sorted([repr(f"{name} 1"),
                                                         repr(f"{name} 2".encode())])
        finally:
            for room in rooms:
                await room.disconnect()
