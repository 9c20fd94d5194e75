"""Bandwidth-profile modes on a really constrained downlink, run inside a network namespace by
tests/netns.py (never on the host: it changes the namespace's nftables).

    netns_profiles_scenario.py SHARE SECONDS

Two rtcroom clients publish VP8 simulcast (tests/test_group_profiles.py's publishers: "high"
with a high-priority video, "std" standard); one subscriber per mode (grid, presentation), with
no ``max_subscription_bitrate``, so its budget is the server's downlink estimate alone. Once the
layers' bitrates have settled, what reaches each subscriber is policed (nftables, its own limit
each) to SHARE of one video's top layer plus the other's lowest: at 1, room for that, not for a
middle layer beside a top one. Each subscriber's estimate falls on the loss; after 15 s for it to
get there, the layer each subscriber decodes of each video (None while switched off) is sampled
every half second for SECONDS. Prints one JSON object: the layers' bitrates, the limit, per mode
the samples (``[layer of high, layer of std]``), the publishers it was told were switched off,
and the server's estimate for it at the end.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from netns_scenario import police
from rtcroom.aiortc_ext.ice import udp_endpoints, use_host_addresses
from serverutil import running_server, wait_until
from test_group_profiles import publish, settled_layer_rates, subscribe

MODES = ("grid", "presentation")


def limit_of(rates: list[float], share: float) -> int:
    """``share`` of the top layer plus the lowest."""
    r0, _, r2 = rates
    return int(share * (r2 + r0))


async def scenario(share: float, seconds: float) -> dict[str, Any]:
    async with running_server(room_type="group") as server:
        rooms: list[Any] = []
        subscribers: dict[str, Any] = {}
        try:
            rooms.append(await publish(server, "high", seed=1, priority="high"))
            rooms.append(await publish(server, "std", seed=2))
            group = server.service.media.rooms[rooms[0].sid]
            rates = await settled_layer_rates(group, 2)
            for mode in MODES:
                subscribers[mode] = await subscribe(
                    server, mode, bandwidth_profile={"video": {"mode": mode}})
            await wait_until(lambda: all(
                s.layer("high") is not None and s.layer("std") is not None
                for s in subscribers.values()), 60)
            limit = limit_of(rates, share)
            for received in subscribers.values():
                pc = received.room._signaling.pcs.connections()[0][1]
                for endpoint in udp_endpoints(pc):
                    police(endpoint.socket.getsockname()[1], limit // 8)
            # The estimate starts at 1 Mbps and falls only on loss: give it time to come down
            # and the layers time to switch at their keyframes.
            await asyncio.sleep(15)
            samples: dict[str, list[list[int | None]]] = {mode: [] for mode in MODES}
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            while loop.time() < end:
                await asyncio.sleep(0.5)
                for mode, received in subscribers.items():
                    samples[mode].append([received.layer("high"), received.layer("std")])
            return {
                "rates": rates, "limit": limit, "samples": samples,
                "switched_off": {m: s.switched_off_events for m, s in subscribers.items()},
                "estimate": {m: group.peers[s.room.local_participant.sid]
                             .estimator.estimate.bitrate for m, s in subscribers.items()},
            }
        finally:
            for received in subscribers.values():
                await received.close()
            for room in rooms:
                await room.disconnect()


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with use_host_addresses(["127.0.0.1"]):
        print(json.dumps(asyncio.run(scenario(float(sys.argv[1]), float(sys.argv[2])))))


if __name__ == "__main__":
    main()
