"""VP8 simulcast from the unmodified twilio-video.js in headless Chromium, through the SFU.

Chromium sends its upper simulcast layers only once its send-side bandwidth estimate has room for
them, and that estimate grows only on congestion control feedback: the SFU negotiates
transport-wide congestion control with the page and reports every packet's arrival
(rtcroom.server.sfu.transportcc). Without it the page stays near its start bitrate and sends one
layer."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
import rtcroom
from roompage import join_page, open_page, page_server, received
from rtcroom.server.sfu.transportcc import transport_feedback
from serverutil import loopback_ice, running_server, token, wait_until  # noqa: F401 (fixture)

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]


async def frame_width(room: rtcroom.Room, identity: str, wanted: Any,
                      timeout: float = 60.0) -> int:
    """Read ``room``'s video from ``identity`` until a decoded frame's width satisfies
    ``wanted``; that width. Fails after ``timeout`` seconds (layers switch at keyframes)."""
    last: list[int] = []

    async def read() -> None:
        while True:
            track = received(room, identity).get("video")
            if track is None:
                await asyncio.sleep(0.2)
                continue
            async for frame in track.frames():
                last.append(frame.width)
                if wanted(frame.width):
                    return

    try:
        await asyncio.wait_for(read(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"{room.local_participant.identity} never decoded a frame of the "
                             f"wanted width (last: {last[-1:]})") from None
    return last[-1]


async def join_simulcast(page: Any, server_url: str, codecs: Any) -> Any:
    """Join the page publishing a 640x480 camera with VP8 simulcast (``codecs``: its
    preferredVideoCodecs); the room's sid."""
    joined = await join_page(page, "browser", server_url, audio=False,
                             video={"width": 640, "height": 480}, preferredVideoCodecs=codecs,
                             bandwidthProfile={"video": {}})
    assert "error" not in joined, joined
    return joined["sid"]


async def layers_arriving(server: Any, room_sid: str) -> Any:
    """The SFU's track of the page's video once more than one of its layers arrives, having
    sent the page feedback."""
    group = server.service.media.rooms[room_sid]
    await wait_until(lambda: len(group.router.tracks) == 1, 30)
    [track] = group.router.tracks.values()
    assert len(track.layers) == 3
    # The page's estimate grows on the SFU's feedback until it sends more than one layer
    # (Chromium sends two at 640x480).
    await wait_until(lambda: sum(r is not None for r in track.layer_bitrates()) >= 2, 60)
    feedback = transport_feedback(track.receiver.transport)
    assert feedback is not None and feedback.packets_sent > 0
    return track


async def test_page_simulcast_sends_more_than_one_layer(
        browser: Any, twilio_video_dist: Path) -> None:
    """VP8 simulcast asked for explicitly: Chromium's layers (all at the camera's size when
    twilio-video.js leaves the encodings alone) grow past one."""
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        page = await open_page(browser, url)
        sid = await join_simulcast(page, server.url, [{"codec": "VP8", "simulcast": True}])
        await layers_arriving(server, sid)


async def test_page_simulcast_layers_go_to_subscribers_by_budget(
        browser: Any, twilio_video_dist: Path) -> None:
    """Adaptive simulcast ("auto", the server sets up publisher hints): twilio-video.js scales
    the layers (320x240 and 640x480 from a 640x480 camera). Two subscribers with different
    budgets decode different sizes."""
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        rooms: list[rtcroom.Room] = []
        try:
            page = await open_page(browser, url)
            sid = await join_simulcast(page, server.url, "auto")
            track = await layers_arriving(server, sid)
            # The upper layer ramps up after it starts: a budget is set once it costs well
            # above the lower one.
            await wait_until(lambda: (track.layer_bitrates()[1] or 0)
                             > 2 * (track.layer_bitrates()[0] or math.inf), 60)
            r0, r1 = (r for r in track.layer_bitrates() if r is not None)
            low = await rtcroom.connect(
                token("low"), server=server.url, name="room",
                bandwidth_profile={"video": {"max_subscription_bitrate": int((r0 + r1) / 2)}})
            rooms.append(low)
            high = await rtcroom.connect(
                token("high"), server=server.url, name="room",
                bandwidth_profile={"video": {"max_subscription_bitrate": 10_000_000}})
            rooms.append(high)
            assert await frame_width(low, "browser", lambda w: w == 320) == 320
            assert await frame_width(high, "browser", lambda w: w == 640) == 640
        finally:
            for room in rooms:
                await room.disconnect()
