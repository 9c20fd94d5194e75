"""A group room under injected loss, run inside a network namespace by tests/netns.py (never on
the host: it changes the namespace's nftables).

    netns_scenario.py loss PERCENT SECONDS
    netns_scenario.py delay MS JITTER_MS SECONDS
    netns_scenario.py ratelimit SHARE SECONDS

Starts a server on 127.0.0.1 with three bots (a tone and a test pattern each, network quality
on), then drops PERCENT % of the UDP datagrams to and from the bot "lossy" for SECONDS (or holds
each back MS ± JITTER_MS, reordering them: tests/impair.py), and prints one JSON object: the server's level per identity before and after, what each bot was told
(its own level and the others'), the video frames each bot decoded of each other during the
loss ("subscriber<-publisher kind"), the NACKs each leg got and the packets it resent, and
the server's detailed stats per identity (to say why a level is what it is).

``ratelimit``: two bots publish incompressible video and a third subscribes to both with a
bandwidth profile (no cap); then what reaches the subscriber is policed (nftables ``limit rate
over``) to SHARE (0..1) of the two videos' bitrate for SECONDS. Prints the server's downlink
estimate for the subscriber before and at its lowest, the bitrates and the limit, and the
publishers of the tracks the subscriber saw switched off.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import rtcroom
from impair import Delay
from loopback_peers import NoiseTrack, ToneTrack
from rtcroom.aiortc_ext.ice import udp_endpoints, use_host_addresses
from rtcroom.constants import NetworkQualityVerbosity as Verbosity
from serverutil import running_server, token, wait_until

NAMES = ("lossy", "clean1", "clean2")


def nft(*args: str) -> None:
    subprocess.run(["nft", *args], check=True, capture_output=True, text=True)


Fault = Callable[[list[int]], AbstractAsyncContextManager[Any]]
"""Given the lossy bot's UDP ports: what happens to them while the scenario measures."""


def drop(percent: int) -> Fault:
    """Drop ``percent`` % of the UDP datagrams from and to the ports, at random."""

    @asynccontextmanager
    async def fault(ports: list[int]) -> AsyncIterator[None]:
        nft("add", "table", "inet", "faults")
        nft("add", "chain", "inet", "faults", "out", "{ type filter hook output priority 0 ; }")
        for port in ports:
            for direction in ("sport", "dport"):
                nft("add", "rule", "inet", "faults", "out", "udp", direction, str(port),
                    "numgen", "random", "mod", "100", "<", str(percent), "drop")
        yield

    return fault


