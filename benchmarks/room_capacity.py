"""Room capacity: the largest group room this machine holds, with every participant a Python bot
publishing audio (a tone) and video (a test pattern) and receiving everyone else's.

The server runs in a process of its own (the rtcroom server, not a bare router: signaling,
SFU, dominant speaker and the rest as configured), the bots in two worker processes. For each
room size the bots join, wait until every one receives video from every other, then the server's
CPU (share of one core: it is one asyncio process), the bots' CPU and the machine's idle time are
measured over a window, with the video frame rate each bot receives from each other. The ramp
stops at the first size where the server passes 80 % of a core, or the frames received fall
under 80 % of those sent (the bots, on the same two cores, run out first on a small machine).

    .venv/bin/python benchmarks/room_capacity.py [--sizes 2,4,6,8,10,12] [--seconds 10]
        [--size 320x240 --fps 15]

Loopback only. Each size is bounded in time (joining 60 s, measuring ``--seconds``).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from rtcroom.aiortc_ext.ice import use_host_addresses
from rtcroom.client.connection import connect
from rtcroom.client.localtrack import LocalAudioTrack, LocalVideoTrack
from rtcroom.server.app import start_server
from serverutil import CONFIG, token

TICKS = os.sysconf("SC_CLK_TCK")
JOIN_TIMEOUT = 60.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_idle() -> tuple[float, float]:
    """(idle, total) jiffies of all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return values[3] + values[4], sum(values)


def _serve(conn: Any) -> None:
    async def main() -> None:
        with use_host_addresses(["127.0.0.1"]):
            server = await start_server(replace(CONFIG, room_type="group",
                                                max_participants=50))
            conn.send(server.url)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
            await server.stop()

    asyncio.run(main())


def _bots(conn: Any, url: str, room: str, identities: list[str], everyone: int,
          size: tuple[int, int], fps: int, seconds: float) -> None:
    """Run ``identities`` as bots; report when all receive every other video, then the frames
    each received during the measurement window."""

    async def main() -> None:
        rooms, frames, sources = [], {}, {}
        readers: list[asyncio.Task[None]] = []

        async def count(identity: str, track: Any) -> None:
            async for _ in track.frames():
                frames[identity] += 1

        with use_host_addresses(["127.0.0.1"]):
            for identity in identities:
                frames[identity], sources[identity] = 0, set()
                joined = await connect(token(identity, room), server=url, name=room, tracks=[
                    LocalAudioTrack.tone(300 + 20 * len(rooms), name="tone"),
                    LocalVideoTrack.test_pattern(size[0], size[1], fps, name="pattern")])

                def subscribed(track: Any, publication: Any, participant: Any,
                               identity: str = identity) -> None:
                    if track.kind == "video":
                        sources[identity].add(participant.identity)
                        readers.append(asyncio.ensure_future(count(identity, track)))

                joined.on("track_subscribed", subscribed)
                rooms.append(joined)
            deadline = time.monotonic() + JOIN_TIMEOUT
            while time.monotonic() < deadline and any(
                    len(s) < everyone - 1 for s in sources.values()):
                await asyncio.sleep(0.2)
            conn.send(min(len(s) for s in sources.values()))
            conn.recv()  # measuring starts
            start = dict(frames)
            await asyncio.sleep(seconds)
            conn.send({i: frames[i] - start[i] for i in identities})
            conn.recv()  # leave
            for task in readers:
                task.cancel()
            for joined in rooms:
                await joined.disconnect()

    asyncio.run(main())


def measure(url: str, server_pid: int, n: int, size: tuple[int, int], fps: int,
            seconds: float) -> dict[str, Any]:
    room = f"capacity-{n}"
    names = [f"bot{i}" for i in range(n)]
    groups = [names[0::2], names[1::2]]
    ctx = multiprocessing.get_context("spawn")
    workers = []
    for group in groups:
        if not group:
            continue
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_bots, args=(child, url, room, group, n, size, fps, seconds))
        proc.start()
        workers.append((proc, parent))
    try:
        joined = min(p.recv() if p.poll(JOIN_TIMEOUT + 30) else -1 for _, p in workers)
        if joined < n - 1:
            return {"participants": n, "joined": False}
        time.sleep(2.0)  # let the joins' renegotiations settle
        s0, b0 = cpu_seconds(server_pid), sum(cpu_seconds(p.pid) for p, _ in workers)
        i0, t0, w0 = *machine_idle(), time.monotonic()
        for _, p in workers:
            p.send("go")
        received: dict[str, int] = {}
        for _, p in workers:
            received.update(p.recv() if p.poll(seconds + 30) else {})
        wall = time.monotonic() - w0
        i1, t1 = machine_idle()
        server = (cpu_seconds(server_pid) - s0) / wall
        bots = (sum(cpu_seconds(p.pid) for p, _ in workers) - b0) / wall
        per_source = sorted(v / wall / (n - 1) for v in received.values())
        return {"participants": n, "joined": True, "server_core": server, "bots_cores": bots,
                "machine_busy": 1 - (i1 - i0) / max(t1 - t0, 1),
                "fps_min": per_source[0] if per_source else 0.0,
                "fps_median": per_source[len(per_source) // 2] if per_source else 0.0,
                "streams_forwarded": 2 * n * (n - 1)}
    finally:
        for proc, p in workers:
            try:
                p.send("leave")
            except (BrokenPipeError, OSError):
                pass
            proc.join(30)
            if proc.is_alive():
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2,4,6,8,10,12")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--fps", type=int, default=15)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child,))
    server.start()
    url = parent.recv()
    print(f"{os.cpu_count()} cores; bots publish tone + {args.size} at {args.fps} fps "
          "and receive everything")
    print("participants  streams  server(core)  bots(cores)  machine busy  "
          "fps per source min/median")
    largest = 0
    try:
        for n in (int(v) for v in args.sizes.split(",")):
            r = measure(url, server.pid, n, (width, height), args.fps, args.seconds)
            if not r["joined"]:
                print(f"{n:12d}  not every bot received every video within {JOIN_TIMEOUT:.0f} s")
                break
            print(f"{n:12d}  {r['streams_forwarded']:7d}  {r['server_core']:11.0%}  "
                  f"{r['bots_cores']:11.2f}  {r['machine_busy']:12.0%}  "
                  f"{r['fps_min']:5.1f} / {r['fps_median']:.1f}")
            if r["server_core"] >= 0.8 or r["fps_min"] < 0.8 * args.fps:
                why = ("server above 80 % of a core" if r["server_core"] >= 0.8
                       else "frames received under 80 % of those sent")
                print(f"stopped at {n}: {why}")
                break
            largest = n
    finally:
        parent.send("stop")
        server.join(30)
    print(f"largest room held: {largest} participants (server under 80 % of a core, every "
          "bot receiving >= 80 % of every other's frames)")


if __name__ == "__main__":
    main()
