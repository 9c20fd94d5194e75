"""A bot participant: joins a room, publishes synthetic (or file) media and a data track,
reports what happens, and can record what it receives. ``rtcroom join`` and ``rtcroom demo``
are built on it."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rtcroom.client.connection import connect
from rtcroom.client.localtrack import LocalAudioTrack, LocalDataTrack, LocalTrack, LocalVideoTrack
from rtcroom.client.room import Room
from rtcroom.media import Recorder

__all__ = ["Bot", "BotOptions"]

logger = logging.getLogger("rtcroom.bot")


@dataclass
class BotOptions:
    audio: bool = True
    video: bool = True
    data: bool = True
    tone_frequency: float = 440.0
    width: int = 320
    height: int = 240
    frame_rate: int = 15
    audio_file: str | os.PathLike[str] | None = None
    video_file: str | os.PathLike[str] | None = None
    # Record every media track received into this directory (one file per remote participant).
    record_dir: str | os.PathLike[str] | None = None
    # Seconds between messages on the data track (0: none).
    message_interval: float = 2.0
    connect_options: dict[str, Any] = field(default_factory=dict)


class Bot:
    """One participant run by a program. ``on_event(text)`` receives one line per room event."""

    def __init__(self, server: str, token: str, room_name: str | None, options: BotOptions,
                 on_event: Callable[[str], None] = print) -> None:
        self.server = server
        self.token = token
        self.room_name = room_name
        self.options = options
        self.on_event = on_event
        self.room: Room | None = None
        self.data_track: LocalDataTrack | None = None
        self.messages_received = 0
        self._recorders: dict[str, Recorder] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def _tracks(self) -> list[LocalTrack]:
        o = self.options
        tracks: list[LocalTrack] = []
        if o.audio_file is not None:
            tracks.append(LocalAudioTrack.from_file(o.audio_file, loop=True, name="file-audio"))
        elif o.audio:
            tracks.append(LocalAudioTrack.tone(o.tone_frequency, name="tone"))
        if o.video_file is not None:
            tracks.append(LocalVideoTrack.from_file(o.video_file, loop=True, name="file-video"))
        elif o.video:
            tracks.append(LocalVideoTrack.test_pattern(o.width, o.height, o.frame_rate,
                                                       name="pattern"))
        if o.data:
            self.data_track = LocalDataTrack({"name": "chat"})
            tracks.append(self.data_track)
        return tracks

    async def start(self) -> Room:
        tracks = self._tracks()
        try:
            room = await connect(self.token, server=self.server, name=self.room_name,
                                 tracks=tracks, **self.options.connect_options)
        except BaseException:
            for track in tracks:
                track.stop()
            raise
        self.room = room
        self._watch(room)
        me = room.local_participant.identity
        self.on_event(f"{me}: joined room {room.name} ({room.sid}) as "
                      f"{room.local_participant.sid}")
        for p in room.participants.values():
            self.on_event(f"{me}: {p.identity} is here")
        if self.data_track is not None and self.options.message_interval > 0:
            self._tasks.append(asyncio.create_task(self._chat(me)))
        return room

    def _watch(self, room: Room) -> None:
        me = room.local_participant.identity
        say = self.on_event
        room.on("participant_connected", lambda p: say(f"{me}: {p.identity} joined"))
        room.on("participant_disconnected", lambda p: say(f"{me}: {p.identity} left"))
        room.on("participant_reconnecting", lambda p: say(f"{me}: {p.identity} reconnecting"))
        room.on("participant_reconnected", lambda p: say(f"{me}: {p.identity} reconnected"))
        room.on("track_published", lambda pub, p: say(
            f"{me}: {p.identity} published {pub.kind} '{pub.track_name}'"))
        room.on("track_unpublished", lambda pub, p: say(
            f"{me}: {p.identity} unpublished '{pub.track_name}'"))
        room.on("track_subscribed", self._subscribed)
        room.on("track_message", self._message)
        room.on("reconnecting", lambda error: say(f"{me}: reconnecting ({error})"))
        room.on("reconnected", lambda: say(f"{me}: reconnected"))
        room.on("disconnected", lambda r, error: say(
            f"{me}: disconnected" + (f" ({error})" if error else "")))

    def _subscribed(self, track: Any, publication: Any, participant: Any) -> None:
        me = self.room.local_participant.identity if self.room else "?"
        self.on_event(f"{me}: receiving {publication.kind} '{publication.track_name}' from "
                      f"{participant.identity}")
        if self.options.record_dir is not None and str(publication.kind) in ("audio", "video"):
            self._tasks.append(asyncio.create_task(self._record(track, participant)))

    async def _record(self, track: Any, participant: Any) -> None:
        path = os.path.join(os.fspath(self.options.record_dir or "."),
                            f"{participant.identity}-{track.sid}.mkv")
        recorder = Recorder(path, track)
        self._recorders[track.sid] = recorder
        await recorder.start()
        self.on_event(f"recording {participant.identity}'s {track.kind} to {path}")

    def _message(self, data: Any, track: Any, participant: Any) -> None:
        self.messages_received += 1
        me = self.room.local_participant.identity if self.room else "?"
        self.on_event(f"{me}: message from {participant.identity}: {data!r}")

    async def _chat(self, me: str) -> None:
        n = 0
        while self.data_track is not None and not self.data_track.is_stopped:
            await asyncio.sleep(self.options.message_interval)
            n += 1
            self.data_track.send(f"hello #{n} from {me}")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for recorder in self._recorders.values():
            await recorder.stop()
        if self.room is not None:
            await self.room.disconnect()
            for publication in list(self.room.local_participant.tracks.values()):
                publication.track.stop()
