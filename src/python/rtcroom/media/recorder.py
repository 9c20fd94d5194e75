"""Write tracks to a file: ``async with Recorder("out.mp4", track1, track2): ...``.

A thin layer over aiortc's MediaRecorder (which encodes with PyAV): it accepts rtcroom's
remote and local tracks as well as plain MediaStreamTracks, reading each rtcroom track through
its own tap so recording does not take frames away from ``frames()`` or from sending.
The container comes from the file name (``.mp4``, ``.webm``, ``.mkv``, ``.wav``, ``.ogg``, ...)
unless ``format`` is given.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamTrack

__all__ = ["Recorder"]


def _media_stream_track(track: Any) -> MediaStreamTrack:
    create = getattr(track, "create_media_stream_track", None)
    if callable(create):
        tap: MediaStreamTrack = create()
        return tap
    if isinstance(track, MediaStreamTrack):
        return track
    raise TypeError(f"cannot record {track!r}: not a track")


class Recorder:
    """Records audio and video tracks into one file until :meth:`stop`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *tracks: Any,
        format: str | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self._recorder = MediaRecorder(self.path, format=format, options=options or {})
        self._taps: list[MediaStreamTrack] = []
        self._started = False
        for track in tracks:
            self.add_track(track)

    def add_track(self, track: Any) -> None:
        """Record ``track`` too; only before :meth:`start`."""
        if self._started:
            raise RuntimeError("Recorder.add_track: the recording has already started")
        tap = _media_stream_track(track)
        self._taps.append(tap)
        self._recorder.addTrack(tap)

    async def start(self) -> None:
        """Begin writing."""
        if not self._taps:
            raise RuntimeError("Recorder.start: no tracks to record")
        self._started = True
        await self._recorder.start()

    async def stop(self) -> None:
        """Finish the file and release the tracks' taps."""
        await self._recorder.stop()
        for tap in self._taps:
            tap.stop()

    async def __aenter__(self) -> Recorder:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
