"""The unmodified twilio-video.js in headless Chromium, in peer-to-peer rooms with Python
participants: joining, seeing who is there, and media and data flowing both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rtcroom
from roompage import (
    check_media_both_ways,
    join_page,
    open_page,
    page_server,
    page_wait,
    read_frames,
    received,
)
from serverutil import (  # noqa: F401 (fixture)
    TcpProxy,
    loopback_ice,
    running_server,
    token,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("loopback_ice")


async def test_browser_and_python_bots_share_a_peer_to_peer_room(
        browser: Any, twilio_video_dist: Path) -> None:
    async with running_server(room_type="peer-to-peer") as server, \
            page_server(twilio_video_dist) as url:
        bot_data = rtcroom.LocalDataTrack()
        bot = await rtcroom.connect(token("bot"), server=server.url, name="room", audio=True,
                                    video=True)
        late: rtcroom.Room | None = None
        try:
            await bot.local_participant.publish_track(bot_data)
            page = await open_page(browser, url)
            joined = await join_page(page, "browser", server.url, data=True)
            assert "error" not in joined, joined
            assert joined["sid"] == bot.sid and joined["name"] == "room"
            assert joined["localIdentity"] == "browser" and joined["state"] == "connected"
            assert sorted(t["kind"] for t in joined["localTracks"]) == ["audio", "data",
                                                                        "video"]
            assert all(t["sid"].startswith("MT") for t in joined["localTracks"])
            [seen] = joined["participants"]
            assert seen["identity"] == "bot" and seen["sid"] == bot.local_participant.sid
            assert {t["sid"] for t in seen["tracks"]} == set(bot.local_participant.tracks)

            await check_media_both_ways(page, bot, bot_data)
            # One connection per direction, none left waiting for an answer (the SDK's
            # opening offer was closed by the server).
            open_states = await page.evaluate(
                "peerConnections.filter(pc => pc.connectionState !== 'closed')"
                ".map(pc => pc.signalingState)")
            assert open_states == ["stable", "stable"]

            # Someone joining later appears with its publications, subscribed.
            late = await rtcroom.connect(token("late"), server=server.url, name="room",
                                         audio=True, video=False)
            later = await page_wait(page, """(() => {
                const p = describe().participants.find(p => p.identity === 'late');
                return p && p.tracks.length && p.tracks.every(t => t.subscribed) && p;
            })()""")
            assert [t["kind"] for t in later["tracks"]] == ["audio"]
            assert later["sid"] == late.local_participant.sid
            assert {"event": "participantConnected", "identity": "late"} in await page.evaluate(
                "events")
            await wait_until(lambda: set(received(late, "browser")) == {"audio", "video",
                                                                        "data"}, 30)

            # Publishing later, both ways: a second browser camera reaches the bot; a track the
            # bot adds reaches the page; unpublishing is seen by the bot.
            await page.evaluate("""Twilio.Video.createLocalVideoTrack({width: 160, name: 'second'})
                .then(t => { window.second = t; return room.localParticipant.publishTrack(t); })""")

            def second() -> Any:
                return next((pub for p in bot.participants.values() for pub in p.tracks.values()
                             if pub.track_name == "second"), None)

            await wait_until(lambda: second() is not None and second().track is not None, 30)
            assert (await read_frames(second().track, 5))[-1].width == 160
            await bot.local_participant.publish_track(rtcroom.LocalVideoTrack.test_pattern(
                160, 120, name="bot-second"))
            await page_wait(page, """describe().participants.find(p => p.identity === 'bot')
                .tracks.some(t => t.name === 'bot-second' && t.subscribed)""")
            await page.evaluate("room.localParticipant.unpublishTrack(second)")
            await wait_until(lambda: second() is None, 30)

            left: list[str] = []
            bot.on("participant_disconnected", lambda p: left.append(p.identity))
            await page.evaluate("room.disconnect()")
            await wait_until(lambda: left == ["browser"])
        finally:
            if late is not None:
                await late.disconnect()
            await bot.disconnect()


async def test_two_browsers_share_one_connection_and_see_the_bot(
        browser: Any, twilio_video_dist: Path) -> None:
    async with running_server(room_type="peer-to-peer") as server, \
            page_server(twilio_video_dist) as url:
        bot = await rtcroom.connect(token("bot"), server=server.url, name="room", audio=True,
                                    video=True)
        try:
            pages = [await open_page(browser, url) for _ in range(2)]
            # b0's app brings its own (empty) ICE server list: no `ice`/`iced` round trip.
            assert "error" not in await join_page(pages[0], "b0", server.url, iceServers=[])
            # b1 publishes VP8 simulcast (the SDK munges its SDP for it, peer-to-peer too).
            assert "error" not in await join_page(
                pages[1], "b1", server.url, video={"width": 640, "height": 480},
                preferredVideoCodecs=[{"codec": "VP8", "simulcast": True}])
            for page in pages:
                await page_wait(page, """describe().participants.length === 2 &&
                    describe().participants.every(p => p.tracks.length === 2
                                                  && p.tracks.every(t => t.subscribed))""")
                # Open connections: to the bot, from the bot, and one shared with the other
                # browser; video is decoded on the last two.
                await page_wait(page, """(async () => {
                    const open = peerConnections.filter(pc => pc.connectionState === 'connected');
                    let decoding = 0;
                    for (const pc of open) {
                      let frames = 0;
                      (await pc.getStats()).forEach(s => {
                        if (s.type === 'inbound-rtp' && s.kind === 'video') {
                          frames += s.framesDecoded || 0;
                        }
                      });
                      if (frames >= 5) decoding += 1;
                    }
                    return open.length === 3 && decoding === 2;
                })()""")
            await wait_until(lambda: all(set(received(bot, f"b{i}")) == {"audio", "video"}
                                         for i in range(2)), 30)
            # The bot decodes b1's simulcast video (one layer of it), which goes out as several
            # encodings.
            frames = await read_frames(received(bot, "b1")["video"], 10)
            assert frames[-1].width in (160, 320, 640)
            encodings = await pages[1].evaluate("""(async () => {
                let n = 0;
                for (const pc of peerConnections.filter(pc => pc.connectionState === 'connected')) {
                  (await pc.getStats()).forEach(s => {
                    if (s.type === 'outbound-rtp' && s.kind === 'video') n += 1;
                  });
                }
                return n;
            })()""")
            assert encodings > 3  # without simulcast: one per connection b1 sends on (3)
        finally:
            await bot.disconnect()
