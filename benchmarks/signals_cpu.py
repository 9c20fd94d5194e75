"""Server CPU of issue 9's signals: a 10-participant group room with bandwidth profiles,
dominant speaker and network quality on, against the same room with all three off (the target:
the three together add < 10 %).

    .venv/bin/python benchmarks/signals_cpu.py [--seconds 15] [--rounds 2]

The server runs in a process of its own (on 127.0.0.1, its ICE on loopback); its CPU time is read
from /proc over a window while 10 bots in this process send a tone each, 4 of them also 160x120
video at 5 frames/s, and receive everything. Rounds alternate off / on, each in a fresh room
after a warm-up, so load from other jobs falls on both sides alike; the last line is the ratio
of the medians ("ratios" section, as the other benchmarks print it).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import rtcroom
from rtcroom.accesstoken import AccessToken, VideoGrant
from rtcroom.aiortc_ext.ice import use_host_addresses

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from loopback_peers import ToneTrack
from serverutil import ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID, CONFIG

PARTICIPANTS = 10
VIDEO_PUBLISHERS = 4
WARM_UP = 8.0
_TICKS = os.sysconf("SC_CLK_TCK")


def _serve(conn: Any) -> None:
    from dataclasses import replace

    from rtcroom.server.app import start_server

    async def main() -> None:
        server = await start_server(replace(CONFIG, room_type="group"))
        conn.send(server.url)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await server.stop()

    with use_host_addresses(["127.0.0.1"]):
        asyncio.run(main())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def token(identity: str, room: str) -> str:
    t = AccessToken(ACCOUNT_SID, API_KEY_SID, API_KEY_SECRET, identity=identity)
    t.add_grant(VideoGrant(room=room))
    return t.to_jwt()


def receives_everything(i: int, room: rtcroom.Room) -> bool:
    """Bot ``i`` receives every other's audio and every other video publisher's video."""
    others_with_video = VIDEO_PUBLISHERS - (i < VIDEO_PUBLISHERS)
    return sum(pub.track is not None for p in room.participants.values()
               for pub in p.tracks.values()) == PARTICIPANTS - 1 + others_with_video


def switched_off(room: rtcroom.Room) -> int:
    return sum(pub.is_track_switched_off for p in room.participants.values()
               for pub in p.tracks.values())


async def window(url: str, pid: int, room: str, signals: bool, seconds: float) -> float:
    """Server CPU seconds per participant per second of media, with the signals on or off."""
    options: dict[str, Any] = {}
    if signals:
        options = {"dominant_speaker": True, "network_quality": True,
                   "bandwidth_profile": {"video": {"mode": "grid"}}}
    rooms = []
    try:
        for i in range(PARTICIPANTS):
            tracks: list[Any] = [rtcroom.LocalAudioTrack(ToneTrack(300 + 50 * i))]
            if i < VIDEO_PUBLISHERS:
                tracks.append(rtcroom.LocalVideoTrack.test_pattern(160, 120, frame_rate=5))
            rooms.append(await rtcroom.connect(token(f"bot{i}", room), server=url, name=room,
                                               tracks=tracks, **options))
        deadline = time.monotonic() + 90
        while not all(receives_everything(i, r) for i, r in enumerate(rooms)):
            if time.monotonic() > deadline:
                raise RuntimeError("the bots did not all receive each other in 90 s")
            await asyncio.sleep(0.5)
        await asyncio.sleep(WARM_UP)
        # The server's downlink estimates start at 1 Mbps and grow on a clean link; a video
        # switched off would make "on" cheaper for the wrong reason: measure with all on.
        while any(switched_off(r) for r in rooms):
            if time.monotonic() > deadline + 60:
                raise RuntimeError("videos still switched off after 60 s")
            await asyncio.sleep(0.5)
        start, cpu = time.monotonic(), cpu_seconds(pid)
        await asyncio.sleep(seconds)
        used = cpu_seconds(pid) - cpu
        if any(switched_off(r) for r in rooms):
            print("  (a video was switched off during the window)", flush=True)
        return used / (time.monotonic() - start) / PARTICIPANTS
    finally:
        for r in rooms:
            await r.disconnect()


async def run(url: str, pid: int, seconds: float, rounds: int) -> dict[bool, list[float]]:
    results: dict[bool, list[float]] = {False: [], True: []}
    for n in range(rounds):
        for signals in (False, True):
            value = await window(url, pid, f"bench-{n}-{signals}", signals, seconds)
            results[signals].append(value)
            print(f"round {n + 1}, signals {'on ' if signals else 'off'}: server CPU "
                  f"{value * 1000:.1f} ms/s per participant", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(there,), daemon=True)
    server.start()
    try:
        url = here.recv()
        assert server.pid is not None
        with use_host_addresses(["127.0.0.1"]):
            results = asyncio.run(run(url, server.pid, args.seconds, args.rounds))
    finally:
        here.send("stop")
        server.join(10)
    off, on = (statistics.median(results[k]) for k in (False, True))
    print("ratios")
    print(f"signals_cpu: on is {on / off:.3f}x off (server CPU per participant, "
          f"{off * 1000:.1f} vs {on * 1000:.1f} ms/s, {PARTICIPANTS} participants, "
          f"medians of {args.rounds})")


if __name__ == "__main__":
    main()
