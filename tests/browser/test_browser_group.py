"""The unmodified twilio-video.js in headless Chromium, in group rooms with Python participants:
every participant has one connection, to the server's SFU, and media, data and the media
signaling channels (dominant speaker, track switch off, render hints, ...) reach the page."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import rtcroom
from loopback_peers import NoiseTrack, PatternTrack
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
    settled_video_rates,
    token,
    wait_until,
)
from test_group_room import Voice

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]


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

            await check_media_both_ways(page, bot, bot_data)

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


async def test_two_browsers_and_two_bots_see_each_other_and_the_dominant_speaker(
        browser: Any, twilio_video_dist: Path) -> None:
    voices = {"p0": Voice(400), "p1": Voice(700)}
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        bots = {name: await rtcroom.connect(
                    token(name), server=server.url, name="room", dominant_speaker=True,
                    tracks=[rtcroom.LocalAudioTrack(voice),
                            rtcroom.LocalVideoTrack(PatternTrack(160, 120))])
                for name, voice in voices.items()}
        try:
            pages = {}
            for name in ("b0", "b1"):
                pages[name] = page = await open_page(browser, url)
                joined = await join_page(page, name, server.url, dominantSpeaker=True,
                                         networkQuality=True)
                assert "error" not in joined, joined
            everyone = ["b0", "b1", "p0", "p1"]
            for name, page in pages.items():
                others = [o for o in everyone if o != name]
                # Every other participant's video is decoded here.
                await page_wait(page, f"""videos().then(v => v.length === 3
                    && JSON.stringify(v.map(x => x.identity)) === '{json.dumps(others, separators=(',', ':'))}'
                    && v.every(x => x.frames >= 5))""", 60)
            for name, bot in bots.items():
                others = [o for o in everyone if o != name]
                await wait_until(lambda bot=bot, others=others: all(
                    "video" in received(bot, o) for o in others), 60)
                for other in others:
                    frames = await read_frames(received(bot, other)["video"], 5)
                    assert frames[-1].width in (160, 320)

            # networkQuality: true asks for the local level only (verbosity 1): the server's
            # levels reach each page, and a clean loopback link scores well once several
            # updates have come (the SDK's own per-kind bitrates are 0 in this Chromium; the
            # server must not read them as nothing received). Not 5: the shared machine's load
            # shows as jitter.
            for name, page in pages.items():
                await page_wait(page, f"""events.some(e => e.event === 'networkQualityLevelChanged'
                                                      && e.identity === '{name}')""")
                await page_wait(page, """channelMessages.filter(
                    m => m.label === 'network_quality').length >= 4""")
                assert await page.evaluate("room.localParticipant.networkQualityLevel") >= 3

            # The browsers' fake microphones beep: silence them, and let p0 speak.
            for page in pages.values():
                await page.evaluate(
                    "room.localParticipant.audioTracks.forEach(p => p.track.disable())")
            voices["p0"].speaking = True
            p0_sid = bots["p0"].local_participant.sid
            group = server.service.media.rooms[bots["p0"].sid]

            def speaker_state() -> str:
                ready = sorted(sid for sid, peer in group.peers.items()
                               if "active_speaker" in peer.msp_ready)
                channels = {sid: {name: (c.readyState, name in peer.msp_ready)
                                  for name, c in peer.msp.items()}
                            for sid, peer in group.peers.items() if sid not in ready}
                return (f"p0 is {p0_sid}; the server's dominant speaker "
                        f"{group.speakers.dominant_speaker} of {sorted(group.speakers)}; "
                        f"active_speaker ready for {ready} of {sorted(group.peers)}; the "
                        f"others' channels (state, ready): {channels}")

            for page in pages.values():
                # The detector's stated delay is 2.5 s from the first word; the wait is longer
                # on a shared machine.
                await page_wait(page, "room.dominantSpeaker"
                                      " && room.dominantSpeaker.identity === 'p0'",
                                describe=speaker_state)
                assert await page.evaluate("room.dominantSpeaker.sid") == p0_sid
                assert {"event": "dominantSpeakerChanged", "identity": "p0"} in \
                    await page.evaluate("events")
            await wait_until(lambda: bots["p1"].dominant_speaker is not None
                             and bots["p1"].dominant_speaker.identity == "p0", 30)
        finally:
            for bot in bots.values():
                await bot.disconnect()


async def test_vp8_simulcast_from_the_page_reaches_a_python_subscriber(
        browser: Any, twilio_video_dist: Path) -> None:
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        bot = await rtcroom.connect(token("bot"), server=server.url, name="room")
        try:
            page = await open_page(browser, url)
            joined = await join_page(page, "browser", server.url, audio=False,
                                     video={"width": 640, "height": 480},
                                     preferredVideoCodecs=[{"codec": "VP8", "simulcast": True}])
            assert "error" not in joined, joined
            await wait_until(lambda: "video" in received(bot, "browser"), 30)
            frames = await read_frames(received(bot, "browser")["video"], 10)
            assert frames[-1].width in (160, 320, 640)
            # The SFU knows the page's video as three simulcast layers, and forwards the highest
            # one arriving (the browser adds the upper ones as its bandwidth estimate grows).
            group = server.service.media.rooms[bot.sid]
            [track] = group.router.tracks.values()
            assert len(track.layers) == 3
            [leg] = [leg.subscription for peer in group.peers.values()
                     for leg in peer.legs.values()]
            await wait_until(lambda: any(r is not None for r in track.layer_bitrates()), 10)
            arriving = [i for i, rate in enumerate(track.layer_bitrates()) if rate is not None]
            assert leg.current_layer() == max(arriving)
        finally:
            await bot.disconnect()


async def test_media_signaling_channels_reach_the_page(
        browser: Any, twilio_video_dist: Path) -> None:
    """The page asks for every media signaling channel; the server opens each on the page's
    connection and the SDK says ready on it. A subscription cap that fits one of two videos
    switches the lower-priority one off in the page, and on again once the other is gone; the
    page's render hints are answered."""
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        high = await rtcroom.connect(token("high"), server=server.url, name="room",
                                     tracks=[rtcroom.LocalVideoTrack(NoiseTrack(160, 120))])
        low = await rtcroom.connect(token("low"), server=server.url, name="room",
                                    tracks=[rtcroom.LocalVideoTrack(NoiseTrack(160, 120))])
        try:
            for pub in high.local_participant.tracks.values():
                pub.set_priority("high")
            group = server.service.media.rooms[high.sid]
            rates = await settled_video_rates(group, 2)
            cap = int(rates[1] * 1.3)  # room for the larger of the two, not for both
            assert cap < sum(rates)
            page = await open_page(browser, url)
            joined = await join_page(
                page, "browser", server.url, audio=False, video=False,
                dominantSpeaker=True, networkQuality=True, preferredVideoCodecs="auto",
                bandwidthProfile={"video": {"maxSubscriptionBitrate": cap}})
            assert "error" not in joined, joined
            channels = {"active_speaker", "network_quality", "track_priority",
                        "track_switch_off", "render_hints", "publisher_hints"}
            peer = group.peers[joined["localSid"]]
            await wait_until(lambda: peer.msp_ready == channels, 30, describe=lambda: (
                f"not ready: {sorted(channels - peer.msp_ready)}; the server's channels: "
                f"{ {name: c.readyState for name, c in peer.msp.items()} }"))
            assert channels <= set(await page.evaluate("channelsOpened"))

            [low_sid] = low.local_participant.tracks
            [high_sid] = high.local_participant.tracks
            await page_wait(page, f"""events.some(e => e.event === 'trackSwitchedOff'
                                                  && e.sid === '{low_sid}')""")
            await page_wait(page, f"""videos().then(v => v.some(x => x.sid === '{low_sid}'
                && x.switchedOff) && v.some(x => x.sid === '{high_sid}' && !x.switchedOff
                && x.frames >= 5))""")
            low_leg = peer.legs[low_sid].subscription
            assert low_leg.paused

            # The SDK hints the size its video elements render at; each hint is answered.
            await page_wait(page, """channelMessages.some(m => m.label === 'render_hints'
                && JSON.parse(m.data).subscriber.hints.length
                && JSON.parse(m.data).subscriber.hints.every(h => h.result === 'OK'))""")
            assert peer.render_hints

            # With the high-priority video gone, the other fits and is switched on again.
            await high.local_participant.unpublish_track(
                next(iter(high.local_participant.tracks.values())).track)
            await page_wait(page, f"""events.some(e => e.event === 'trackSwitchedOn'
                                                  && e.sid === '{low_sid}')""")
            await page_wait(page, f"""videos().then(v => v.some(x => x.sid === '{low_sid}'
                && !x.switchedOff && x.frames >= 5))""")
        finally:
            await high.disconnect()
            await low.disconnect()


