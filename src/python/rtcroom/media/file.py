"""Media files (anything PyAV/FFmpeg reads) as tracks, through aiortc's MediaPlayer.

MediaPlayer decodes in its own thread and releases frames at their presentation time, which is
what a published file needs; rtcroom only picks the tracks and checks the file first, so a bad
path fails with a clear error instead of an empty track.
"""

from __future__ import annotations

import os
from typing import Any

import av
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamTrack

__all__ = ["MediaFile"]


class MediaFile:
    """A media file opened for playback: ``.audio`` and ``.video`` are its tracks (or None).

    ``loop=True`` plays it again and again (the file must be seekable). ``format`` and
    ``options`` go to FFmpeg as for ``av.open``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        loop: bool = False,
        format: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        path = os.fspath(path)
        try:
            with av.open(path, format=format, options=options or {}) as probe:
                kinds = {s.type for s in probe.streams}
        except (av.FFmpegError, OSError) as exc:
            raise ValueError(f"cannot read media file {path!r}: {exc}") from exc
        if not kinds & {"audio", "video"}:
            raise ValueError(f"media file {path!r} has no audio or video stream")
        self.path = path
        self._player = MediaPlayer(path, format=format, options=options or {}, loop=loop)

    @property
    def audio(self) -> MediaStreamTrack | None:
        """The file's first audio stream as a track, or None."""
        return self._player.audio

    @property
    def video(self) -> MediaStreamTrack | None:
        """The file's first video stream as a track, or None."""
        return self._player.video

    def close(self) -> None:
        """Stop decoding and end both tracks."""
        for track in (self._player.audio, self._player.video):
            if track is not None:
                track.stop()
