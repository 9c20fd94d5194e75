"""Local tracks: what a participant publishes.

A :class:`LocalAudioTrack` or :class:`LocalVideoTrack` wraps a source, any aiortc
MediaStreamTrack (rtcroom's synthetic, numpy and file sources are such tracks). Build one with
the class methods (``tone``, ``test_pattern``, ``from_numpy``, ``from_file``) or around your own
MediaStreamTrack; :func:`rtcroom.create_local_tracks` makes synthetic ones like a browser's fake
devices. A :class:`LocalDataTrack` sends strings and bytes to every subscriber.

Interface for the network layer (package-internal, called by rtcroom's signaling client):

- ``LocalMediaTrack._sender_track() -> MediaStreamTrack``: a new tap on the track, to give to
  one ``RTCPeerConnection.addTrack`` / ``RTCRtpSender.replaceTrack``. Every tap sees every
  frame after the enable/disable gate (silence or black while disabled, as a browser sends).
  Use one tap per peer connection; stop it when the sender goes away.
- ``LocalTrack._add_watcher(fn)`` / ``_remove_watcher(fn)``: ``fn(track)`` runs after each
  ``enable``/``disable``/``stop``, so the signaling can send the new state.
- ``LocalDataTrack._add_data_channel(channel)`` / ``_remove_data_channel(channel)``: the aiortc
  RTCDataChannels that ``send`` writes to (one per peer connection the track goes out on).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from aiortc.mediastreams import MediaStreamTrack

from rtcroom.constants import TrackKind
from rtcroom.events import EventEmitter
from rtcroom.media.fanout import Fanout
from rtcroom.media.file import MediaFile
from rtcroom.media.frames import black_like, frame_audio_level, silence_like
from rtcroom.media.push import AudioPushTrack, VideoPushTrack
from rtcroom.media.synthetic import TestPatternTrack, ToneTrack
from rtcroom.options import LocalDataTrackOptions, VideoTrackDimensions

__all__ = [
    "LocalAudioTrack",
    "LocalDataTrack",
    "LocalMediaTrack",
    "LocalTrack",
    "LocalVideoTrack",
]

logger = logging.getLogger("rtcroom.media")

Watcher = Callable[["LocalTrack"], None]


class LocalTrack(EventEmitter):
    """A track this process publishes. ``id`` identifies it on the wire; ``name`` defaults to it.

    Events: ``enabled(track)``, ``disabled(track)``, ``started(track)`` (first frame out),
    ``stopped(track)``.
    """

    EVENTS: ClassVar[frozenset[str]] = frozenset({"disabled", "enabled", "started", "stopped"})
    kind: ClassVar[TrackKind]

    def __init__(self, id: str, name: str | None) -> None:
        super().__init__()
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"track name: expected a non-empty string, got {name!r}")
        self.id = id
        self.name = name or id
        self.is_enabled = True
        self.is_started = False
        self.is_stopped = False
        self._watchers: list[Watcher] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, enabled={self.is_enabled})"

    def enable(self, enabled: bool = True) -> LocalTrack:
        """Send real media (True) or silence/black (False); subscribers see the state."""
        if not isinstance(enabled, bool):
            raise TypeError(f"enable: expected true or false, got {enabled!r}")
        if enabled != self.is_enabled and not self.is_stopped:
            self.is_enabled = enabled
            self.emit("enabled" if enabled else "disabled", self)
            self._notify()
        return self

    def disable(self) -> LocalTrack:
        """Same as ``enable(False)``."""
        return self.enable(False)

    def stop(self) -> None:
        """End the track for good (its source is stopped too)."""
        if self.is_stopped:
            return
        self.is_stopped = True
        self._stop_source()
        self.emit("stopped", self)
        self._notify()

    def _stop_source(self) -> None:
        """Release what feeds the track."""

    def _started(self) -> None:
        if not self.is_started:
            self.is_started = True
            self.emit("started", self)

    def _add_watcher(self, watcher: Watcher) -> None:
        self._watchers.append(watcher)

    def _remove_watcher(self, watcher: Watcher) -> None:
        if watcher in self._watchers:
            self._watchers.remove(watcher)

    def _notify(self) -> None:
        for watcher in list(self._watchers):
            try:
                watcher(self)
            except Exception:
                logger.exception("watcher of %r failed", self)


class LocalMediaTrack(LocalTrack):
    """An audio or video track around ``media_stream_track`` (any aiortc MediaStreamTrack).

    ``muted``/``unmuted`` exist for compatibility and are never emitted: no operating system
    mutes a Python source.
    """

    EVENTS = LocalTrack.EVENTS | {"muted", "unmuted"}

    def __init__(self, media_stream_track: MediaStreamTrack, name: str | None = None) -> None:
        if not isinstance(media_stream_track, MediaStreamTrack):
            raise TypeError(f"expected an aiortc MediaStreamTrack, got {media_stream_track!r}")
        if media_stream_track.kind != self.kind:
            raise ValueError(
                f"{type(self).__name__} needs a {self.kind} MediaStreamTrack, "
                f"got a {media_stream_track.kind} one"
            )
        super().__init__(media_stream_track.id, name)
        self.media_stream_track = media_stream_track
        self._fanout = Fanout(media_stream_track, self._process)

    async def write(self, data: Any) -> None:
        """Send ``data`` (numpy samples or pixels) on a track made with ``from_numpy``."""
        write = getattr(self.media_stream_track, "write", None)
        if write is None:
            raise TypeError(f"{self!r} is not fed from numpy; make it with from_numpy()")
        await write(data)

    async def end(self) -> None:
        """On a ``from_numpy`` track: no more writes; the track stops after what was written."""
        end = getattr(self.media_stream_track, "end", None)
        if end is None:
            raise TypeError(f"{self!r} is not fed from numpy; make it with from_numpy()")
        await end()

    def frames(self, queue_size: int = 8) -> AsyncIterator[Any]:
        """Every frame the track sends from now on (silence/black while disabled)."""
        return self._fanout.frames(queue_size)

    def create_media_stream_track(self, queue_size: int = 8) -> MediaStreamTrack:
        """A new aiortc MediaStreamTrack giving the frames this track sends (stop it when done)."""
        if self.is_stopped:
            raise RuntimeError(f"{self!r} is stopped")
        return self._fanout.subscribe(queue_size)

    def _sender_track(self) -> MediaStreamTrack:
        return self.create_media_stream_track()

    def _stop_source(self) -> None:
        self._fanout.close()
        self.media_stream_track.stop()

    def _process(self, frame: Any) -> Any:
        self._started()
        if not self.is_enabled:
            return self._blank(frame)
        return self._observe(frame)

    def _blank(self, frame: Any) -> Any:
        raise NotImplementedError

    def _observe(self, frame: Any) -> Any:
        return frame


class LocalAudioTrack(LocalMediaTrack):
    """Local audio. ``audio_level``: the AudioLevel (0..32767) of the last frame sent."""

    kind = TrackKind.AUDIO

    def __init__(self, media_stream_track: MediaStreamTrack, name: str | None = None) -> None:
        super().__init__(media_stream_track, name)
        self.audio_level: int | None = None

    @classmethod
    def tone(
        cls,
        frequency: float = 440.0,
        *,
        sample_rate: int = 48000,
        channels: int = 1,
        amplitude: float = 0.25,
        name: str | None = None,
    ) -> LocalAudioTrack:
        """A continuous sine tone (the synthetic microphone)."""
        return cls(ToneTrack(frequency, sample_rate, channels, amplitude), name)

    @classmethod
    def from_numpy(
        cls,
        sample_rate: int = 48000,
        channels: int = 1,
        *,
        buffer_ms: int = 1000,
        name: str | None = None,
    ) -> LocalAudioTrack:
        """A track you feed with ``await track.write(samples)`` (int16 or float arrays)."""
        return cls(AudioPushTrack(sample_rate, channels, buffer_ms), name)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, loop: bool = False, name: str | None = None
    ) -> LocalAudioTrack:
        """The audio of a media file (any format FFmpeg reads)."""
        track = MediaFile(path, loop=loop).audio
        if track is None:
            raise ValueError(f"media file {os.fspath(path)!r} has no audio")
        return cls(track, name)

    def _blank(self, frame: Any) -> Any:
        self.audio_level = 0
        return silence_like(frame)

    def _observe(self, frame: Any) -> Any:
        self.audio_level = frame_audio_level(frame)
        return frame


class LocalVideoTrack(LocalMediaTrack):
    """Local video. ``dimensions``: the size of the last frame sent (None before the first).

    Extra event: ``dimensions_changed(track)``.
    """

    kind = TrackKind.VIDEO
    EVENTS = LocalMediaTrack.EVENTS | {"dimensions_changed"}

    def __init__(self, media_stream_track: MediaStreamTrack, name: str | None = None) -> None:
        super().__init__(media_stream_track, name)
        self.dimensions: VideoTrackDimensions | None = None

    @classmethod
    def test_pattern(
        cls, width: int = 640, height: int = 480, frame_rate: int = 30, *, name: str | None = None
    ) -> LocalVideoTrack:
        """Colour bars with a moving square (the synthetic camera)."""
        return cls(TestPatternTrack(width, height, frame_rate), name)

    @classmethod
    def from_numpy(
        cls,
        frame_rate: int = 30,
        format: str = "rgb24",
        *,
        buffer_frames: int = 30,
        name: str | None = None,
    ) -> LocalVideoTrack:
        """A track you feed with ``await track.write(pixels)`` (``(h, w, 3)`` uint8 arrays)."""
        return cls(VideoPushTrack(frame_rate, format, buffer_frames), name)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, loop: bool = False, name: str | None = None
    ) -> LocalVideoTrack:
        """The video of a media file (any format FFmpeg reads)."""
        track = MediaFile(path, loop=loop).video
        if track is None:
            raise ValueError(f"media file {os.fspath(path)!r} has no video")
        return cls(track, name)

    def _blank(self, frame: Any) -> Any:
        return black_like(self._observe(frame))

    def _observe(self, frame: Any) -> Any:
        dims = self.dimensions
        if dims is None or dims.width != frame.width or dims.height != frame.height:
            self.dimensions = VideoTrackDimensions(frame.width, frame.height)
            self.emit("dimensions_changed", self)
        return frame


class LocalDataTrack(LocalTrack):
    """Messages (str or bytes) to every participant subscribed to this track.

    ``max_packet_life_time`` / ``max_retransmits`` / ``ordered`` come from
    :class:`rtcroom.options.LocalDataTrackOptions`; ``reliable`` is True when neither limit is
    set. Messages sent before any subscriber exists are dropped, as in twilio-video.js.
    """

    kind = TrackKind.DATA
    EVENTS: ClassVar[frozenset[str]] = frozenset({"stopped"})

    def __init__(self, options: LocalDataTrackOptions | dict[str, Any] | None = None) -> None:
        opts = LocalDataTrackOptions.from_dict(options or {})
        super().__init__(str(uuid.uuid4()), opts.name)
        self.max_packet_life_time = opts.max_packet_life_time
        self.max_retransmits = opts.max_retransmits
        self.ordered = opts.ordered
        self.reliable = opts.max_packet_life_time is None and opts.max_retransmits is None
        self._channels: list[Any] = []

    def enable(self, enabled: bool = True) -> LocalTrack:
        """Data tracks are always enabled."""
        raise TypeError("a LocalDataTrack cannot be disabled")

    def send(self, data: str | bytes) -> None:
        """Send one message to every subscriber."""
        if not isinstance(data, (str, bytes)):
            raise TypeError(
                f"LocalDataTrack.send: expected str or bytes, got {type(data).__name__}"
            )
        if self.is_stopped:
            raise RuntimeError(f"{self!r} is stopped")
        for channel in list(self._channels):
            if channel.readyState == "open":
                channel.send(data)

    def _add_data_channel(self, channel: Any) -> None:
        self._channels.append(channel)

    def _remove_data_channel(self, channel: Any) -> None:
        if channel in self._channels:
            self._channels.remove(channel)

    def _stop_source(self) -> None:
        self._channels.clear()