async def test_the_page_switches_a_track_off_and_on_with_render_hints(
        browser: Any, twilio_video_dist: Path) -> None:
    """With clientTrackSwitchOffControl 'manual', RemoteVideoTrack.switchOff() and switchOn()
    go to the server as render hints: the SFU stops and resumes forwarding the track."""
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        bot = await rtcroom.connect(token("bot"), server=server.url, name="room",
                                    tracks=[rtcroom.LocalVideoTrack(PatternTrack(160, 120))])
        try:
            page = await open_page(browser, url)
            joined = await join_page(
                page, "browser", server.url, audio=False, video=False,
                bandwidthProfile={"video": {"clientTrackSwitchOffControl": "manual"}})
            assert "error" not in joined, joined
            [sid] = bot.local_participant.tracks
            await page_wait(page, "videos().then(v => v.length === 1 && v[0].frames >= 5)")
            leg = server.service.media.rooms[bot.sid].peers[joined["localSid"]].legs[sid]

            await page.evaluate("[...room.participants.values()][0].videoTracks.forEach("
                                "p => p.track.switchOff())")
            await page_wait(page, f"""events.some(e => e.event === 'trackSwitchedOff'
                                                  && e.sid === '{sid}')""")
            assert leg.subscription.paused
            sent = leg.subscription.packets_sent
            await asyncio.sleep(1.0)
            assert leg.subscription.packets_sent == sent

            await page.evaluate("[...room.participants.values()][0].videoTracks.forEach("
                                "p => p.track.switchOn())")
            await page_wait(page, f"""events.some(e => e.event === 'trackSwitchedOn'
                                                  && e.sid === '{sid}')""")
            frames = (await page.evaluate("videos()"))[0]["frames"]
            await page_wait(page, f"videos().then(v => v[0].frames >= {frames + 10})")

            # Malformed media signaling is ignored; a well-formed hint after it is answered.
            malformed = [
                ("render_hints", "not json"),
                ("render_hints", "[1, 2]"),
                ("render_hints", {"type": "render_hints", "subscriber": 5}),
                ("render_hints", {"type": "render_hints",
                                  "subscriber": {"id": "bad", "hints": [7, {"track": []}]}}),
                ("track_priority", {"type": "track_priority", "track": 7}),
                ("track_priority", {"type": "track_priority", "track": "x",
                                    "subscribe": "urgent"}),
            ]
            for label, message in malformed:
                text = message if isinstance(message, str) else json.dumps(message)
                await page.evaluate("([label, text]) => channels[label].send(text)",
                                    [label, text])
            await page.evaluate("""channels.render_hints.send(JSON.stringify({
                type: 'render_hints', subscriber: {id: 'probe', hints: [
                  {track: 'MTnotatrack', enabled: true}]}}))""")
            await page_wait(page, """channelMessages.some(m => m.label === 'render_hints'
                && JSON.parse(m.data).subscriber.id === 'probe')""")
            replies = [json.loads(m["data"]) for m in await page.evaluate("channelMessages")
                       if m["label"] == "render_hints"]
            assert [r["subscriber"]["hints"] for r in replies
                    if r["subscriber"]["id"] == "probe"] == [
                [{"track": "MTnotatrack", "result": "UNKNOWN_TRACK"}]]
            # The "bad" message had no usable hint: answered with none.
            assert [r["subscriber"]["hints"] for r in replies
                    if r["subscriber"]["id"] == "bad"] == [[]]
            await page_wait(page, f"videos().then(v => v[0].frames >= {frames + 20})")
        finally:
            await bot.disconnect()


