"""Media sources and sinks that need no devices.

- :class:`ToneTrack`, :class:`TestPatternTrack`: synthetic audio and video (fake devices).
- :class:`AudioPushTrack`, :class:`VideoPushTrack`: media written from numpy arrays.
- :class:`MediaFile`: a file's audio and video as tracks.
- :class:`Recorder`: tracks written to a file.
- :class:`Fanout`: one track read by many consumers (used by rtcroom's track objects).

All tracks here are aiortc MediaStreamTracks yielding PyAV frames. Logging goes to the
``rtcroom.media`` logger.
"""

from rtcroom.media.fanout import Fanout, FanoutTrack
from rtcroom.media.file import MediaFile
from rtcroom.media.frames import black_like, frame_audio_level, silence_like
from rtcroom.media.push import AudioPushTrack, VideoPushTrack
from rtcroom.media.recorder import Recorder
from rtcroom.media.synthetic import TestPatternTrack, ToneTrack

__all__ = [
    "AudioPushTrack",
    "Fanout",
    "FanoutTrack",
    "MediaFile",
    "Recorder",
    "TestPatternTrack",
    "ToneTrack",
    "VideoPushTrack",
    "black_like",
    "frame_audio_level",
    "silence_like",
]
