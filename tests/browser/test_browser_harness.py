"""The browser harness itself: Chromium starts headless, loads the unmodified twilio-video.js from
a page on 127.0.0.1, and the SDK gets tracks from the fake devices. Later browser tests build on
this."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roompage import page_server

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


async def test_sdk_loads_and_gets_fake_media(browser: Any, twilio_video_dist: Path) -> None:
    async with page_server(twilio_video_dist, PAGE) as url:
        page = await browser.new_page()
        await page.goto(url)
        result = await page.evaluate("window.result")
    assert result == {"version": "2.36.0", "isSupported": True, "kinds": ["audio", "video"],
                      "live": True}
