"""A test page on 127.0.0.1 that loads the unmodified twilio-video.js and exposes small helpers
(join a room, describe it, measure received media) for the browser tests to call, and the
Python side of driving it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rtcroom
from aiohttp import web
from serverutil import token, wait_until

PAGE = """<!doctype html>
<html><head>
<script>
// Every RTCPeerConnection the SDK creates, so the page can read the browser's own inbound-rtp
// statistics (framesDecoded, totalAudioEnergy) without reaching into the SDK.
window.peerConnections = [];
// Data channels the server opened (media signaling among them) and what arrived on each.
window.channelsOpened = [];
window.channelMessages = [];
window.channels = {};
const NativePeerConnection = window.RTCPeerConnection;
// A constructor returning the native object, with the native prototype: the SDK proxies the
// prototype's own properties, so a subclass would hide them.
function RecordedPeerConnection(...args) {
  const pc = new NativePeerConnection(...args);
  peerConnections.push(pc);
  pc.addEventListener('datachannel', ({ channel }) => {
    channelsOpened.push(channel.label);
    channels[channel.label] = channel;
    channel.addEventListener('message', ({ data }) => channelMessages.push(
      { label: channel.label, data: typeof data === 'string' ? data : null }));
  });
  return pc;
}
RecordedPeerConnection.prototype = NativePeerConnection.prototype;
Object.setPrototypeOf(RecordedPeerConnection, NativePeerConnection);
window.RTCPeerConnection = RecordedPeerConnection;
</script>
<script src="/sdk/twilio-video.min.js"></script></head>
<body><script>
window.room = null;
window.events = [];
window.dataReceived = [];
window.dataTrack = null;

function attach(track) {
  // Media elements make Chromium decode and play out what it receives (no audio energy is
  // measured for a track nothing plays).
  if (track.kind === 'data') {
    track.on('message', m => dataReceived.push(m));
  } else {
    const element = track.attach();
    element.muted = false;
    document.body.appendChild(element);
  }
}

// Connects with the app's options (plus a LocalDataTrack when `data`); resolves to the
// room's description, or {error: code, message} when connect() rejects.
window.join = async (token, options, data) => {
  try {
    options = Object.assign({ insights: false }, options);
    if (data) {
      window.dataTrack = new Twilio.Video.LocalDataTrack();
      const media = await Twilio.Video.createLocalTracks({ audio: true, video: { width: 320 } });
      options.tracks = media.concat([dataTrack]);
    }
    const room = await Twilio.Video.connect(token, options);
    window.room = room;
    const log = (name, extra) => events.push(Object.assign({ event: name }, extra || {}));
    room.on('participantConnected', p => log('participantConnected', { identity: p.identity }));
    room.on('participantDisconnected', p => log('participantDisconnected', { identity: p.identity }));
    room.on('disconnected', (r, error) => log('disconnected', { code: error ? error.code : null }));
    room.on('reconnecting', error => log('reconnecting', { code: error ? error.code : null }));
    room.on('reconnected', () => log('reconnected'));
    room.on('trackSubscribed', attach);
    room.on('dominantSpeakerChanged', p => log('dominantSpeakerChanged',
                                               { identity: p ? p.identity : null }));
    room.on('trackSwitchedOff', (t, pub, p) => log('trackSwitchedOff', { identity: p.identity,
                                                                     sid: pub.trackSid }));
    room.on('trackSwitchedOn', (t, pub, p) => log('trackSwitchedOn', { identity: p.identity,
                                                                   sid: pub.trackSid }));
    room.localParticipant.on('networkQualityLevelChanged', level => log(
      'networkQualityLevelChanged', { identity: room.localParticipant.identity, level }));
    const watch = p => p.on('networkQualityLevelChanged', level => log(
      'networkQualityLevelChanged', { identity: p.identity, level }));
    room.participants.forEach(watch);
    room.on('participantConnected', watch);
    room.participants.forEach(p => p.tracks.forEach(pub => pub.track && attach(pub.track)));
    return describe();
  } catch (error) {
    return { error: error.code === undefined ? String(error) : error.code, message: error.message };
  }
};

window.describe = () => {
  const room = window.room;
  return {
    sid: room.sid, name: room.name, state: room.state,
    localIdentity: room.localParticipant.identity, localSid: room.localParticipant.sid,
    localTracks: [...room.localParticipant.tracks.values()].map(p => ({
      kind: p.kind, name: p.trackName, sid: p.trackSid })),
    participants: [...room.participants.values()].map(p => ({
      identity: p.identity, sid: p.sid, state: p.state,
      tracks: [...p.tracks.values()].map(pub => ({
        kind: pub.kind, name: pub.trackName, sid: pub.trackSid, subscribed: pub.isSubscribed }))
    })).sort((a, b) => a.identity < b.identity ? -1 : 1),
  };
};

