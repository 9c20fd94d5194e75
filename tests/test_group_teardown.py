"""Teardown in a group room (issue 8): a publisher's unpublishing, leaving and crashing take down
everything downstream of it in the server: its published tracks, their packet caches and
receive statistics, every subscriber's leg of them with its native forwarder, its own peer
connection with its sockets, and the tasks that served them. Measured on the process that runs
the server (its clients live here too, and leave as well): asyncio tasks and open file
descriptors return to their baseline, and the server's objects become garbage."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
import weakref
from collections import Counter
from typing import Any

import pytest
import rtcroom
from loopback_peers import PatternTrack, ToneTrack
from serverutil import loopback_ice, running_server, token, wait_until  # noqa: F401
from test_connect_p2p import subscribed_tracks as received

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]

# A participant in a process of its own, to be killed: audio, video and a data track.
PARTICIPANT = textwrap.dedent("""
    import asyncio, sys
    import rtcroom
    from rtcroom.aiortc_ext.ice import use_host_addresses

    async def main() -> None:
        with use_host_addresses(["127.0.0.1"]):
            room = await rtcroom.connect(sys.argv[1], server=sys.argv[2], name="room",
                                         audio=True, video=True)
            await room.local_participant.publish_track(rtcroom.LocalDataTrack())
            print("joined", room.local_participant.sid, flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
""")


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def running_tasks() -> Counter[str]:
    """Running tasks by coroutine (some loops replace a task of theirs as they go, e.g. the
    signaling writer's wait for its next frame)."""
    return Counter(t.get_coro().__qualname__ for t in asyncio.all_tasks()  # type: ignore[union-attr]
                   if not t.done() and t is not asyncio.current_task())


async def settled(baseline_fds: int, baseline_tasks: Counter[str],
                  refs: list[weakref.ref[Any]], timeout: float = 30) -> tuple[int, Counter[str],
                                                                               list[Any]]:
    """Wait (bounded) until fds and tasks are back at the baseline and every referent is
    garbage; what is left then (closing transports take a moment)."""
    end = time.monotonic() + timeout
    while True:
        gc.collect()
        alive = [r() for r in refs if r() is not None]
        extra_tasks = running_tasks() - baseline_tasks
        if (fds() <= baseline_fds and not extra_tasks and not alive) or time.monotonic() > end:
            return fds(), extra_tasks, alive
        del alive
        await asyncio.sleep(0.2)


def server_objects(group: Any, peer_sid: str, watcher_sid: str) -> list[weakref.ref[Any]]:
    """Weak references to what the server holds for participant ``peer_sid``: its peer and
    connection, its published tracks (with caches and receive statistics) and the watcher's
    legs of them (with their native forwarders)."""
    peer = group.peers[peer_sid]
    objects: list[Any] = [peer, peer.pc]
    tracks = [t for t in group.router.tracks.values()
              if t.sid in {tr.sid for tr in peer.expected.values()}]
    for track in tracks:
        objects.append(track)
        if track.cache is not None:
            objects.append(track.cache)
        objects += list(track.statistics.values())
        for sub in track.subscriptions:
            objects.append(sub)
            if sub.forwarder is not None:
                objects.append(sub.forwarder)
    objects += [t for t in group.router.data_tracks.values()
                if t.sid in {tr.sid for tr in peer.expected.values()}]
    assert group.peers[watcher_sid].legs
    return [weakref.ref(o) for o in objects]


async def watch_all(watcher: rtcroom.Room, identity: str, kinds: set[str]) -> None:
    await wait_until(lambda: set(received(watcher).get(identity, {})) == kinds, 60)
    tracks = received(watcher)[identity]
    for kind in ("audio", "video"):
        if kind in tracks:
            got = 0
            async for _ in tracks[kind].frames():
                got += 1
                if got == 5:
                    break


async def test_unpublish_leave_and_crash_leave_nothing_behind_in_the_server() -> None:
    async with running_server(room_type="group", max_heartbeat_timeout_ms=1000,
                              session_timeout=1.0, empty_room_timeout=3600) as server:
        watcher = await rtcroom.connect(token("watcher"), server=server.url, name="room",
                                        tracks=[])
        try:
            group = server.service.media.rooms[watcher.sid]
            watcher_sid = watcher.local_participant.sid

            async def guest(identity: str) -> rtcroom.Room:
                room = await rtcroom.connect(
                    token(identity), server=server.url, name="room", tracks=[
                        rtcroom.LocalAudioTrack(ToneTrack(600)),
                        rtcroom.LocalVideoTrack(PatternTrack(160, 120)),
                        rtcroom.LocalDataTrack()])
                await watch_all(watcher, identity, {"audio", "video", "data"})
                return room

            # Warm up imports, codecs and the watcher's m-lines (later subscriptions reuse
            # them) before taking the baseline.
            warm = await guest("warm")
            await warm.disconnect()
            await wait_until(lambda: "warm" not in received(watcher), 30)
            base_fds, base_tasks, _ = await settled(fds(), running_tasks(), [])
            base_tasks = running_tasks()

            # Unpublishing: the video's track, cache, statistics, leg and forwarder go.
            alice = await guest("alice")
            alice_sid = alice.local_participant.sid
            video_pub = next(iter(alice.local_participant.video_tracks.values()))
            video = group.router.tracks[video_pub.track_sid]
            [video_leg] = video.subscriptions
            video_refs = [weakref.ref(o) for o in (video, video.cache, video_leg,
                                                  video_leg.forwarder,
                                                  *video.statistics.values())]
            del video, video_leg
            await alice.local_participant.unpublish_track(video_pub.track)
            await wait_until(lambda: set(received(watcher)["alice"]) == {"audio", "data"}, 30)
            assert video_pub.track_sid not in group.peers[watcher_sid].legs
            _, _, alive = await settled(10**6, running_tasks(), video_refs)
            assert not alive, alive
            del alive

            # Leaving: everything of alice's goes, in the server and in this process.
            refs = server_objects(group, alice_sid, watcher_sid)
            await alice.disconnect()
            await wait_until(lambda: "alice" not in received(watcher), 30)
            assert alice_sid not in group.peers
            left_fds, left_tasks, alive = await settled(base_fds, base_tasks, refs)
            assert not alive, alive
            del alive
            assert left_fds <= base_fds and not left_tasks, (left_fds, base_fds, left_tasks)

            # Crashing: a participant's process killed. The server notices (heartbeats), and
            # what it held for that participant goes, with its sockets.
            proc = subprocess.Popen([sys.executable, "-c", PARTICIPANT,  # noqa: ASYNC220
                                     token("doomed"), server.url], stdout=subprocess.PIPE,
                                    text=True)
            try:
                assert proc.stdout is not None
                line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
                assert line.startswith("joined PA"), line
                doomed_sid = line.split()[1]
                await watch_all(watcher, "doomed", {"audio", "video", "data"})
                refs = server_objects(group, doomed_sid, watcher_sid)
                assert fds() > base_fds  # its connection's sockets, here in the server
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
                if proc.stdout is not None:
                    proc.stdout.close()
            await wait_until(lambda: "doomed" not in received(watcher), 30)
            await wait_until(lambda: doomed_sid not in group.peers, 30)
            assert not group.router.tracks and not group.router.data_tracks
            left_fds, left_tasks, alive = await settled(base_fds, base_tasks, refs)
            assert not alive, alive
            assert left_fds <= base_fds and not left_tasks, (left_fds, base_fds, left_tasks)
            assert watcher.state == rtcroom.RoomState.CONNECTED
        finally:
            await watcher.disconnect()
