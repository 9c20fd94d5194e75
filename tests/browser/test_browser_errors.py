"""Errors an rtcroom server gives a twilio-video.js app, as the page sees them: the TwilioError
code of connect()'s rejection or of the room's ``disconnected`` event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rtcroom
from roompage import page_server
from serverutil import API_KEY_SECRET, loopback_ice, running_server, token  # noqa: F401

NO_MEDIA = {"audio": False, "video": False}

pytestmark = pytest.mark.usefixtures("loopback_ice")


async def join(page: Any, tok: str, ws_url: str, room: str) -> dict[str, Any]:
    return await page.evaluate("([t, options]) => join(t, options)",
                               [tok, {"wsServer": ws_url, "name": room, **NO_MEDIA}])


async def disconnected_code(page: Any) -> Any:
    """The code of the page room's ``disconnected`` event, once it fired."""
    event = await page.wait_for_function(
        "events.find(e => e.event === 'disconnected') || null", timeout=20_000)
    return (await event.json_value())["code"]


@pytest.mark.parametrize("room_type", ["group", "peer-to-peer"])
async def test_refusals_and_endings_carry_twilio_codes(browser: Any, twilio_video_dist: Path,
                                                      room_type: str) -> None:
    async with running_server(room_type=room_type, max_participants=2) as server, \
            page_server(twilio_video_dist) as url:
        page = await browser.new_page()
        await page.goto(url)

        # Access tokens: malformed, signed with another secret, for another room.
        assert (await join(page, "not-a-jwt", server.url, "a"))["error"] == 20101
        forged = token("mallory", "a", secret=API_KEY_SECRET + "x")
        assert (await join(page, forged, server.url, "a"))["error"] == 20107
        elsewhere = await join(page, token("eve", "b"), server.url, "a")
        assert elsewhere["error"] == 20106, elsewhere

        # A full room (max_participants 2).
        bots = [await rtcroom.connect(token(f"bot{i}", "full"), server=server.url, name="full")
                for i in range(2)]
        try:
            assert (await join(page, token("third", "full"), server.url, "full"))["error"] \
                == 53105
        finally:
            for bot in bots:
                await bot.disconnect()

        # The same identity joining again ends the first session with 53205.
        first = await join(page, token("dup", "dup"), server.url, "dup")
        assert first["state"] == "connected", first
        second = await rtcroom.connect(token("dup", "dup"), server=server.url, name="dup")
        try:
            assert await disconnected_code(page) == 53205
            assert second.state == "connected"
        finally:
            await second.disconnect()

        # Server shutdown: the page's room ends with 53001 at once, not after a resume timeout.
        other = await browser.new_page()
        await other.goto(url)
        assert (await join(other, token("last", "end"), server.url, "end"))["state"] \
            == "connected"
        await server.stop()
        assert await disconnected_code(other) == 53001
