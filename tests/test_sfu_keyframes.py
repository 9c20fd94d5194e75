"""Keyframe requests through the SFU (issue 8): a subscriber's PLI or FIR reaches the publisher,
as a PLI, and however many subscribers ask, however often, the publisher hears at most one per
stream per ``keyframe_request_interval``."""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest
from aiortc import RTCRtpSender
from aiortc.rtcdtlstransport import RtpRouter
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket
from loopback_peers import PatternTrack, loopback_only
from rtcroom.aiortc_ext.rtp import send_rtcp, sender_ssrc
from rtcroom.server.sfu import Router
from sfu_room import add_publisher, add_subscriber, close_all, connect_all

pytestmark = pytest.mark.timeout(120)

INTERVAL = 1.0


@pytest.fixture(autouse=True)
def _loopback():
    with loopback_only():
        yield


def test_what_fir_routing_relies_on_is_still_in_aiortc() -> None:
    # rtcroom.aiortc_ext.rtp wraps route_rtcp and adds the senders a FIR's FCI names.
    assert list(inspect.signature(RtpRouter.route_rtcp).parameters) == ["self", "packet"]
    source = inspect.getsource(RtpRouter.route_rtcp)
    assert "return recipients" in source and "self.senders.get(packet.media_ssrc)" in source


def fir(ssrc: int, sequence: int) -> RtcpPsfbPacket:
    """A FIR as RFC 5104 4.3.1 has it: media SSRC 0, the stream asked for in the FCI."""
    return RtcpPsfbPacket(fmt=RTCP_PSFB_FIR, ssrc=1, media_ssrc=0,
                          fci=ssrc.to_bytes(4, "big") + bytes([sequence & 0xFF, 0, 0, 0]))


async def test_pli_and_fir_reach_the_publisher_at_most_once_per_interval(monkeypatch) -> None:
    router = Router(keyframe_request_interval=INTERVAL)
    pub = await add_publisher(router, "pub", [PatternTrack(160, 120)])
    track = pub.tracks[0]
    heard: list[tuple[float, int, int]] = []
    original = RTCRtpSender._handle_rtcp_packet
    sender = pub.senders[0]

    async def spy(self, packet):
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            heard.append((time.monotonic(), packet.fmt, packet.media_ssrc))
        await original(self, packet)

    monkeypatch.setattr(sender, "_handle_rtcp_packet", spy.__get__(sender))
    subs = [await add_subscriber(router, f"s{i}", [track.sid]) for i in range(3)]
    try:
        await connect_all([pub], subs)
        for sub in subs:
            await asyncio.wait_for(sub.remote_tracks[track.sid].recv(), 15)

        def ask(sub, packet) -> asyncio.Future:
            transport = sub.client.getTransceivers()[0].receiver.transport
            return asyncio.ensure_future(send_rtcp(transport, [packet]))

        # One FIR from one subscriber, past the interval: the publisher gets a PLI for it.
        await asyncio.sleep(INTERVAL * 1.5)
        before, requests = len(heard), track.keyframe_requests_sent
        leg_ssrc = sender_ssrc(subs[0].subscriptions[0].sender)
        assert await ask(subs[0], fir(leg_ssrc, 1))
        for _ in range(100):
            if len(heard) > before:
                break
            await asyncio.sleep(0.05)
        assert len(heard) == before + 1 and heard[-1][1] == RTCP_PSFB_PLI
        assert track.keyframe_requests_sent == requests + 1

        # Every subscriber asks every 50 ms, by PLI and by FIR, for about 2.5 intervals.
        await asyncio.sleep(INTERVAL * 1.5)
        before = len(heard)
        start = time.monotonic()
        asked = 0
        for n in range(50):
            for sub in subs:
                ssrc = sender_ssrc(sub.subscriptions[0].sender)
                pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=ssrc)
                assert await ask(sub, pli if n % 2 else fir(ssrc, n))
                asked += 1
            await asyncio.sleep(0.05)
            if time.monotonic() - start > INTERVAL * 2.5:
                break
        await asyncio.sleep(0.3)  # the last requests' way to the publisher
        elapsed = time.monotonic() - start
        during = heard[before:]
        assert asked >= 30
        assert 1 <= len(during) <= 1 + elapsed / INTERVAL, (len(during), elapsed)
        # PLIs naming the publisher's stream (not the legs' SSRCs), spaced by the interval.
        assert all((fmt, ssrc) == (RTCP_PSFB_PLI, sender_ssrc(sender))
                   for _, fmt, ssrc in during)
        gaps = [b[0] - a[0] for a, b in zip(during, during[1:])]
        assert all(gap > INTERVAL * 0.9 for gap in gaps), gaps
        # Video keeps flowing to everyone.
        for sub in subs:
            await asyncio.wait_for(sub.remote_tracks[track.sid].recv(), 15)
    finally:
        await close_all(router, [pub], subs)