// What this page received so far, summed over its peer connections' inbound-rtp stats.
window.inbound = async () => {
  let frames = 0, audioEnergy = 0;
  for (const pc of peerConnections) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach(s => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'video') frames += s.framesDecoded || 0;
      if (s.kind === 'audio') audioEnergy += s.totalAudioEnergy || 0;
    });
  }
  return { frames, audioEnergy, messages: dataReceived.length };
};

// Frames decoded of each received video (by the receiving track's id), and whether it is
// switched off.
window.videos = async () => {
  const out = [];
  for (const p of room.participants.values()) {
    for (const pub of p.videoTracks.values()) {
      const track = pub.track;
      let frames = 0;
      if (track) {
        for (const pc of peerConnections) {
          if (pc.connectionState === 'closed'
              || !pc.getReceivers().some(r => r.track === track.mediaStreamTrack)) continue;
          (await pc.getStats(track.mediaStreamTrack)).forEach(s => {
            if (s.type === 'inbound-rtp') frames += s.framesDecoded || 0;
          });
        }
      }
      out.push({ identity: p.identity, sid: pub.trackSid, name: pub.trackName, frames,
                 switchedOff: track ? track.isSwitchedOff : null });
    }
  }
  return out.sort((a, b) => a.identity < b.identity ? -1 : 1);
};
</script></body></html>
"""


@asynccontextmanager
async def page_server(dist: Path, page: str = PAGE) -> AsyncIterator[str]:
    """Serve `page` (by default the room page) and the SDK's dist/ at /sdk on 127.0.0.1; yields
    the page's URL."""

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_static("/sdk", dist)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


MEDIA = {"audio": True, "video": {"width": 320}}


async def open_page(browser: Any, url: str) -> Any:
    page = await browser.new_page()
    await page.goto(url)
    return page


async def join_page(page: Any, identity: str, ws_url: str, data: bool = False,
                    **options: Any) -> dict[str, Any]:
    return await page.evaluate(
        "([t, options, data]) => join(t, options, data)",
        [token(identity), {"wsServer": ws_url, "name": "room", **MEDIA, **options}, data])


async def page_wait(page: Any, expression: str, timeout: float = 30.0,
                    describe: Any = None) -> Any:
    """Poll a page expression until it is truthy; fail after ``timeout`` seconds, with
    ``describe()`` (the state worth seeing when it fails) in the message when given."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = await page.evaluate(expression)
        if value:
            return value
        if loop.time() > end:
            raise AssertionError(f"page never satisfied {expression} (last: {value!r})"
                                 + (f"; {describe()}" if describe is not None else ""))
        await asyncio.sleep(0.25)


def received(room: rtcroom.Room, identity: str) -> dict[str, Any]:
    """kind -> RemoteTrack of what ``room`` receives from ``identity``."""
    return {str(pub.kind): pub.track for p in room.participants.values()
            if p.identity == identity for pub in p.tracks.values() if pub.track is not None}


async def read_frames(track: Any, count: int, timeout: float = 30.0) -> list[Any]:
    frames: list[Any] = []

    async def read() -> None:
        async for frame in track.frames():
            frames.append(frame)
            if len(frames) >= count:
                return

    await asyncio.wait_for(read(), timeout)
    return frames


async def send_until_received(send: Any, arrived: Any, attempts: int = 100) -> None:
    """Data channels open a moment after the track is subscribed: send until one arrives."""
    for _ in range(attempts):
        await send()
        if await arrived():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("no message arrived")


async def check_media_both_ways(page: Any, bot: rtcroom.Room, bot_data: Any) -> None:
    """The page (joined as "browser" with a data track) and ``bot`` (audio, video and
    ``bot_data``) receive each other's media: decoded video, audio that is not silence
    (Chromium's fake microphone beeps) and data messages."""
    await page_wait(page, "inbound().then(r => r.frames >= 10 && r.audioEnergy > 0)")

    async def page_has_data() -> bool:
        return bool(await page.evaluate("dataReceived.length"))

    async def bot_sends() -> None:
        bot_data.send("hello browser")

    await send_until_received(bot_sends, page_has_data)
    assert "hello browser" in await page.evaluate("dataReceived")

    await wait_until(lambda: set(received(bot, "browser")) == {"audio", "video", "data"}, 30)
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
