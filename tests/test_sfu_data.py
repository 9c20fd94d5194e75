"""Data tracks through the SFU: a publisher's messages reach every subscriber, on channels with
the publisher's reliability settings."""

from __future__ import annotations

import asyncio

import pytest
from loopback_peers import loopback_only, negotiate, wait_connected
from rtcroom.aiortc_ext.peerconnection import bundled_peer_connection
from rtcroom.server.sfu import Router

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _loopback():
    with loopback_only():
        yield


async def _open(*channels) -> None:
    async def one(channel) -> None:
        while channel.readyState != "open":
            await asyncio.sleep(0.02)

    await asyncio.wait_for(asyncio.gather(*(one(c) for c in channels)), 20)


@pytest.mark.parametrize("options", [{"ordered": True},
                                     {"ordered": False, "maxRetransmits": 0},
                                     {"ordered": False, "maxPacketLifeTime": 500}])
async def test_messages_reach_every_subscriber_with_the_publishers_settings(options) -> None:
    router = Router()
    pub_client, pub_server = bundled_peer_connection(), bundled_peer_connection()
    sent = pub_client.createDataChannel("chat", **options)
    arrived = asyncio.get_running_loop().create_future()
    pub_server.on("datachannel", arrived.set_result)
    await negotiate(pub_client, pub_server)
    subs = [(bundled_peer_connection(), bundled_peer_connection()) for _ in range(2)]
    received: list[list] = [[], []]
    try:
        await wait_connected(pub_client, pub_server)
        track = router.publish_data("data", await asyncio.wait_for(arrived, 20))
        legs = []
        for i, (client, server) in enumerate(subs):
            legs.append(router.subscribe_data("data", server))
            client.on("datachannel", lambda ch, i=i: ch.on("message", received[i].append))
            await negotiate(server, client)
        await _open(sent, *legs)
        for leg in legs:
            assert (leg.label, leg.ordered, leg.maxRetransmits, leg.maxPacketLifeTime) == (
                "chat", sent.ordered, sent.maxRetransmits, sent.maxPacketLifeTime)
        messages = ["hello", b"\x00\x01binary", "x" * 5000]
        for message in messages:
            sent.send(message)
        for _ in range(200):
            if all(len(r) == len(messages) for r in received):
                break
            await asyncio.sleep(0.02)
        assert all(sorted(map(repr, r)) == sorted(map(repr, messages)) for r in received)
        assert track.messages_received == len(messages) and track.messages_dropped == 0

        router.unpublish("data")
        assert not router.data_tracks and track.closed
        await _closed(*legs)
    finally:
        await asyncio.gather(pub_client.close(), pub_server.close(),
                             *(pc.close() for pair in subs for pc in pair))


async def _closed(*channels) -> None:
    async def one(channel) -> None:
        while channel.readyState != "closed":
            await asyncio.sleep(0.02)

    await asyncio.wait_for(asyncio.gather(*(one(c) for c in channels)), 20)


async def test_unknown_data_track() -> None:
    pc = bundled_peer_connection()
    with pytest.raises(ValueError, match="nope"):
        Router().subscribe_data("nope", pc)
    await pc.close()
