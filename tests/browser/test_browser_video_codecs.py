"""A group room created by REST with ``VideoCodecs`` holds an unmodified twilio-video.js page to
them, whatever the page prefers: the reference's way to choose a Group Room's video codec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
import rtcroom
from roompage import join_page, open_page, page_server, read_frames, received
from serverutil import loopback_ice, running_server, token, wait_until  # noqa: F401 (fixture)
from test_server_rest import call

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]


@pytest.mark.parametrize(("room_codec", "page_prefers"), [("VP8", "H264"), ("H264", "VP8")])
async def test_the_page_sends_the_rooms_codec_not_the_one_it_prefers(
        browser: Any, twilio_video_dist: Path, room_codec: str, page_prefers: str) -> None:
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url, aiohttp.ClientSession() as http:
        page = await open_page(browser, url)
        codecs = await page.evaluate(
            "RTCRtpSender.getCapabilities('video').codecs.map(c => c.mimeType)")
        if f"video/{room_codec}" not in codecs or f"video/{page_prefers}" not in codecs:
            pytest.skip(f"this Chromium sends {sorted(set(codecs))}")
        status, body = await call(http, "POST", f"{server.http_url}/v1/Rooms",
                                  data={"UniqueName": "room", "VideoCodecs": room_codec})
        assert status == 201, body
        bot = await rtcroom.connect(token("bot"), server=server.url, name="room")
        try:
            joined = await join_page(page, "browser", server.url, audio=False,
                                     preferredVideoCodecs=[page_prefers])
            assert "error" not in joined, joined
            await wait_until(lambda: "video" in received(bot, "browser"), 30)
            group = server.service.media.rooms[bot.sid]
            [track] = group.router.tracks.values()
            assert track.codecs[0].mimeType == f"video/{room_codec}"
            assert len(await read_frames(received(bot, "browser")["video"], 10)) == 10
            sent = await page.evaluate(
                "peerConnections.find(pc => pc.connectionState === 'connected').getStats()"
                ".then(stats => [...stats.values()].filter(s => s.type === 'codec')"
                ".map(s => s.mimeType))")
            assert f"video/{page_prefers}" not in sent, sent
        finally:
            await bot.disconnect()