async def test_priorities_set_in_the_page_decide_which_video_stays_on(
        browser: Any, twilio_video_dist: Path) -> None:
    """Two bots' videos, a cap in the page's bandwidth profile for one of them: the one the
    page gives the higher priority (RemoteVideoTrack.setPriority, over track_priority) stays
    on, and turning the priorities around turns the videos around."""
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        bots = {name: await rtcroom.connect(
                    token(name), server=server.url, name="room",
                    tracks=[rtcroom.LocalVideoTrack(NoiseTrack(160, 120))])
                for name in ("a", "b")}
        try:
            group = server.service.media.rooms[bots["a"].sid]
            rates = await settled_video_rates(group, 2)
            page = await open_page(browser, url)
            joined = await join_page(
                page, "browser", server.url, audio=False, video=False,
                bandwidthProfile={"video": {"maxSubscriptionBitrate": int(rates[1] * 1.3)}})
            assert "error" not in joined, joined
            # Both subscribed (switchedOff is null until a publication has its track).
            await page_wait(page, """videos().then(v => v.length === 2
                                                  && v.every(x => x.switchedOff !== null))""")
            set_priority = """([identity, priority]) => [...room.participants.values()]
                .find(p => p.identity === identity).videoTracks
                .forEach(pub => pub.track.setPriority(priority))"""
            for on, off in (("a", "b"), ("b", "a")):
                await page.evaluate(set_priority, [on, "high"])
                await page.evaluate(set_priority, [off, "low"])
                await page_wait(page, f"""videos().then(v => v.some(x => x.identity === '{off}'
                    && x.switchedOff) && v.some(x => x.identity === '{on}' && !x.switchedOff))""")
                [on_sid] = bots[on].local_participant.tracks
                peer = group.peers[joined["localSid"]]
                assert peer.priorities[on_sid] == "high"
                assert not peer.legs[on_sid].subscription.paused
        finally:
            for bot in bots.values():
                await bot.disconnect()


