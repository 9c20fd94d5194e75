"""VP8 simulcast through the SFU: a Python publisher encodes three layers and announces them
with an SSRC group, as browsers do; subscribers with different budgets get different layers,
switching only at keyframes."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiortc import RTCRtpSender, RTCSessionDescription
from loopback_peers import NoiseTrack, loopback_only, wait_connected
from rtcroom.aiortc_ext.peerconnection import bundled_peer_connection
from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRtpfbPacket
from rtcroom.aiortc_ext.rtp import send_rtcp
from rtcroom.aiortc_ext.simulcast import HISTORY_SIZE, SimulcastSender
from rtcroom.server.sfu import ForwardedTrack, Router, rtx_ssrcs, simulcast_ssrcs
from rtcroom.server.sfu.simulcast import StreamRates, choose_layer
from sfu_room import add_subscriber, close_all

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(autouse=True)
def _loopback():
    with loopback_only():
        yield


def test_choose_layer() -> None:
    assert choose_layer([250e3, 600e3, 1.5e6], 400e3) == 0
    assert choose_layer([250e3, 600e3, 1.5e6], 700e3) == 1
    assert choose_layer([250e3, 600e3, 1.5e6], 10e6) == 2
    assert choose_layer([250e3, 600e3, 1.5e6], 100e3) == 0
    assert choose_layer([250e3, None, None], 10e6) == 0


def test_stream_rates() -> None:
    rates = StreamRates(window=0.5)
    assert not rates.add(1, 1000, 0.0)
    assert not rates.add(2, 500, 0.25)
    assert rates.add(1, 1000, 0.5)
    assert rates.rates == {1: 8 * 2000 / 0.5, 2: 8 * 500 / 0.5}


async def _frame_of_size(track, size: tuple[int, int], limit: int = 300):
    for _ in range(limit):
        frame = await asyncio.wait_for(track.recv(), 10)
        if (frame.width, frame.height) == size:
            return frame
    raise AssertionError(f"no {size} frame in {limit}")


async def test_subscribers_with_different_budgets_get_different_layers() -> None:
    router = Router()
    pub_client, pub_server = bundled_peer_connection(), bundled_peer_connection()
    transceiver = pub_client.addTransceiver(ForwardedTrack("video"), direction="sendonly")
    transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                     if c.mimeType == "video/VP8"])
    simulcast = SimulcastSender(transceiver, NoiseTrack(320, 240))
    await pub_client.setLocalDescription(await pub_client.createOffer())
    offer = simulcast.announce(pub_client.localDescription.sdp)
    assert offer.count("a=ssrc-group:SIM") == 1
    await pub_server.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await pub_server.setLocalDescription(await pub_server.createAnswer())
    await pub_client.setRemoteDescription(pub_server.localDescription)
    server_transceiver = pub_server.getTransceivers()[0]
    layers = simulcast_ssrcs(offer, server_transceiver.mid)
    assert layers == simulcast.ssrcs
    track = router.publish("cam", server_transceiver, layers=layers)

    low = await add_subscriber(router, "low", ["cam"])
    high = await add_subscriber(router, "high", ["cam"])
    low.subscriptions[0].max_bitrate = 400_000
    high.subscriptions[0].max_bitrate = 10_000_000
    started = time.monotonic()
    try:
        await wait_connected(pub_client, pub_server, low.client, low.server, high.client,
                             high.server)
        simulcast.start()
        await _frame_of_size(high.remote_tracks["cam"], (320, 240))
        frames = [await asyncio.wait_for(low.remote_tracks["cam"].recv(), 10)
                  for _ in range(30)]
        assert {(f.width, f.height) for f in frames[-10:]} == {(80, 60)}
        rates = track.layer_bitrates()
        assert all(r is not None for r in rates) and rates[0] < rates[1] < rates[2]
        assert high.subscriptions[0].current_layer() == 2
        assert low.subscriptions[0].current_layer() == 0

        # A lower budget moves "high" down to the lowest layer, at that layer's keyframe.
        high.subscriptions[0].max_bitrate = 400_000
        await _frame_of_size(high.remote_tracks["cam"], (80, 60))
        # Keyframes were requested per layer, at most once a second each.
        elapsed = time.monotonic() - started
        assert simulcast.keyframes_requested[2] >= 1
        assert all(n <= 1 + elapsed for n in simulcast.keyframes_requested)
        # All three layers were encoded for every frame; the SFU encoded nothing.
        assert max(simulcast.frames_encoded) - min(simulcast.frames_encoded) <= 1
        # Each layer's sender reports reached the SFU, which reports the forwarded layer on.
        for _ in range(50):
            if set(track.sender_reports) == set(layers):
                break
            await asyncio.sleep(0.1)
        assert set(track.sender_reports) == set(layers)
        receiver = high.client.getTransceivers()[0].receiver
        for _ in range(50):
            stats = await receiver.getStats()
            if any(s.type == "remote-outbound-rtp" for s in stats.values()):
                break
            await asyncio.sleep(0.1)
        assert any(s.type == "remote-outbound-rtp" for s in stats.values())

        # A NACK for a top-layer packet is answered with that packet; one for a packet long
        # gone (past the history) is not.
        last = (simulcast._sequence[2] - 1) & 0xFFFF
        nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=layers[2])
        nack.lost = sorted([last, (last - HISTORY_SIZE) & 0xFFFF])
        assert await send_rtcp(pub_server.getTransceivers()[0].receiver.transport, [nack])
        for _ in range(50):
            if simulcast.retransmitted[2]:
                break
            await asyncio.sleep(0.1)
        assert simulcast.retransmitted == [0, 0, 1]
    finally:
        await simulcast.stop()
        await close_all(router, [], [low, high])
        await pub_client.close()
        await pub_server.close()


# A browser's simulcast video section as twilio-video.js munges it for VP8: three layers in a
# SIM group, each with its RTX stream in an FID group.
BROWSER_SECTION = "\r\n".join([
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "c=IN IP4 0.0.0.0", "a=mid:0", "a=sendonly",
    "a=rtpmap:96 VP8/90000", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
    "a=ssrc-group:FID 11 12", "a=ssrc-group:FID 21 22", "a=ssrc-group:FID 31 32",
    "a=ssrc-group:SIM 11 21 31",
    *(f"a=ssrc:{s} cname:c" for s in (11, 12, 21, 22, 31, 32)), ""])


def test_layers_and_rtx_streams_from_the_description() -> None:
    assert simulcast_ssrcs(BROWSER_SECTION, "0") == [11, 21, 31]
    assert rtx_ssrcs(BROWSER_SECTION, "0") == {12: 11, 22: 21, 32: 31}
    assert simulcast_ssrcs(BROWSER_SECTION, "1") == [] and rtx_ssrcs(BROWSER_SECTION, "1") == {}
