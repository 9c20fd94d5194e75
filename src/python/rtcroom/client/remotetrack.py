"""Remote tracks: media and data from another participant, once subscribed.

Read media with ``async for frame in track.frames(): frame.to_ndarray()`` (PyAV frames), record
it with :class:`rtcroom.media.Recorder`, or get a plain MediaStreamTrack for other aiortc code
with ``create_media_stream_track()``. Each reader has its own small buffer; a reader that falls
behind loses its oldest frames, never another reader's. Data arrives as ``message`` events and
through ``async for message in track.messages()``.

Interface for the network layer (package-internal; RemoteParticipant creates these objects in
``_subscribe`` and ends them in ``_unsubscribe``):

- ``RemoteMediaTrack._attach(media_stream_track)``: the aiortc track of the receiver. From then
  on the track is read continuously (aiortc's receive queue has no bound), measuring
  ``audio_level`` / ``dimensions`` and firing ``started``.
- ``RemoteDataTrack._receive(message)``: one message from the data channel.
- ``RemoteTrack._set_enabled(bool)``, ``_set_switched_off(bool)``: state changes; the
  RemoteParticipant calls them and fires the matching publication/participant/room events.
- ``RemoteTrack._end()``: unsubscribed; readers finish.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from aiortc import RTCDataChannel
from aiortc.mediastreams import MediaStreamTrack

from rtcroom.constants import TrackKind, TrackPriority
from rtcroom.events import EventEmitter
from rtcroom.media.fanout import Fanout
from rtcroom.media.frames import frame_audio_level
from rtcroom.options import VideoTrackDimensions

if TYPE_CHECKING:
    from rtcroom.client.participant import RemoteParticipant

__all__ = [
    "RemoteAudioTrack",
    "RemoteDataTrack",
    "RemoteMediaTrack",
    "RemoteTrack",
    "RemoteVideoTrack",
]


class RemoteTrack(EventEmitter):
    """A subscribed track. ``sid`` is the server's id for it, ``name`` the publisher's name.

    ``priority`` is the subscriber-side priority set with :meth:`set_priority` (None: the
    publisher's). Events: ``enabled(track)``, ``disabled(track)``, ``switched_off(track)``,
    ``switched_on(track)``.
    """

    EVENTS: ClassVar[frozenset[str]] = frozenset(
        {"disabled", "enabled", "switched_off", "switched_on"}
    )
    kind: ClassVar[TrackKind]

    def __init__(self, sid: str, name: str, participant: RemoteParticipant | None = None) -> None:
        super().__init__()
        self.sid = sid
        self.name = name
        self.is_enabled = True
        self.is_switched_off = False
        self.is_started = False
        self.priority: TrackPriority | None = None
        self._participant = participant

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sid={self.sid!r}, name={self.name!r})"

    def set_priority(self, priority: TrackPriority | str | None) -> RemoteTrack:
        """Ask for this track at ``priority`` (None: go back to the publisher's priority)."""
        value = None if priority is None else TrackPriority.coerce(priority, "priority")
        self.priority = value
        if self._participant is not None:
            self._participant._subscribe_priority_changed(self, value)
        return self

    def _set_enabled(self, enabled: bool) -> bool:
        if enabled == self.is_enabled:
            return False
        self.is_enabled = enabled
        self.emit("enabled" if enabled else "disabled", self)
        return True

    def _set_switched_off(self, off: bool) -> bool:
        if off == self.is_switched_off:
            return False
        self.is_switched_off = off
        self.emit("switched_off" if off else "switched_on", self)
        return True

    def _bubble(self, event: str, *args: Any) -> None:
        if self._participant is not None:
            self._participant._track_event(event, self, *args)

    def _end(self) -> None:
        """Unsubscribed: no more media or messages."""


class RemoteMediaTrack(RemoteTrack):
    """Remote audio or video. Extra event: ``started(track)`` at the first frame."""

    EVENTS = RemoteTrack.EVENTS | {"started"}

    def __init__(self, sid: str, name: str, participant: RemoteParticipant | None = None) -> None:
        super().__init__(sid, name, participant)
        self.media_stream_track: MediaStreamTrack | None = None
        self._fanout: Fanout | None = None
        self._ended = False

    def _attach(self, media_stream_track: MediaStreamTrack) -> None:
        if self._fanout is not None:
            raise RuntimeError(f"{self!r} already has a MediaStreamTrack")
        if media_stream_track.kind != self.kind:
            raise ValueError(f"{self!r} got a {media_stream_track.kind} MediaStreamTrack")
        self.media_stream_track = media_stream_track
        self._fanout = Fanout(media_stream_track, self._process)
        if self._ended:
            self._fanout.close()
        else:
            self._fanout.start()

    def _process(self, frame: Any) -> Any:
        if not self.is_started:
            self.is_started = True
            self.emit("started", self)
            self._bubble("track_started")
        self._observe(frame)
        return frame

    def _observe(self, frame: Any) -> None:
        """Measure what the track's properties report."""

    def create_media_stream_track(self, queue_size: int = 8) -> MediaStreamTrack:
        """A new aiortc MediaStreamTrack giving this track's frames (stop it when done)."""
        if self._fanout is None:
            raise RuntimeError(f"{self!r} has no media attached")
        return self._fanout.subscribe(queue_size)

    def frames(self, queue_size: int = 8) -> AsyncIterator[Any]:
        """Every frame from now on, as PyAV frames, until the track ends or the loop breaks."""
        if self._fanout is None:
            raise RuntimeError(f"{self!r} has no media attached")
        return self._fanout.frames(queue_size)

    def _end(self) -> None:
        self._ended = True
        if self._fanout is not None:
            self._fanout.close()


class RemoteAudioTrack(RemoteMediaTrack):
    """Remote audio. ``audio_level``: AudioLevel (0..32767) of the last frame received."""

    kind = TrackKind.AUDIO

    def __init__(self, sid: str, name: str, participant: RemoteParticipant | None = None) -> None:
        super().__init__(sid, name, participant)
        self.audio_level: int | None = None

    def _observe(self, frame: Any) -> None:
        self.audio_level = frame_audio_level(frame)


class RemoteVideoTrack(RemoteMediaTrack):
    """Remote video. ``dimensions``: size of the last frame received.

    Extra event: ``dimensions_changed(track)``. With ``bandwidth_profile.video`` set to
    ``client_track_switch_off_control="manual"`` the application asks for the track with
    :meth:`switch_on` / :meth:`switch_off`; with ``content_preferences_mode="manual"`` it says
    how big the video is shown with :meth:`set_content_preferences`. The server answers by
    switching the track on or off (``switched_on`` / ``switched_off``) and choosing a quality.
    """

    kind = TrackKind.VIDEO
    EVENTS = RemoteMediaTrack.EVENTS | {"dimensions_changed"}

    def __init__(self, sid: str, name: str, participant: RemoteParticipant | None = None) -> None:
        super().__init__(sid, name, participant)
        self.dimensions: VideoTrackDimensions | None = None

    def _observe(self, frame: Any) -> None:
        dims = self.dimensions
        if dims is None or dims.width != frame.width or dims.height != frame.height:
            self.dimensions = VideoTrackDimensions(frame.width, frame.height)
            self.emit("dimensions_changed", self)
            self._bubble("track_dimensions_changed")

    def switch_on(self) -> RemoteVideoTrack:
        """Ask the server to send this track (needs client_track_switch_off_control manual)."""
        self._hint("client_track_switch_off_control", enabled=True)
        return self

    def switch_off(self) -> RemoteVideoTrack:
        """Ask the server to stop sending this track (same condition as :meth:`switch_on`)."""
        self._hint("client_track_switch_off_control", enabled=False)
        return self

    def set_content_preferences(
        self, render_dimensions: VideoTrackDimensions | dict[str, Any]
    ) -> RemoteVideoTrack:
        """Tell the server the size the video is shown at (needs content_preferences_mode
        manual); it picks the quality from it."""
        dims = VideoTrackDimensions.from_dict(render_dimensions, "render_dimensions")
        self._hint("content_preferences_mode", render_dimensions=dims)
        return self

    def _hint(self, mode_option: str, **hint: Any) -> None:
        room = self._participant._room if self._participant is not None else None
        profile = room.options.bandwidth_profile if room is not None else None
        video = profile.video if profile is not None else None
        if getattr(video, mode_option, None) != "manual":
            raise RuntimeError(
                f"{self!r}: connect with bandwidth_profile.video.{mode_option} = 'manual' first"
            )
        if room is not None and room._signaling is not None:
            room._signaling.render_hint(self.sid, **hint)


class RemoteDataTrack(RemoteTrack):
    """Remote data. Event ``message(data, track)``; or ``async for data in track.messages()``.

    ``max_packet_life_time``, ``max_retransmits``, ``ordered`` and ``reliable`` describe the
    channel it arrives on: the publisher's settings, which a group room's server keeps on
    every subscriber's channel.
    """

    kind = TrackKind.DATA
    EVENTS = RemoteTrack.EVENTS | {"message"}

    def __init__(self, sid: str, name: str, participant: RemoteParticipant | None = None) -> None:
        super().__init__(sid, name, participant)
        self.max_packet_life_time: int | None = None
        self.max_retransmits: int | None = None
        self.ordered = True
        self.reliable = True
        self._readers: list[_MessageReader] = []
        self._ended = False

    def _describe(self, channel: RTCDataChannel) -> None:
        self.ordered = channel.ordered
        self.max_retransmits = channel.maxRetransmits
        self.max_packet_life_time = channel.maxPacketLifeTime
        self.reliable = self.max_retransmits is None and self.max_packet_life_time is None

    def _receive(self, data: str | bytes) -> None:
        self.emit("message", data, self)
        self._bubble("track_message", data)
        for reader in self._readers:
            reader.push(data)

    async def messages(self, max_queued: int = 1000) -> AsyncIterator[str | bytes]:
        """Every message from the first iteration on, until the track is unsubscribed or the
        loop breaks. At most ``max_queued`` wait for a slow reader; older ones are dropped.
        """
        if self._ended:
            return
        reader = _MessageReader(max_queued)
        self._readers.append(reader)
        try:
            while True:
                message = await reader.next()
                if message is None:
                    return
                yield message
        finally:
            self._readers.remove(reader)

    def _end(self) -> None:
        self._ended = True
        for reader in self._readers:
            reader.end()


class _MessageReader:
    def __init__(self, max_queued: int) -> None:
        self._messages: collections.deque[str | bytes] = collections.deque(maxlen=max_queued)
        self._ready = asyncio.Event()
        self._ended = False

    def push(self, message: str | bytes) -> None:
        self._messages.append(message)
        self._ready.set()

    def end(self) -> None:
        self._ended = True
        self._ready.set()

    async def next(self) -> str | bytes | None:
        while not self._messages:
            if self._ended:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._messages.popleft()
