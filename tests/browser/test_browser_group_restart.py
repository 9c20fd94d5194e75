"""The SFU's connection to a twilio-video.js page fails (here: closed under it, as a lost ICE
path closes it): the server starts it over on a fresh connection, and the page's media
signaling channels come back with it (the SDK sets a channel up again only when a room update
names it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rtcroom
from loopback_peers import PatternTrack
from roompage import join_page, open_page, page_server, page_wait
from serverutil import loopback_ice, running_server, token, wait_until  # noqa: F401
from test_group_room import Voice

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]

CHANNELS = {"active_speaker", "network_quality", "track_priority", "track_switch_off",
            "render_hints", "publisher_hints"}


async def test_media_signaling_comes_back_on_the_fresh_connection(
        browser: Any, twilio_video_dist: Path) -> None:
    voice = Voice(500)
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        bot = await rtcroom.connect(token("bot"), server=server.url, name="room",
                                    tracks=[rtcroom.LocalAudioTrack(voice),
                                            rtcroom.LocalVideoTrack(PatternTrack(160, 120))])
        try:
            page = await open_page(browser, url)
            joined = await join_page(page, "browser", server.url, audio=False,
                                     dominantSpeaker=True, networkQuality=True,
                                     preferredVideoCodecs="auto",
                                     bandwidthProfile={"video": {"mode": "grid"}})
            assert "error" not in joined, joined
            group = server.service.media.rooms[bot.sid]
            peer = group.peers[joined["localSid"]]
            await wait_until(lambda: peer.msp_ready == CHANNELS, 30,
                             describe=lambda: sorted(CHANNELS - peer.msp_ready))
            await page_wait(page, "videos().then(v => v.length === 1 && v[0].frames >= 5)", 60)

            old = peer.pc
            assert old is not None
            await old.close()
            await wait_until(lambda: peer.pc is not None and peer.pc is not old, 30)
            # The page answers on a fresh connection: media again, and every channel ready.
            await wait_until(lambda: peer.msp_ready == CHANNELS, 60, describe=lambda: (
                f"not ready {sorted(CHANNELS - peer.msp_ready)}, the server's channels "
                f"{ {name: c.readyState for name, c in peer.msp.items()} }"))
            assert peer.pc_id not in peer.closed_ids
            await page_wait(page, "inbound().then(r => r.frames >= 10)", 60)
            # Signals flow on them: the dominant speaker, as the bot starts speaking.
            voice.speaking = True
            await page_wait(page, "room.dominantSpeaker"
                                  " && room.dominantSpeaker.identity === 'bot'", 60)
        finally:
            await bot.disconnect()
