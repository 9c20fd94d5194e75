"""The unmodified twilio-video.js in headless Chromium, in group rooms with Python participants:
every participant has one connection, to the server's SFU, and media, data and the media
signaling channels (dominant speaker, track switch off, render hints, ...) reach the page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rtcroom
from roompage import join_page, open_page, page_server, page_wait, read_frames, received
from serverutil import loopback_ice, running_server, token, wait_until  # noqa: F401 (fixture)

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]


async def send_until_received(send: Any, arrived: Any, attempts: int = 100) -> None:
    """Data channels open a moment after the track is subscribed: send until one arrives."""
    for _ in range(attempts):
        await send()
        if await arrived():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("no message arrived")


async def test_browser_and_python_bot_share_a_group_room(
        browser: Any, twilio_video_dist: Path) -> None:
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        bot_data = rtcroom.LocalDataTrack()
        bot = await rtcroom.connect(token("bot"), server=server.url, name="room", audio=True,
                                    video=True)
        try:
            await bot.local_participant.publish_track(bot_data)
            page = await open_page(browser, url)
            joined = await join_page(page, "browser", server.url, data=True)
            assert "error" not in joined, joined
            assert joined["sid"] == bot.sid and joined["state"] == "connected"
            [seen] = joined["participants"]
            assert seen["identity"] == "bot"
            assert {t["sid"] for t in seen["tracks"]} == set(bot.local_participant.tracks)

            # Python -> browser, through the SFU: decoded video, audio energy, data.
            await page_wait(page, "inbound().then(r => r.frames >= 10 && r.audioEnergy > 0)")

            async def page_has_data() -> bool:
                return bool(await page.evaluate("dataReceived.length"))

            async def bot_sends() -> None:
                bot_data.send("hello browser")

            await send_until_received(bot_sends, page_has_data)
            assert "hello browser" in await page.evaluate("dataReceived")

            # Browser -> Python: decoded frames of the page's camera, its microphone's beeps,
            # data messages.
            await wait_until(lambda: set(received(bot, "browser")) == {"audio", "video",
                                                                       "data"}, 30)
            tracks = received(bot, "browser")
            video = await read_frames(tracks["video"], 10)
            assert video[-1].width == 320
            audio = await read_frames(tracks["audio"], 150)
            assert max(np.abs(f.to_ndarray()).max() for f in audio) > 1000
            messages: list[Any] = []
            tracks["data"].on("message", lambda data, track: messages.append(data))

            async def page_sends() -> None:
                await page.evaluate("dataTrack.send('hello bot')")

            async def bot_has_data() -> bool:
                return bool(messages)

            await send_until_received(page_sends, bot_has_data)
            assert messages[0] == "hello bot"

            # One connection, to the SFU, settled (no offer left unanswered either way).
            states = await page.evaluate(
                "peerConnections.filter(pc => pc.connectionState !== 'closed')"
                ".map(pc => [pc.connectionState, pc.signalingState])")
            assert states == [["connected", "stable"]]
            group = server.service.media.rooms[bot.sid]
            assert all(peer.awaiting is None for peer in group.peers.values())

            left: list[str] = []
            bot.on("participant_disconnected", lambda p: left.append(p.identity))
            await page.evaluate("room.disconnect()")
            await wait_until(lambda: left == ["browser"])
        finally:
            await bot.disconnect()
