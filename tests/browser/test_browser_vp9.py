"""VP9 between an unmodified twilio-video.js page and a Python participant, through the SFU
and peer to peer: Chromium publishes VP9 (``preferredVideoCodecs: ['VP9']``) and the Python
participant decodes it; the Python participant publishes VP9 (libvpx-vp9, RFC 9628 payloads)
and Chromium decodes it. The SFU forwards both as received: with two spatial layers in one
stream (VP9 SVC), both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rtcroom
from loopback_peers import PatternTrack, looks_like_pattern
from roompage import join_page, open_page, page_server, page_wait, read_frames, received
from rtcroom.aiortc_ext.repair import RepairingJitterBuffer
from rtcroom.aiortc_ext.rtp import negotiated_codecs
from rtcroom.aiortc_ext.vp9 import Vp9PayloadDescriptor
from serverutil import loopback_ice, running_server, token, wait_until  # noqa: F401 (fixture)
from test_vp9_rooms import video_senders

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]

# The mime types of the page's video streams, by direction, from its own statistics.
PAGE_CODECS = """async () => {
  const out = { inbound: [], outbound: [] };
  for (const pc of peerConnections) {
    if (pc.connectionState === 'closed') continue;
    const stats = await pc.getStats();
    stats.forEach(s => {
      if ((s.type === 'inbound-rtp' || s.type === 'outbound-rtp') && s.kind === 'video'
          && s.codecId && stats.get(s.codecId)) {
        out[s.type === 'inbound-rtp' ? 'inbound' : 'outbound'].push(
          stats.get(s.codecId).mimeType);
      }
    });
  }
  return out;
}"""


async def exchange_vp9(page: Any, server: Any, bot: rtcroom.Room) -> tuple[dict, dict]:
    """The page joins preferring VP9; the bot decodes its video and the page the bot's. The
    page's join result and the codecs of its RTP streams."""
    joined = await join_page(page, "browser", server.url, audio=False,
                             preferredVideoCodecs=["VP9"])
    assert "error" not in joined, joined
    await wait_until(lambda: "video" in received(bot, "browser"), 30)
    frames = await read_frames(received(bot, "browser")["video"], 10)
    assert frames[-1].width == 320
    await page_wait(page, "videos().then(v => v.length === 1 && v[0].frames >= 10)")
    return joined, await page.evaluate(PAGE_CODECS)


async def test_vp9_from_the_browser_and_to_the_browser(
        browser: Any, twilio_video_dist: Path) -> None:
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        page = await open_page(browser, url)
        codecs = await page.evaluate(
            "RTCRtpSender.getCapabilities('video').codecs.map(c => c.mimeType)")
        if "video/VP9" not in codecs:
            pytest.skip(f"this Chromium sends {sorted(set(codecs))}")
        bot = await rtcroom.connect(token("bot"), server=server.url, name="room",
                                    tracks=[rtcroom.LocalVideoTrack(PatternTrack())],
                                    preferred_video_codecs=["VP9"])
        try:
            # Chromium -> SFU -> Python, and Python -> SFU -> Chromium.
            joined, sent = await exchange_vp9(page, server, bot)
            group = server.service.media.rooms[bot.sid]
            browser_sid = joined["localTracks"][0]["sid"]
            assert group.router.tracks[browser_sid].codecs[0].mimeType == "video/VP9"
            bot_sid = next(iter(bot.local_participant.tracks.values())).track_sid
            assert group.router.tracks[bot_sid].codecs[0].mimeType == "video/VP9"
            assert sent == {"inbound": ["video/VP9"], "outbound": ["video/VP9"]}, sent
            # The bot's own pattern, through the SFU to a Python subscriber.
            viewer = await rtcroom.connect(token("viewer"), server=server.url, name="room",
                                           tracks=[])
            try:
                await wait_until(lambda: "video" in received(viewer, "bot"), 30)
                patterns = [f for f in await read_frames(received(viewer, "bot")["video"], 10)
                            if looks_like_pattern(f)]
                assert patterns
            finally:
                await viewer.disconnect()
        finally:
            await bot.disconnect()


