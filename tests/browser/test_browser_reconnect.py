"""The unmodified twilio-video.js in headless Chromium resumes after the server drops its
WebSocket, in both room types: the SDK reports 53001, reconnects on the same peer connections,
and media keeps flowing both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rtcroom
from loopback_peers import PatternTrack
from roompage import join_page, open_page, page_server, page_wait, read_frames, received
from serverutil import (  # noqa: F401 (fixture)
    TcpProxy,
    loopback_ice,
    running_server,
    token,
    wait_until,
)

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]


@pytest.mark.parametrize("room_type", ["peer-to-peer", "group"])
async def test_browser_resumes_after_the_server_drops_its_websocket(
        browser: Any, twilio_video_dist: Path, room_type: str) -> None:
    async with running_server(room_type=room_type) as server, \
            page_server(twilio_video_dist) as url:
        proxy = TcpProxy(server.port)
        await proxy.start()
        bot = await rtcroom.connect(token("bot"), server=server.url, name="room", audio=True,
                                    video=True)
        try:
            page = await open_page(browser, url)
            joined = await join_page(page, "browser", proxy.url)
            assert joined["state"] == "connected", joined
            await page_wait(page, "inbound().then(r => r.frames >= 10)")
            await wait_until(lambda: "video" in received(bot, "browser"), 30)

            proxy.cut()
            await page_wait(page, "events.some(e => e.event === 'reconnected')")
            events = await page.evaluate("events.map(e => e.event + (e.code ? ' ' + e.code : ''))")
            assert events[:2] == ["reconnecting 53001", "reconnected"], events
            assert (await page.evaluate("describe()"))["participants"][0]["identity"] == "bot"

            before = (await page.evaluate("inbound()"))["frames"]
            await page_wait(page, f"inbound().then(r => r.frames >= {before + 30})")
            frames = await read_frames(received(bot, "browser")["video"], 10)
            assert len(frames) == 10
            if room_type == "peer-to-peer":
                return

            # The page kept its one connection to the SFU...
            states = await page.evaluate(
                "peerConnections.filter(pc => pc.connectionState !== 'closed')"
                ".map(pc => [pc.connectionState, pc.signalingState])")
            assert states == [["connected", "stable"]]
            # ...and a subscription made after the resume reaches the page on it.
            late = await rtcroom.connect(token("late"), server=server.url, name="room",
                                         tracks=[rtcroom.LocalVideoTrack(PatternTrack(160, 120))])
            try:
                await page_wait(page, """videos().then(v => v.some(x => x.identity === 'late'
                                                                 && x.frames >= 5))""")
            finally:
                await late.disconnect()
        finally:
            await bot.disconnect()
            await proxy.stop()
