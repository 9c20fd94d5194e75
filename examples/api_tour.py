"""A tour of rtcroom's Python API, top to bottom.

    python examples/api_tour.py                          # everything that needs no server
    python examples/api_tour.py --server ws://127.0.0.1:8080/signaling  # and join a room

With --server, set RTCROOM_ACCOUNT_SID, RTCROOM_API_KEY_SID and RTCROOM_API_KEY_SECRET to the
server's credentials (the same variables the server reads).

1. mint an access token and check it the way the server will;
2. write connect options (twilio-video.js's camelCase JSON works too) and see a bad one refused;
3. make local tracks without any device: a tone, a moving test pattern, and audio pushed
   from numpy;
4. read the frames a track sends, with their audio levels, and record them to a file;
5. with --server: two participants join a room; one publishes a tone, the other hears it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import tempfile
from pathlib import Path

import av
import numpy as np

import rtcroom
from rtcroom.media import Recorder

# The server's credentials, from the environment variables `rtcroom serve` reads too.
ACCOUNT_SID = os.environ.get("RTCROOM_ACCOUNT_SID", "AC" + "0" * 32)
API_KEY_SID = os.environ.get("RTCROOM_API_KEY_SID", "SK" + "0" * 32)
API_KEY_SECRET = os.environ.get("RTCROOM_API_KEY_SECRET", "example-secret-example-secret-00")


def make_token(identity: str, room: str) -> str:
    """A token for one identity and one room, as Twilio's own library would mint it."""
    token = rtcroom.AccessToken(ACCOUNT_SID, API_KEY_SID, API_KEY_SECRET, identity=identity)
    token.add_grant(rtcroom.VideoGrant(room=room))
    return token.to_jwt()


def check_token() -> None:
    """1. The checks a server makes on a token, with Twilio's error codes when they fail."""
    jwt = make_token("tour-guide", "tour")
    claims = rtcroom.verify_token(jwt, API_KEY_SECRET, room="tour")
    print(f"token for {claims['grants']['identity']!r}, room {claims['grants']['video']['room']!r}")
    try:
        rtcroom.verify_token(jwt, API_KEY_SECRET, room="another-room")
    except rtcroom.errors.AccessTokenGrantsInvalidError as error:
        print(f"  ...and refused for another room: {error}")


def make_options() -> rtcroom.ConnectOptions:
    """2. Options: snake_case keywords, or the JSON a browser app already has."""
    options = rtcroom.ConnectOptions.from_dict(
        {
            "name": "tour",
            "dominantSpeaker": True,
            "networkQuality": {"local": 1, "remote": 1},
            "bandwidthProfile": {"video": {"mode": "collaboration", "maxTracks": 4}},
            "preferredVideoCodecs": [{"codec": "VP8", "simulcast": False}],
        }
    )
    video_profile = options.bandwidth_profile.video  # type: ignore[union-attr]
    print(f"bandwidth mode {video_profile.mode}, at most {video_profile.max_tracks} videos on")
    try:
        rtcroom.ConnectOptions.from_dict({"bandwidthProfile": {"video": {"mode": "gird"}}})
    except ValueError as error:
        print(f"  bad option refused: {error}")
    return options


async def show_local_media(workdir: Path) -> None:
    """3 and 4. Local tracks without devices; their frames, levels, and a recording."""
    tone, pattern = rtcroom.create_local_tracks(audio=True, video={"width": 320, "height": 240})
    pushed = rtcroom.LocalAudioTrack.from_numpy(sample_rate=48000, name="pushed")

    # Every reader of a track (a peer connection, a recorder, this loop) gets every frame.
    count = 0
    async for frame in tone.frames():  # type: ignore[attr-defined]
        print(f"tone frame: {frame.samples} samples, level {tone.audio_level}")  # type: ignore[attr-defined]
        count += 1
        if count == 3:
            break

    # Half a second of a rising sweep, written as numpy samples.
    t = np.arange(24000) / 48000
    sweep = (0.3 * np.sin(2 * np.pi * (200 + 400 * t) * t)).astype(np.float32)
    recording = workdir / "local.mkv"
    async with Recorder(recording, pushed, pattern):
        await pushed.write(sweep)  # type: ignore[attr-defined]
        await pushed.end()  # type: ignore[attr-defined]
        await asyncio.sleep(0.6)
    with av.open(str(recording)) as container:
        streams = ", ".join(f"{s.type} ({s.codec_context.name})" for s in container.streams)
    print(f"recorded {recording.name}: {streams}")
    for track in (tone, pattern, pushed):
        track.stop()


async def join(server: str, options: rtcroom.ConnectOptions, seconds: float) -> None:
    """5. A visitor waits in the room; the guide joins with a tone; the visitor hears it."""
    visitor = await rtcroom.connect(make_token("visitor", "tour"), server=server, options=options)
    print(f"{visitor.local_participant.identity} is in {visitor.name}")

    @visitor.on("participant_connected")
    def hello(participant: rtcroom.RemoteParticipant) -> None:
        print(f"{participant.identity} joined")

    @visitor.on("track_subscribed")
    async def listen(track: rtcroom.RemoteTrack, publication: object, participant: object) -> None:
        if isinstance(track, rtcroom.RemoteAudioTrack):
            count = 0
            async for _ in track.frames():  # 50 frames a second: print one in 25
                count += 1
                if count % 25 == 0:
                    print(f"hearing {track.name!r}: level {track.audio_level}")

    tone = rtcroom.LocalAudioTrack.tone(440, name="guide's tone")
    guide_options = dataclasses.replace(options, tracks=(tone,))
    guide_token = make_token("guide", "tour")
    async with await rtcroom.connect(guide_token, server=server, options=guide_options):
        await asyncio.sleep(seconds)
    await visitor.disconnect()
    tone.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", help="ws:// signaling URL of an rtcroom server")
    parser.add_argument("--seconds", type=float, default=5, help="how long to stay in the room")
    args = parser.parse_args()

    check_token()
    options = make_options()
    with tempfile.TemporaryDirectory() as workdir:
        await show_local_media(Path(workdir))
    if args.server:
        await join(args.server, options, args.seconds)


if __name__ == "__main__":
    asyncio.run(main())
