"""A tour of rtcroom's Python API, top to bottom.

    python examples/api_tour.py                          # everything that needs no server
    python examples/api_tour.py --server ws://127.0.0.1:8080  # also join a room there

1. mint an access token and check it the way the server will;
2. write connect options (twilio-video.js's camelCase JSON works too) and see a bad one refused;
3. make local tracks without any device: a tone, a moving test pattern, and audio pushed
   from numpy;
4. read the frames a track sends, with their audio levels, and record them to a file;
5. with --server: join a room, publish, and print what happens in it.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import av
import numpy as np

import rtcroom
from rtcroom.media import Recorder

ACCOUNT_SID = "AC" + "0" * 32
API_KEY_SID = "SK" + "0" * 32
API_KEY_SECRET = "example-secret-example-secret-00"


def make_token(identity: str, room: str) -> str:
    """1. A token for one identity and one room, as Twilio's own library would mint it."""
    token = rtcroom.AccessToken(ACCOUNT_SID, API_KEY_SID, API_KEY_SECRET, identity=identity)
    token.add_grant(rtcroom.VideoGrant(room=room))
    jwt = token.to_jwt()

    claims = rtcroom.verify_token(jwt, API_KEY_SECRET, room=room)
    print(f"token for {claims['grants']['identity']!r}, room {claims['grants']['video']['room']!r}")
    try:
        rtcroom.verify_token(jwt, API_KEY_SECRET, room="another-room")
    except rtcroom.errors.AccessTokenGrantsInvalidError as error:
        print(f"  ...and refused for another room: {error}")
    return jwt


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


async def join(server: str, token: str, options: rtcroom.ConnectOptions) -> None:
    """5. Join a room, publish a tone and a test pattern, and narrate for ten seconds."""
    tracks = rtcroom.create_local_tracks()
    async with await rtcroom.connect(token, server=server, options=options, tracks=tracks) as room:  # type: ignore[attr-defined]
        print(f"joined {room.name} as {room.local_participant.identity}")

        @room.on("participant_connected")
        def hello(participant: rtcroom.RemoteParticipant) -> None:
            print(f"{participant.identity} joined")

        @room.on("track_subscribed")
        async def watch(
            track: rtcroom.RemoteTrack, publication: object, participant: object
        ) -> None:
            if isinstance(track, rtcroom.RemoteAudioTrack):
                async for _ in track.frames():
                    print(f"{track.name}: level {track.audio_level}")
                    await asyncio.sleep(1)

        room.on(
            "dominant_speaker_changed", lambda p: print(f"dominant speaker: {p and p.identity}")
        )
        await asyncio.sleep(10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", help="ws:// URL of an rtcroom server")
    args = parser.parse_args()

    token = make_token("tour-guide", "tour")
    options = make_options()
    with tempfile.TemporaryDirectory() as workdir:
        await show_local_media(Path(workdir))
    if args.server:
        if not hasattr(rtcroom, "connect"):
            raise SystemExit(
                "this rtcroom has no connect() yet (it comes with the signaling client)"
            )
        await join(args.server, token, options)


if __name__ == "__main__":
    asyncio.run(main())
