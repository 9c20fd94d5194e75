"""twilio-video.js takes a new track on a reused m-line: the SFU puts a later subscription on the
m-line of an ended one (a new msid, new SSRCs), and the page decodes it as a new track."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rtcroom
from roompage import join_page, open_page, page_server, page_wait
from serverutil import loopback_ice, running_server, token, wait_until  # noqa: F401

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]


async def test_a_browser_receives_a_new_track_on_a_reused_m_line(
        browser: Any, twilio_video_dist: Path) -> None:
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        page = await open_page(browser, url)
        joined = await join_page(page, "browser", server.url)
        assert "error" not in joined, joined
        sfu_pc = None
        for name in ("bot1", "bot2", "bot3"):
            bot = await rtcroom.connect(token(name), server=server.url, name="room",
                                        audio=True, video=True)
            try:
                await page_wait(page, f"videos().then(v => v.some(t => t.identity === '{name}'"
                                      " && t.frames >= 5))")
                await page_wait(page, "inbound().then(r => r.audioEnergy > 0)")
                group = server.service.media.rooms[bot.sid]
                sfu_pc = group.peers[joined["localSid"]].pc
            finally:
                await bot.disconnect()
            await page_wait(page, f"!describe().participants.some(p => p.identity === '{name}')")
        # Three publishers came and went: besides the page's own two m-lines, its connection
        # has the first publisher's two, each reused twice, on both ends (not six).
        assert sfu_pc is not None
        assert sorted(t.kind for t in sfu_pc.getTransceivers()) == ["audio", "audio", "video",
                                                                    "video"]
        kinds = await page.evaluate(
            "peerConnections.filter(pc => pc.connectionState !== 'closed')"
            ".map(pc => pc.getTransceivers().map(t => t.receiver.track.kind).sort())")
        assert kinds == [["audio", "audio", "video", "video"]]
        await page.evaluate("room.disconnect()")