def police(port: int, bytes_per_second: int) -> None:
    """Drop the UDP datagrams to ``port`` beyond ``bytes_per_second``."""
    nft("add", "table", "inet", "faults")
    nft("add", "chain", "inet", "faults", "out", "{ type filter hook output priority 0 ; }")
    nft("add", "rule", "inet", "faults", "out", "udp", "dport", str(port), "limit", "rate",
        "over", str(max(bytes_per_second // 1024, 1)), "kbytes/second", "drop")


async def count_frames(track: Any, counts: dict[str, int], key: str) -> None:
    async for _ in track.frames():
        counts[key] = counts.get(key, 0) + 1


async def scenario(fault: Fault, seconds: float) -> dict[str, Any]:
    async with running_server(room_type="group") as server:
        rooms = {}
        for i, name in enumerate(NAMES):
            rooms[name] = await rtcroom.connect(
                token(name), server=server.url, name="room",
                network_quality={"local": Verbosity.MINIMAL, "remote": Verbosity.MINIMAL},
                tracks=[rtcroom.LocalAudioTrack(ToneTrack(400 + 200 * i)),
                        rtcroom.LocalVideoTrack.test_pattern(160, 120, frame_rate=10)])
        try:
            for room in rooms.values():
                await wait_until(lambda room=room: sum(
                    pub.track is not None for p in room.participants.values()
                    for pub in p.tracks.values()) == 4, 60)
            group = server.service.media.rooms[rooms["lossy"].sid]
            sids = {name: room.local_participant.sid for name, room in rooms.items()}
            await wait_until(lambda: all(
                group.peers[sid].scorer.level is not None for sid in sids.values()), 30)
            before = {name: group.peers[sid].scorer.level for name, sid in sids.items()}

            pc = rooms["lossy"]._signaling.pcs.connections()[0][1]  # type: ignore[union-attr]
            ports = [endpoint.socket.getsockname()[1] for endpoint in udp_endpoints(pc)]

            counts: dict[str, int] = {}
            tasks = []
            async with fault(ports) as faulty:
                for name, room in rooms.items():
                    for p in room.participants.values():
                        for pub in p.tracks.values():
                            tasks.append(asyncio.ensure_future(count_frames(
                                pub.track, counts, f"{name}<-{p.identity} {pub.kind}")))
                await asyncio.sleep(seconds)
                for task in tasks:
                    task.cancel()
                held = {"held": faulty.held, "reordered": faulty.reordered} \
                    if isinstance(faulty, Delay) else {}
            return {
                "impaired": held,
                "before": before,
                "levels": {name: group.peers[sid].scorer.level for name, sid in sids.items()},
                "told": {name: {
                    "local": room.local_participant.network_quality_level,
                    **{p.identity: p.network_quality_level
                       for p in room.participants.values()}} for name, room in rooms.items()},
                "frames": counts,
                "repairs": {name: [
                    (leg.subscription.track.kind, leg.subscription.nacks_received,
                     leg.subscription.retransmitted)
                    for leg in group.peers[sid].legs.values() if hasattr(leg, "subscription")]
                    for name, sid in sids.items()},
                "stats": {name: dataclasses.asdict(group.peers[sid].scorer.stats)
                          for name, sid in sids.items()},
            }
        finally:
            for room in rooms.values():
                await room.disconnect()


async def ratelimit(share: float, seconds: float) -> dict[str, Any]:
    async with running_server(room_type="group") as server:
        rooms = {name: await rtcroom.connect(
            token(name), server=server.url, name="room",
            tracks=[rtcroom.LocalVideoTrack(NoiseTrack(160, 120))]) for name in ("a", "b")}
        limited = rooms["limited"] = await rtcroom.connect(
            token("limited"), server=server.url, name="room", tracks=[],
            bandwidth_profile={"video": {"mode": "grid"}})
        try:
            publications = [pub for p in limited.participants.values()
                            for pub in p.tracks.values()]
            await wait_until(lambda: len(publications) == 2 and all(
                pub.track is not None and not pub.is_track_switched_off
                for pub in publications), 60)
            await asyncio.sleep(5)  # past the encoders' first burst
            group = server.service.media.rooms[limited.sid]
            peer = group.peers[limited.local_participant.sid]
            rates = [max(t.rates.rates.values()) for t in group.router.tracks.values()]
            before = peer.estimator.estimate.bitrate
            pc = limited._signaling.pcs.connections()[0][1]  # type: ignore[union-attr]
            limit = int(share * sum(rates))
            for endpoint in udp_endpoints(pc):
                police(endpoint.socket.getsockname()[1], limit // 8)
            switched_off: list[str] = []
            limited.on("track_switched_off",
                       lambda track, pub, participant: switched_off.append(participant.identity))
            lowest = before
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            while loop.time() < end:
                await asyncio.sleep(0.5)
                lowest = min(lowest, peer.estimator.estimate.bitrate)
            return {"rates": rates, "limit": limit, "before": before, "lowest": lowest,
                    "switched_off": switched_off}
        finally:
            for room in rooms.values():
                await room.disconnect()


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["ratelimit"] and len(args) == 3:
        with use_host_addresses(["127.0.0.1"]):
            print(json.dumps(asyncio.run(ratelimit(float(args[1]), float(args[2])))))
        return
    if args[:1] == ["loss"] and len(args) == 3:
        fault, seconds = drop(int(args[1])), float(args[2])
    elif args[:1] == ["delay"] and len(args) == 4:
        delay, jitter = float(args[1]) / 1000, float(args[2]) / 1000
        fault, seconds = (lambda ports: Delay(ports, delay, jitter)), float(args[3])
    else:
        sys.exit(__doc__)
    with use_host_addresses(["127.0.0.1"]):
        result = asyncio.run(scenario(fault, seconds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
