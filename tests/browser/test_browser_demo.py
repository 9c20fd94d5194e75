"""The /demo page of `rtcroom serve`, in headless Chromium, in either room type: it joins a room
with a Python bot in it and shows both participants' video, audio level and network quality. A
screenshot of the page is checked for live (non-blank) video tiles."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import rtcroom
from serverutil import loopback_ice, running_server, token  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("loopback_ice")

TILES = """[...document.querySelectorAll('.tile')].map(t => {
  const v = t.querySelector('video'), r = v.getBoundingClientRect();
  return { identity: t.dataset.identity, width: v.videoWidth, playing: v.currentTime > 0.5,
           meter: parseFloat(t.querySelector('.meter div').style.width) || 0,
           quality: t.querySelector('.quality').textContent,
           rect: [r.x, r.y, r.width, r.height] };
})"""


def decode_png(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data), format="png_pipe") as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


@pytest.mark.parametrize("room_type", ["group", "peer-to-peer"])
async def test_demo_page_shows_live_tiles(browser: Any, twilio_video_dist: Path,
                                          room_type: str) -> None:
    async with running_server(room_type=room_type,
                              twilio_video_dir=str(twilio_video_dist)) as server:
        bot = await rtcroom.connect(token("bot", "demo"), server=server.url, name="demo",
                                    audio=True, video=True)
        try:
            page = await browser.new_page()
            await page.set_viewport_size({"width": 800, "height": 600})
            await page.goto(f"{server.http_url}/demo?room=demo&identity=viewer&autojoin=1")
            await page.wait_for_function(
                f"(() => {{ const t = {TILES}; return t.length === 2 && "
                "t.every(x => x.width > 0 && x.playing) && t.some(x => x.meter > 0); })()",
                timeout=30_000)
            tiles = {t["identity"]: t for t in await page.evaluate(TILES)}
            assert set(tiles) == {"viewer", "bot"}
            status = await page.text_content("#status")
            assert status is not None and bot.sid in status and "viewer" in status
            # The bot's 440 Hz tone moves its meter; each tile says its network quality level
            # (n/a until one is known; peer-to-peer rooms never report one).
            assert tiles["bot"]["meter"] > 0
            assert all(t["quality"].startswith("network quality: ") for t in tiles.values())

            image = decode_png(await page.screenshot())
            scale = image.shape[1] / 800
            for identity, t in tiles.items():
                x, y, w, h = (int(v * scale) for v in t["rect"])
                region = image[y:y + h, x:x + w].astype(float)
                # A blank tile is one flat colour (black before the first frame).
                assert region.std() > 10, f"{identity}'s tile is blank"
        finally:
            await bot.disconnect()
