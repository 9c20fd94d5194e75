"""``create_local_tracks()`` and friends: synthetic local tracks, like a browser's fake devices.

Audio is a 440 Hz tone (48 kHz mono unless ``sample_rate``/``channel_count`` say otherwise);
video is a moving test pattern (640x480 at 30 fps unless ``width``/``height``/``frame_rate``
say otherwise). The options are :class:`rtcroom.options.CreateLocalTracksOptions` /
:class:`rtcroom.options.CreateLocalTrackOptions` or their camelCase dicts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rtcroom.client.localtrack import LocalAudioTrack, LocalTrack, LocalVideoTrack
from rtcroom.log import apply_log_levels
from rtcroom.options import CreateLocalTrackOptions, CreateLocalTracksOptions

__all__ = ["create_local_audio_track", "create_local_tracks", "create_local_video_track"]


def create_local_audio_track(
    options: CreateLocalTrackOptions | dict[str, Any] | None = None, **kwargs: Any
) -> LocalAudioTrack:
    """A synthetic LocalAudioTrack (a tone); options as a dict, an object or keywords."""
    opts = CreateLocalTrackOptions.from_dict({**_as_dict(options), **kwargs})
    if opts.log_level is not None:
        apply_log_levels(opts.log_level)
    return LocalAudioTrack.tone(
        sample_rate=opts.sample_rate or 48000, channels=opts.channel_count or 1, name=opts.name
    )


def create_local_video_track(
    options: CreateLocalTrackOptions | dict[str, Any] | None = None, **kwargs: Any
) -> LocalVideoTrack:
    """A synthetic LocalVideoTrack (a moving test pattern); options as for the audio one."""
    opts = CreateLocalTrackOptions.from_dict({**_as_dict(options), **kwargs})
    if opts.log_level is not None:
        apply_log_levels(opts.log_level)
    return LocalVideoTrack.test_pattern(
        opts.width or 640, opts.height or 480, opts.frame_rate or 30, name=opts.name
    )


def create_local_tracks(
    options: CreateLocalTracksOptions | dict[str, Any] | None = None, **kwargs: Any
) -> list[LocalTrack]:
    """Synthetic audio and/or video tracks: ``create_local_tracks(audio=True, video=False)``.

    ``audio``/``video`` take True, False, or the options of that track.
    """
    opts = CreateLocalTracksOptions.from_dict({**_as_dict(options), **kwargs})
    if opts.log_level is not None:
        apply_log_levels(opts.log_level)
    tracks: list[LocalTrack] = []
    if opts.audio is not False:
        tracks.append(create_local_audio_track(None if opts.audio is True else opts.audio))
    if opts.video is not False:
        tracks.append(create_local_video_track(None if opts.video is True else opts.video))
    return tracks


def _as_dict(options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if isinstance(options, dict):
        return options
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
