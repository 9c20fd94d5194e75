"""The browser harness itself: Chromium starts headless, loads the unmodified twilio-video.js from
a page on 127.0.0.1, and the SDK gets tracks from the fake devices. Later browser tests build on
this."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

PAGE = """<!doctype html>
<html><head><script src="/sdk/twilio-video.min.js"></script></head>
<body><script>
window.result = (async () => {
  const tracks = await Twilio.Video.createLocalTracks({ audio: true, video: { width: 320 } });
  return { version: Twilio.Video.version, isSupported: Twilio.Video.isSupported,
           kinds: tracks.map(t => t.kind).sort(),
           live: tracks.every(t => t.mediaStreamTrack.readyState === 'live') };
})();
</script></body></html>
"""


async def index(_: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def serve(dist: Path) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_static("/sdk", dist)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def test_sdk_loads_and_gets_fake_media(browser: Any, twilio_video_dist: Path) -> None:
    runner = await serve(twilio_video_dist)
    try:
        port = runner.addresses[0][1]
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{port}/")
        result = await page.evaluate("window.result")
    finally:
        await runner.cleanup()
    assert result == {"version": "2.36.0", "isSupported": True, "kinds": ["audio", "video"],
                      "live": True}
