"""The enumerated values of the Twilio Video API, as Python enums.

String-valued enums subclass ``str`` and integer-valued ones ``int``, so a plain ``"grid"`` or
``1`` compares equal to the member and is accepted wherever the enum is expected (options and
methods coerce it with :meth:`coerce`, which names what was wrong and what is allowed).
"""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import Any, TypeVar


__all__ = [
    "AudioCodec",
    "BandwidthProfileMode",
    "ClientTrackSwitchOffControl",
    "EventListenerGroup",
    "EventListenerLevel",
    "LogLevel",
    "NetworkQualityLevel",
    "NetworkQualityVerbosity",
    "ParticipantState",
    "RoomState",
    "TrackKind",
    "TrackPriority",
    "TrackSwitchOffMode",
    "VideoCodec",
    "VideoContentPreferencesMode",
]

_S = TypeVar("_S", bound="_StrEnum")
_I = TypeVar("_I", bound="_IntEnum")


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def coerce(cls: type[_S], value: Any, path: str) -> _S:
        """``value`` as a member, or a ValueError/TypeError saying which values ``path`` allows."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise TypeError(f"{path}: expected a string ({_allowed(cls)}), got {value!r}")
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{path}: {value!r} is not one of {_allowed(cls)}") from None


class _IntEnum(IntEnum):
    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def coerce(cls: type[_I], value: Any, path: str) -> _I:
        """``value`` as a member, or a ValueError/TypeError saying which values ``path`` allows."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{path}: expected an integer ({_allowed(cls)}), got {value!r}")
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{path}: {value!r} is not one of {_allowed(cls)}") from None


def _allowed(cls: type[Enum]) -> str:
    return ", ".join(str(member.value) for member in cls)


class AudioCodec(_StrEnum):
    """Names of the audio codecs a participant may prefer."""

    ISAC = "isac"
    OPUS = "opus"
    PCMA = "PCMA"
    PCMU = "PCMU"


class VideoCodec(_StrEnum):
    """Names of the video codecs a participant may prefer."""

    H264 = "H264"
    VP8 = "VP8"
    VP9 = "VP9"


class BandwidthProfileMode(_StrEnum):
    """How track priorities turn into downlink bandwidth shares in group rooms.

    ``grid``: equal shares, lowest priority switched off first when short.
    ``collaboration``: shares proportional to the render dimensions of each priority.
    ``presentation``: higher priorities served fully before lower ones get anything.
    """

    GRID = "grid"
    COLLABORATION = "collaboration"
    PRESENTATION = "presentation"


class TrackSwitchOffMode(_StrEnum):
    """When remote video tracks are switched off under bandwidth pressure.

    ``detected``: once congestion is seen; ``predicted``: as soon as the bandwidth estimate
    predicts it; ``disabled``: never, quality is lowered instead.
    """

    DETECTED = "detected"
    PREDICTED = "predicted"
    DISABLED = "disabled"


class ClientTrackSwitchOffControl(_StrEnum):
    """Who asks for remote video to be switched on and off.

    ``auto``: nobody on the client side (a browser would go by element visibility, which a
    Python process does not have; the server decides alone). ``manual``: the application, with
    ``RemoteVideoTrack.switch_on()`` / ``switch_off()``.
    """

    AUTO = "auto"
    MANUAL = "manual"


class VideoContentPreferencesMode(_StrEnum):
    """Who tells the server the size remote video is shown at.

    ``auto``: nobody on the client side (no video elements here). ``manual``: the application,
    with ``RemoteVideoTrack.set_content_preferences(render_dimensions=...)``.
    """

    AUTO = "auto"
    MANUAL = "manual"


class TrackPriority(_StrEnum):
    """A track's priority for bandwidth allocation (``Track.Priority`` in the reference)."""

    LOW = "low"
    STANDARD = "standard"
    HIGH = "high"


class TrackKind(_StrEnum):
    """What a track carries."""

    AUDIO = "audio"
    VIDEO = "video"
    DATA = "data"


class EventListenerGroup(_StrEnum):
    """Groups of EventListenerEvents."""

    SIGNALING = "signaling"


class EventListenerLevel(_StrEnum):
    """Severity of an EventListenerEvent."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogLevel(_StrEnum):
    """Logging verbosity of a component; ``off`` silences it."""

    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"
    OFF = "off"


class NetworkQualityVerbosity(_IntEnum):
    """How much network quality information is reported for a participant.

    ``none`` (0) reports nothing (for the local participant it acts as ``minimal``);
    ``minimal`` (1) the level only; ``moderate`` (2) also audio/video levels;
    ``detailed`` (3) also the media stats behind them.
    """

    NONE = 0
    MINIMAL = 1
    MODERATE = 2
    DETAILED = 3


class NetworkQualityLevel(_IntEnum):
    """Network quality on a 0 (unusable) to 5 (excellent) scale."""

    LEVEL_0 = 0
    LEVEL_1 = 1
    LEVEL_2 = 2
    LEVEL_3 = 3
    LEVEL_4 = 4
    LEVEL_5 = 5


class RoomState(_StrEnum):
    """A room's connection state, as seen by the local participant."""

    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"


class ParticipantState(_StrEnum):
    """A participant's connection state."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"
