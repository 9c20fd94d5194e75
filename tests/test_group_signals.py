"""Issue 9's live signals in group rooms, end to end (a real rtcroom server on 127.0.0.1 and
real aiortc clients): network quality levels from what the SFU measures and the clients report,
subscriber and publisher priorities and bandwidth profiles changing the allocation while
connected, and audio levels in ``room.get_stats()``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import rtcroom
from loopback_peers import NoiseTrack, ToneTrack
from rtcroom.constants import NetworkQualityVerbosity as Verbosity
from rtcroom.signaling.networkquality import NetworkQualityStats
from serverutil import (  # noqa: F401
    loopback_ice,
    running_server,
    settled_video_rates,
    token,
    wait_until,
)

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]


async def join(server: Any, identity: str, **options: Any) -> rtcroom.Room:
    return await rtcroom.connect(token(identity), server=server.url, name="room", **options)


def media(frequency: float) -> list[Any]:
    return [rtcroom.LocalAudioTrack(ToneTrack(frequency)),
            rtcroom.LocalVideoTrack.test_pattern(160, 120, frame_rate=10)]


def by_identity(room: rtcroom.Room) -> dict[str, Any]:
    return {p.identity: p for p in room.participants.values()}


def all_subscribed(room: rtcroom.Room, count: int) -> bool:
    return sum(pub.track is not None for p in room.participants.values()
               for pub in p.tracks.values()) == count


async def test_network_quality_on_a_clean_link_is_5_at_each_verbosity() -> None:
    """Three participants on loopback: every level is 5, and what each client learns about
    itself and the others is what its verbosities ask for; changing them while connected
    changes what arrives."""
    async with running_server(room_type="group") as server:
        detailed = await join(server, "detailed", tracks=media(400),
                              network_quality={"local": Verbosity.DETAILED,
                                               "remote": Verbosity.NONE})
        moderate = await join(server, "moderate", tracks=media(600),
                              network_quality={"local": Verbosity.MINIMAL,
                                               "remote": Verbosity.MODERATE})
        silent = await join(server, "silent", tracks=media(800))
        rooms = [detailed, moderate, silent]
        changes: list[tuple[int, Any]] = []
        detailed.local_participant.on("network_quality_level_changed",
                                      lambda level, stats: changes.append((level, stats)))
        try:
            for room in rooms:
                await wait_until(lambda room=room: all_subscribed(room, 4), 60)
            group = server.service.media.rooms[detailed.sid]
            # Once media flows both ways on every connection, the server's levels are all 5.
            await wait_until(lambda: len(group.peers) == 3 and all(
                peer.scorer.level == 5 and peer.scorer.stats is not None
                and peer.scorer.stats.video is not None
                and peer.scorer.stats.video.recv_stats is not None
                and peer.scorer.stats.video.send_stats is not None
                for peer in group.peers.values()), 30)

            local = detailed.local_participant
            # The first update has no bitrates yet (they are measured between two updates).
            await wait_until(lambda: local.network_quality_level == 5
                             and local.network_quality_stats is not None
                             and local.network_quality_stats.video is not None
                             and local.network_quality_stats.video.send_stats is not None
                             and local.network_quality_stats.video.send_stats.bandwidth
                             is not None, 30)
            assert changes and changes[0][0] == 5
            stats = local.network_quality_stats
            assert isinstance(stats, NetworkQualityStats)
            assert stats.audio is not None and stats.video is not None
            assert (stats.audio.send, stats.audio.recv, stats.video.send, stats.video.recv) == (
                5, 5, 5, 5)
            # Detailed: the measurements behind the levels, as the SFU saw them on loopback.
            send = stats.video.send_stats
            recv = stats.audio.recv_stats
            assert send is not None and recv is not None
            assert send.fraction_lost is not None and send.fraction_lost.fraction_lost < 0.02
            assert send.bandwidth is not None and send.bandwidth.actual > 0
            assert recv.latency is not None and recv.latency.rtt is not None
            assert recv.latency.rtt < 0.5
            # remote "none": nothing about the others.
            assert all(p.network_quality_level is None for p in detailed.participants.values())

            # Minimal local: the level alone; moderate remote: levels per kind and direction.
            mine = moderate.local_participant
            await wait_until(lambda: mine.network_quality_level == 5, 30)
            assert mine.network_quality_stats is None
            others = by_identity(moderate)
            await wait_until(lambda: all(p.network_quality_level == 5 for p in others.values()),
                             30)
            for p in others.values():
                assert p.network_quality_stats is not None
                assert p.network_quality_stats.video is not None
                assert p.network_quality_stats.video.send == 5
                assert p.network_quality_stats.video.send_stats is None  # not detailed

            # Asked nothing: told nothing.
            assert silent.local_participant.network_quality_level is None
            assert all(p.network_quality_level is None for p in silent.participants.values())

            # Verbosity changed while connected: the next reports follow it.
            local.set_network_quality_configuration({"local": Verbosity.MINIMAL,
                                                     "remote": Verbosity.DETAILED})
            theirs = by_identity(detailed)
            await wait_until(lambda: all(
                p.network_quality_level == 5 and p.network_quality_stats is not None
                and p.network_quality_stats.audio is not None
                and p.network_quality_stats.audio.send_stats is not None
                for p in theirs.values()), 30)
        finally:
            for room in rooms:
                await room.disconnect()


async def test_priorities_and_bandwidth_profile_switch_tracks_while_connected() -> None:
    """A subscriber whose max_subscription_bitrate fits one of two videos: the one it receives
    follows its own priorities (track_priority), then the publisher's (for everyone), then a new
    bandwidth profile set while connected."""
    async with running_server(room_type="group") as server:
        first = await join(server, "first", tracks=[rtcroom.LocalVideoTrack(NoiseTrack(160, 120))])
        second = await join(server, "second",
                            tracks=[rtcroom.LocalVideoTrack(NoiseTrack(160, 120))])
        rooms = [first, second]
        try:
            group = server.service.media.rooms[first.sid]
            rates = await settled_video_rates(group, 2)
            cap = int(rates[1] * 1.3)
            assert cap < sum(rates)
            capped = await join(server, "capped", tracks=[], bandwidth_profile={
                "video": {"max_subscription_bitrate": cap, "mode": "presentation"}})
            rooms.append(capped)
            publications = {identity: next(iter(p.tracks.values()))
                            for identity, p in by_identity(capped).items()}
            await wait_until(lambda: all(pub.track is not None
                                         for pub in publications.values()), 30)

            def on(identity: str) -> bool:
                other = "first" if identity == "second" else "second"
                return (not publications[identity].is_track_switched_off
                        and publications[other].is_track_switched_off)

            # Equal priorities: one of the two is on; the subscriber raises the other one.
            await wait_until(lambda: on("first") or on("second"), 30)
            off = "first" if on("second") else "second"
            publications[off].track.set_priority("high")
            await wait_until(lambda: on(off), 30)
            # The SFU forwards the one that is on and nothing of the other.
            legs = group.peers[capped.local_participant.sid].legs
            leg = {i: legs[pub.track_sid].subscription for i, pub in publications.items()}
            assert not leg[off].paused and leg["first" if off == "second" else "second"].paused

            # Back to the publishers' priorities, and the other publisher raises its track.
            now_on = off
            now_off = "first" if now_on == "second" else "second"
            publications[now_on].track.set_priority(None)
            publisher = first if now_off == "first" else second
            for pub in publisher.local_participant.tracks.values():
                pub.set_priority("high")
            await wait_until(lambda: on(now_off), 30)

            # A new profile, set while connected, with room for both.
            capped.set_bandwidth_profile({"video": {"max_subscription_bitrate": 4 * cap,
                                                    "mode": "presentation"}})
            await wait_until(lambda: not any(p.is_track_switched_off
                                             for p in publications.values()), 30)
            assert not any(s.paused for s in leg.values())

            # A priority the subscriber set is forgotten with the track it was for.
            peer = group.peers[capped.local_participant.sid]
            publications["first"].track.set_priority("low")
            first_sid = publications["first"].track_sid
            await wait_until(lambda: peer.priorities.get(first_sid) == "low", 30)
            await first.disconnect()
            await wait_until(lambda: first_sid not in group.router.tracks, 30)
            assert first_sid not in peer.priorities
        finally:
            for room in rooms:
                await room.disconnect()


async def test_get_stats_reports_audio_levels_of_local_and_remote_audio() -> None:
    """A tone and a silence, published in a group room: get_stats() of the publishers and of
    a subscriber reports the tone's level (native kernel on the frames) and ~0 for silence."""
    async with running_server(room_type="group") as server:
        tone = await join(server, "tone", tracks=[rtcroom.LocalAudioTrack(ToneTrack(500, 0.5))])
        quiet = await join(server, "quiet",
                           tracks=[rtcroom.LocalAudioTrack(ToneTrack(500, 0.0))])
        listener = await join(server, "listener", tracks=[])
        rooms = [tone, quiet, listener]
        try:
            await wait_until(lambda: all_subscribed(listener, 2), 60)
            tracks = {identity: next(iter(p.tracks.values())).track
                      for identity, p in by_identity(listener).items()}
            await wait_until(lambda: all(t.is_started for t in tracks.values()), 30)

            async def levels(room: rtcroom.Room) -> tuple[list[Any], list[Any]]:
                reports = await room.get_stats()
                return ([s.audio_level for r in reports for s in r.local_audio_track_stats],
                        [(s.track_sid, s.audio_level) for r in reports
                         for s in r.remote_audio_track_stats])

            loud = await levels(tone)
            assert len(loud[0]) == 1 and loud[0][0] is not None
            # 0.5 of full scale, after Opus: well above silence.
            assert loud[0][0] > 8000
            silent = await levels(quiet)
            assert silent[0] == [0]
            await asyncio.sleep(0.5)  # a few decoded frames after start
            received = dict((await levels(listener))[1])
            sids = {identity: t.sid for identity, t in tracks.items()}
            assert received[sids["tone"]] > 8000
            assert received[sids["quiet"]] < 50
        finally:
            for room in rooms:
                await room.disconnect()