async def test_publishing_and_unpublishing_later_renegotiate_in_a_group_room(
        browser: Any, twilio_video_dist: Path) -> None:
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        bot = await rtcroom.connect(token("bot"), server=server.url, name="room", audio=True)
        try:
            page = await open_page(browser, url)
            joined = await join_page(page, "browser", server.url, video=False)
            assert "error" not in joined, joined
            await wait_until(lambda: "audio" in received(bot, "browser"), 30)

            # The page publishes a camera: the SDK offers on its connection to the SFU and the
            # bot decodes the new video; its audio keeps flowing.
            await page.evaluate("""Twilio.Video.createLocalVideoTrack({width: 160, name: 'cam'})
                .then(t => { window.cam = t; return room.localParticipant.publishTrack(t); })""")

            def cam() -> Any:
                return next((pub for p in bot.participants.values() for pub in p.tracks.values()
                             if pub.track_name == "cam"), None)

            await wait_until(lambda: cam() is not None and cam().track is not None, 30)
            assert (await read_frames(cam().track, 5))[-1].width == 160
            assert len(await read_frames(received(bot, "browser")["audio"], 50)) == 50

            # The bot publishes a video while the page's publication settles: the server
            # offers, the page answers, and it decodes the video.
            await bot.local_participant.publish_track(
                rtcroom.LocalVideoTrack(PatternTrack(160, 120), name="bot-cam"))
            await page_wait(page, """videos().then(v => v.some(x => x.name === 'bot-cam'
                                                               && x.frames >= 5))""")

            # Unpublishing on the page ends the bot's subscription only.
            await page.evaluate("room.localParticipant.unpublishTrack(cam)")
            await wait_until(lambda: cam() is None, 30)
            assert len(await read_frames(received(bot, "browser")["audio"], 50)) == 50
            states = await page.evaluate(
                "peerConnections.filter(pc => pc.connectionState !== 'closed')"
                ".map(pc => [pc.connectionState, pc.signalingState])")
            assert states == [["connected", "stable"]]
        finally:
            await bot.disconnect()


async def test_the_page_publishes_on_an_m_line_it_receives_on(
        browser: Any, twilio_video_dist: Path) -> None:
    """twilio-video.js publishes a new track on a transceiver it only receives on (here the
    one the server offered for the bot's video, the page's own being in use for its camera)
    rather than adding one: that m-line then carries media both ways, and ending either
    direction leaves the other."""
    async with running_server(room_type="group") as server, \
            page_server(twilio_video_dist) as url:
        bot = await rtcroom.connect(token("bot"), server=server.url, name="room", audio=True,
                                    video=True)
        try:
            page = await open_page(browser, url)
            joined = await join_page(page, "browser", server.url, audio=False)
            assert "error" not in joined, joined
            await page_wait(page, "videos().then(v => v.length === 1 && v[0].frames >= 5)")
            await wait_until(lambda: "video" in received(bot, "browser"), 30)
            await page.evaluate("""Twilio.Video.createLocalVideoTrack({width: 160, name: 'cam'})
                .then(t => { window.cam = t; return room.localParticipant.publishTrack(t); })""")

            def cam() -> Any:
                return next((pub for p in bot.participants.values() for pub in p.tracks.values()
                             if pub.track_name == "cam"), None)

            await wait_until(lambda: cam() is not None and cam().track is not None, 30)
            assert (await read_frames(cam().track, 5))[-1].width == 160
            peer = server.service.media.rooms[bot.sid].peers[joined["localSid"]]
            assert len(peer.recycled) == 1  # the SDK sent on the bot video's m-line
            frames = (await page.evaluate("videos()"))[0]["frames"]
            await page_wait(page, f"videos().then(v => v[0].frames >= {frames + 10})")

            # The bot's video ends: the page's camera goes on arriving on that m-line.
            video = next(p for p in bot.local_participant.tracks.values()
                         if p.kind == "video")
            await bot.local_participant.unpublish_track(video.track)
            await page_wait(page, "videos().then(v => v.length === 0)")
            assert len(await read_frames(cam().track, 30)) == 30

            # The page's camera ends; the bot sees it go.
            await page.evaluate("room.localParticipant.unpublishTrack(cam)")
            await wait_until(lambda: cam() is None, 30)
        finally:
            await bot.disconnect()