async def test_vp9_both_ways_peer_to_peer(browser: Any, twilio_video_dist: Path) -> None:
    async with running_server(room_type="peer-to-peer") as server, \
            page_server(twilio_video_dist) as url:
        page = await open_page(browser, url)
        bot = await rtcroom.connect(token("bot"), server=server.url, name="room",
                                    tracks=[rtcroom.LocalVideoTrack(PatternTrack())],
                                    preferred_video_codecs=["VP9"])
        try:
            _, sent = await exchange_vp9(page, server, bot)
            # Peer to peer, the page has a connection per direction; the one answering the
            # bot's offer lists an outbound stream too, negotiated in VP9, that sends nothing.
            assert {k: set(v) for k, v in sent.items()} == {
                "inbound": {"video/VP9"}, "outbound": {"video/VP9"}}, sent
            [sender] = video_senders(bot)
            assert negotiated_codecs(sender)[0].mimeType == "video/VP9"
        finally:
            await bot.disconnect()


async def test_vp9_with_two_spatial_layers_is_forwarded_whole(
        browser: Any, twilio_video_dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pictures of which the Python subscriber received an upper spatial layer packet, read
    # where its jitter buffer takes packets in; by their RTP timestamp less the first frame's,
    # which is the pts aiortc gives the decoded frame.
    upper_layer: set[int] = set()
    origins: dict[int, int] = {}
    add = RepairingJitterBuffer.add

    def recording_add(self: RepairingJitterBuffer, packet: Any) -> Any:
        codec = self.codecs.get(packet.payload_type)
        vp9 = codec is not None and codec.mimeType.lower() == "video/vp9"
        pli, frame = add(self, packet)
        if vp9:
            if frame is not None:
                origins.setdefault(id(self), frame.timestamp)
            descriptor, _ = Vp9PayloadDescriptor.parse(packet.payload)
            if descriptor.tid is not None and descriptor.sid == 1 and id(self) in origins:
                upper_layer.add((packet.timestamp - origins[id(self)]) % (1 << 32))
        return pli, frame

    monkeypatch.setattr(RepairingJitterBuffer, "add", recording_add)
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        page = await open_page(browser, url)
        bot = await rtcroom.connect(token("bot"), server=server.url, name="room", tracks=[])
        try:
            joined = await join_page(page, "browser", server.url, audio=False,
                                     video={"width": 640, "height": 480},
                                     preferredVideoCodecs=["VP9"])
            assert "error" not in joined, joined
            await wait_until(lambda: "video" in received(bot, "browser"), 30)
            mode = await page.evaluate("""async () => {
              const sender = peerConnections.filter(pc => pc.connectionState !== 'closed')
                .flatMap(pc => pc.getSenders()).find(s => s.track && s.track.kind === 'video');
              const parameters = sender.getParameters();
              parameters.encodings[0].scalabilityMode = 'L2T1';
              try { await sender.setParameters(parameters); } catch (e) { return String(e); }
              return sender.getParameters().encodings[0].scalabilityMode;
            }""")
            if mode != "L2T1":
                pytest.skip(f"this Chromium does not send VP9 SVC: {mode}")
            group = server.service.media.rooms[bot.sid]
            [track] = group.router.tracks.values()
            assert track.codecs[0].mimeType == "video/VP9"
            # A picture whose upper layer arrived decodes at the upper layer's size (the lower
            # one is 320x240): the SFU forwarded both layers of the one stream, as received.
            sizes, seen = [], 0
            async for frame in received(bot, "browser")["video"].frames():
                seen += 1
                if frame.pts in upper_layer:
                    sizes.append((frame.width, frame.height))
                if len(sizes) == 10 or seen == 600:
                    break
            assert sizes == [(640, 480)] * 10, (sizes, seen)
            assert len(track.ssrcs) == 1
        finally:
            await bot.disconnect()
