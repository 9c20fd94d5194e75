"""Typed option objects: every options object of the Twilio Video API, in snake_case.

Each class is a frozen dataclass that checks and normalizes its fields when built, so an
invalid value fails where it is written, with a message naming the option path and what is
allowed, e.g. ``bandwidth_profile.video.mode: 'gird' is not one of grid, collaboration,
presentation``. Enum fields accept plain strings/ints; nested options accept plain dicts.

``Cls.from_dict(data)`` also accepts twilio-video.js's camelCase keys, so a JSON options object
written for the browser SDK can be reused as is::

    ConnectOptions.from_dict({"name": "standup", "bandwidthProfile": {"video": {"mode": "grid"}}})

Unknown keys are refused (``ValueError`` naming the key and the allowed ones). To change an
option, use ``dataclasses.replace(options, field=value)``, which checks again.

Some options cannot mean anything to a Python process and are accepted as documented no-ops:
``insights`` (Twilio's telemetry gateway), ``workaround_webkit_bug_180748`` (a Safari bug), and
the browser-only MediaTrackConstraints of :class:`CreateLocalTrackOptions`.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import MISSING, dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar, TypeVar

from aiortc import RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from rtcroom.constants import (
    AudioCodec,
    BandwidthProfileMode,
    ClientTrackSwitchOffControl,
    LogLevel,
    NetworkQualityVerbosity,
    TrackPriority,
    TrackSwitchOffMode,
    VideoCodec,
    VideoContentPreferencesMode,
)

__all__ = [
    "AudioCodecSettings",
    "BandwidthProfileOptions",
    "ConnectOptions",
    "CreateLocalTrackOptions",
    "CreateLocalTracksOptions",
    "EncodingParameters",
    "KEEP",
    "Keep",
    "LocalDataTrackOptions",
    "LocalTrackOptions",
    "LocalTrackPublishOptions",
    "LogLevels",
    "NetworkQualityConfiguration",
    "OpusCodecSettings",
    "VP8CodecSettings",
    "VideoBandwidthProfileOptions",
    "VideoCodecSettings",
    "VideoRenderDimensions",
    "VideoTrackDimensions",
]

Check = Callable[[Any, str], Any]
_O = TypeVar("_O", bound="_Options")

# The option path of the object being built, so nested errors name their full path.
_path_prefix: ContextVar[str] = ContextVar("rtcroom_option_path", default="")
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _user_stacklevel() -> int:
    """The warnings stacklevel of the first frame outside this module and dataclass code."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and (
        frame.f_code.co_filename == __file__
        or (frame.f_code.co_name == "__init__" and isinstance(frame.f_locals.get("self"), _Options))
    ):
        frame, level = frame.f_back, level + 1
    return level


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _snake(name: str) -> str:
    return _CAMEL_HUMP.sub("_", name).lower()


def _opt(check: Check | None = None, default: Any = None, factory: Any = MISSING) -> Any:
    """A dataclass field whose value passes through ``check(value, path)`` when built."""
    metadata = {"check": check} if check else {}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class _Options:
    _aliases: ClassVar[Mapping[str, str]] = {}

    def __post_init__(self) -> None:
        prefix = _path_prefix.get()
        for f in fields(self):
            check = f.metadata.get("check")
            if check is not None:
                object.__setattr__(
                    self, f.name, check(getattr(self, f.name), _join(prefix, f.name))
                )
        self._check_together(prefix)

    def _check_together(self, prefix: str) -> None:
        """Rules that involve more than one field."""

    @classmethod
    def from_dict(cls: type[_O], data: Any, path: str = "") -> _O:
        """Build from a dict with snake_case or twilio-video.js camelCase keys."""
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            where = path or cls.__name__
            raise TypeError(f"{where}: expected an object (dict), got {data!r}")
        names = [f.name for f in fields(cls) if f.init]
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            name = cls._aliases.get(key, key if key in names else _snake(str(key)))
            if name not in names:
                raise ValueError(
                    f"{_join(path, str(key))}: unknown option; allowed: {', '.join(names)}"
                )
            kwargs[name] = value
        for f in fields(cls):
            if (
                f.init
                and f.name not in kwargs
                and f.default is MISSING
                and f.default_factory is MISSING
            ):
                raise TypeError(f"{_join(path, f.name)}: required")
        token = _path_prefix.set(path)
        try:
            return cls(**kwargs)
        finally:
            _path_prefix.reset(token)


# --- checks: each takes (value, path) and returns the normalized value or raises ----------------


def _nullable(check: Check) -> Check:
    def run(value: Any, path: str) -> Any:
        return None if value is None else check(value, path)

    return run


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{path}: expected true or false, got {value!r}")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{path}: expected a string, got {value!r}")
    return value


INT_OPTION_RANGE = (-(1 << 31), (1 << 31) - 1)
"""Every integer option lies in this range (a signed 32-bit integer), whatever its own bounds:
larger values mean nothing to an encoder or the allocator and would overflow native code."""

MAX_VIDEO_SIDE = 16384
"""The largest width or height an option may give (VP8's limit, and the allocator's)."""


def _int(minimum: int | None = None, maximum: int | None = None) -> Check:
    low = INT_OPTION_RANGE[0] if minimum is None else minimum
    high = INT_OPTION_RANGE[1] if maximum is None else maximum

    def run(value: Any, path: str) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{path}: expected an integer, got {value!r}")
        if value < low:
            raise ValueError(f"{path}: {value} is less than {low}")
        if value > high:
            raise ValueError(f"{path}: {value} is more than {high}")
        return value

    return run


def _enum(enum: Any) -> Check:
    return enum.coerce  # type: ignore[no-any-return]


def _options(cls: type[_Options]) -> Check:
    return cls.from_dict


def _bool_or(cls: type[_Options]) -> Check:
    def run(value: Any, path: str) -> Any:
        return value if isinstance(value, bool) else cls.from_dict(value, path)

    return run


def _tuple_of(check: Check) -> Check:
    def run(value: Any, path: str) -> tuple[Any, ...]:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise TypeError(f"{path}: expected a list, got {value!r}")
        return tuple(check(item, f"{path}[{i}]") for i, item in enumerate(value))

    return run


# --- dimensions and bandwidth profiles ----------------------------------------------------------


@dataclass(frozen=True)
class VideoTrackDimensions(_Options):
    """A width and height in pixels (``VideoTrack.Dimensions``)."""

    width: int = field(metadata={"check": _int(-MAX_VIDEO_SIDE, MAX_VIDEO_SIDE)})
    height: int = field(metadata={"check": _int(-MAX_VIDEO_SIDE, MAX_VIDEO_SIDE)})


def _dimensions(width: int, height: int) -> Any:
    return _opt(_options(VideoTrackDimensions), factory=lambda: VideoTrackDimensions(width, height))


@dataclass(frozen=True)
class VideoRenderDimensions(_Options):
    """Render sizes per track priority, an input to bandwidth allocation (not a resize).

    0 or a negative size asks for the lowest resolution available.
    """

    high: VideoTrackDimensions = _dimensions(1280, 720)
    standard: VideoTrackDimensions = _dimensions(640, 480)
    low: VideoTrackDimensions = _dimensions(176, 144)


@dataclass(frozen=True)
class VideoBandwidthProfileOptions(_Options):
    """How downlink bandwidth is shared among subscribed video tracks in a group room.

    ``dominant_speaker_priority``: the least priority the dominant speaker's video gets
    (default ``standard``; needs ``dominant_speaker``). ``max_subscription_bitrate``: downlink
    video cap in bps (None: no cap). ``max_tracks``: most video tracks left switched on
    (None, 0 or negative: no limit). ``mode`` defaults to ``grid``; ``render_dimensions``
    (None: :class:`VideoRenderDimensions`' defaults); ``track_switch_off_mode`` to
    ``predicted``.

    ``client_track_switch_off_control`` and ``content_preferences_mode`` (``auto`` or
    ``manual``, see their enums) are twilio-video.js 2.x's successors of ``max_tracks`` and
    ``render_dimensions``: giving a successor together with the option it replaces is an error.
    """

    client_track_switch_off_control: ClientTrackSwitchOffControl | None = _opt(
        _nullable(_enum(ClientTrackSwitchOffControl))
    )
    content_preferences_mode: VideoContentPreferencesMode | None = _opt(
        _nullable(_enum(VideoContentPreferencesMode))
    )
    dominant_speaker_priority: TrackPriority = _opt(_enum(TrackPriority), TrackPriority.STANDARD)
    max_subscription_bitrate: int | None = _opt(_nullable(_int(0)))
    max_tracks: int | None = _opt(_nullable(_int()))
    mode: BandwidthProfileMode = _opt(_enum(BandwidthProfileMode), BandwidthProfileMode.GRID)
    render_dimensions: VideoRenderDimensions | None = _opt(
        _nullable(_options(VideoRenderDimensions))
    )
    track_switch_off_mode: TrackSwitchOffMode = _opt(
        _enum(TrackSwitchOffMode), TrackSwitchOffMode.PREDICTED
    )

    def _check_together(self, prefix: str) -> None:
        for old, new in (
            ("max_tracks", "client_track_switch_off_control"),
            ("render_dimensions", "content_preferences_mode"),
        ):
            if getattr(self, old) is not None and getattr(self, new) is not None:
                raise TypeError(
                    f"{_join(prefix, old)}: deprecated, and not allowed with {new}; use {new}"
                )


@dataclass(frozen=True)
class BandwidthProfileOptions(_Options):
    """Downlink bandwidth sharing in group rooms; it has no effect in peer-to-peer rooms."""

    video: VideoBandwidthProfileOptions | None = _opt(
        _nullable(_options(VideoBandwidthProfileOptions))
    )


# --- network quality and logging ----------------------------------------------------------------


@dataclass(frozen=True)
class NetworkQualityConfiguration(_Options):
    """Network quality verbosity for the local participant and for remote ones."""

    local: NetworkQualityVerbosity = _opt(
        _enum(NetworkQualityVerbosity), NetworkQualityVerbosity.MINIMAL
    )
    remote: NetworkQualityVerbosity = _opt(
        _enum(NetworkQualityVerbosity), NetworkQualityVerbosity.NONE
    )


@dataclass(frozen=True)
class LogLevels(_Options):
    """A log level per component; each maps to the ``rtcroom.<component>`` logger."""

    default: LogLevel = _opt(_enum(LogLevel), LogLevel.WARN)
    media: LogLevel = _opt(_enum(LogLevel), LogLevel.WARN)
    signaling: LogLevel = _opt(_enum(LogLevel), LogLevel.WARN)
    webrtc: LogLevel = _opt(_enum(LogLevel), LogLevel.WARN)

    @classmethod
    def of(cls, value: Any, path: str = "log_level") -> LogLevels:
        """A LogLevel (the same for every component), a dict of them, or LogLevels as is."""
        if isinstance(value, (str, LogLevel)):
            level = LogLevel.coerce(value, path)
            return cls(level, level, level, level)
        return cls.from_dict(value, path)


def _log_levels(value: Any, path: str) -> LogLevels:
    return LogLevels.of(value, path)


# --- local tracks -------------------------------------------------------------------------------

# Browser MediaTrackConstraints that mean nothing without a capture device: accepted, kept in
# `constraints`, and not acted on.
_BROWSER_CONSTRAINTS = frozenset(
    {
        "aspectRatio",
        "autoGainControl",
        "backgroundBlur",
        "deviceId",
        "displaySurface",
        "echoCancellation",
        "facingMode",
        "groupId",
        "latency",
        "noiseSuppression",
        "resizeMode",
        "sampleSize",
        "suppressLocalAudioPlayback",
    }
)


def _constraint_int(value: Any, path: str) -> int:
    """A number, or a ConstrainULong object from which ``exact`` or ``ideal`` is taken."""
    if isinstance(value, Mapping):
        for key in ("exact", "ideal", "max", "min"):
            if key in value:
                return _constraint_int(value[key], f"{path}.{key}")
        raise ValueError(f"{path}: expected a number or {{exact|ideal|max|min: number}}")
    result: int = _int(1)(value, path)
    return result


@dataclass(frozen=True)
class LocalTrackOptions(_Options):
    """``name``: the track's name (default: its id). ``log_level``: for the media component."""

    name: str | None = _opt(_nullable(_str))
    log_level: LogLevels | None = _opt(_nullable(_log_levels))


@dataclass(frozen=True)
class CreateLocalTrackOptions(_Options):
    """Options for one synthetic local track (see :func:`rtcroom.create_local_tracks`).

    The shape of the synthetic source comes from ``width``, ``height``, ``frame_rate`` (video)
    and ``sample_rate``, ``channel_count`` (audio); each takes a number or a
    ``{"exact"|"ideal": n}`` constraint. Other browser MediaTrackConstraints (deviceId,
    echoCancellation, ...) are kept in ``constraints`` and otherwise ignored, as is
    ``workaround_webkit_bug_180748``.
    """

    _aliases: ClassVar[Mapping[str, str]] = {
        "workaroundWebKitBug180748": "workaround_webkit_bug_180748"
    }

    name: str | None = _opt(_nullable(_str))
    log_level: LogLevels | None = _opt(_nullable(_log_levels))
    width: int | None = _opt(_nullable(_constraint_int))
    height: int | None = _opt(_nullable(_constraint_int))
    frame_rate: int | None = _opt(_nullable(_constraint_int))
    sample_rate: int | None = _opt(_nullable(_constraint_int))
    channel_count: int | None = _opt(_nullable(_constraint_int))
    workaround_webkit_bug_180748: bool = _opt(_bool, False)
    constraints: Mapping[str, Any] = _opt(factory=dict)

    @classmethod
    def from_dict(cls, data: Any, path: str = "") -> CreateLocalTrackOptions:
        """As for every option class; browser MediaTrackConstraints go to ``constraints``."""
        if isinstance(data, Mapping):
            extra = {k: v for k, v in data.items() if k in _BROWSER_CONSTRAINTS}
            if extra:
                data = {k: v for k, v in data.items() if k not in extra}
                data["constraints"] = {**data.get("constraints", {}), **extra}
        return super().from_dict(data, path)


def _track_options(value: Any, path: str) -> bool | CreateLocalTrackOptions:
    return _bool_or(CreateLocalTrackOptions)(value, path)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class CreateLocalTracksOptions(_Options):
    """Which synthetic tracks :func:`rtcroom.create_local_tracks` makes, and how."""

    audio: bool | CreateLocalTrackOptions = _opt(_track_options, True)
    video: bool | CreateLocalTrackOptions = _opt(_track_options, True)
    log_level: LogLevels | None = _opt(_nullable(_log_levels))


@dataclass(frozen=True)
class LocalDataTrackOptions(_Options):
    """Delivery of a LocalDataTrack's messages.

    ``max_packet_life_time`` (ms) or ``max_retransmits`` bounds retries (at most one of the
    two); ``ordered=False`` lets messages arrive out of order.
    """

    name: str | None = _opt(_nullable(_str))
    log_level: LogLevels | None = _opt(_nullable(_log_levels))
    max_packet_life_time: int | None = _opt(_nullable(_int(0)))
    max_retransmits: int | None = _opt(_nullable(_int(0)))
    ordered: bool = _opt(_bool, True)

    def _check_together(self, prefix: str) -> None:
        if self.max_packet_life_time is not None and self.max_retransmits is not None:
            raise ValueError(
                f"{_join(prefix, 'max_packet_life_time')}, {_join(prefix, 'max_retransmits')}: "
                "set at most one of the two"
            )


@dataclass(frozen=True)
class LocalTrackPublishOptions(_Options):
    """``priority`` of a published track in bandwidth allocation (default ``standard``)."""

    priority: TrackPriority = _opt(_enum(TrackPriority), TrackPriority.STANDARD)
    name: str | None = _opt(_nullable(_str))


class Keep(Enum):
    """The type of :data:`KEEP`."""

    KEEP = "keep"


KEEP = Keep.KEEP
"""An EncodingParameters value meaning: leave this cap as it is."""


def _bitrate_or_keep(value: Any, path: str) -> int | Keep:
    if value is KEEP:
        return KEEP
    result: int = _int(0)(0 if value is None else value, path)
    return result


@dataclass(frozen=True)
class EncodingParameters(_Options):
    """Outgoing bitrate caps in bps, as passed to ``LocalParticipant.set_parameters``.

    A cap left out (the default, :data:`KEEP`) stays as it is; ``None`` or ``0`` removes it
    (stored as 0); a positive number sets it.
    """

    max_audio_bitrate: int | Keep = _opt(_bitrate_or_keep, Keep.KEEP)
    max_video_bitrate: int | Keep = _opt(_bitrate_or_keep, Keep.KEEP)


# --- codecs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioCodecSettings(_Options):
    """A preferred audio codec."""

    _aliases: ClassVar[Mapping[str, str]] = {"name": "codec"}
    codec: AudioCodec = _opt(_enum(AudioCodec), AudioCodec.OPUS)


@dataclass(frozen=True)
class OpusCodecSettings(AudioCodecSettings):
    """Opus, with ``dtx`` (discontinuous transmission: during silence one packet per 400 ms
    instead of 50 a second; default on)."""

    dtx: bool = _opt(_bool, True)

    def _check_together(self, prefix: str) -> None:
        if self.codec != AudioCodec.OPUS:
            raise ValueError(f"{_join(prefix, 'codec')}: OpusCodecSettings is for opus only")


@dataclass(frozen=True)
class VideoCodecSettings(_Options):
    """A preferred video codec."""

    _aliases: ClassVar[Mapping[str, str]] = {"name": "codec"}
    codec: VideoCodec = _opt(_enum(VideoCodec), VideoCodec.VP8)


@dataclass(frozen=True)
class VP8CodecSettings(VideoCodecSettings):
    """VP8, with ``simulcast`` (three qualities sent at once; default off)."""

    simulcast: bool = _opt(_bool, False)

    def _check_together(self, prefix: str) -> None:
        if self.codec != VideoCodec.VP8:
            raise ValueError(f"{_join(prefix, 'codec')}: VP8CodecSettings is for VP8 only")


def _audio_codec(value: Any, path: str) -> AudioCodecSettings:
    if isinstance(value, AudioCodecSettings):
        return value
    if isinstance(value, Mapping):
        codec = value.get("codec", value.get("name"))
        opus = codec == AudioCodec.OPUS and "dtx" in value
        return (OpusCodecSettings if opus else AudioCodecSettings).from_dict(value, path)
    return AudioCodecSettings(AudioCodec.coerce(value, path))


def _video_codec(value: Any, path: str) -> VideoCodecSettings:
    if isinstance(value, VideoCodecSettings):
        return value
    if isinstance(value, Mapping):
        codec = value.get("codec", value.get("name"))
        vp8 = codec == VideoCodec.VP8 and "simulcast" in value
        return (VP8CodecSettings if vp8 else VideoCodecSettings).from_dict(value, path)
    return VideoCodecSettings(VideoCodec.coerce(value, path))


# --- connect ------------------------------------------------------------------------------------


def _ice_server(value: Any, path: str) -> RTCIceServer:
    if isinstance(value, RTCIceServer):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"{path}: expected an RTCIceServer or {{urls, username, credential}}")
    unknown = set(value) - {"urls", "username", "credential", "credentialType"}
    if unknown:
        raise ValueError(
            f"{path}.{sorted(unknown)[0]}: unknown option; allowed: urls, username, credential"
        )
    urls = value.get("urls")
    if isinstance(urls, str):
        urls_ok = bool(urls)
    else:
        urls_ok = (
            isinstance(urls, Sequence)
            and bool(urls)
            and all(isinstance(u, str) and u for u in urls)
        )
    if not urls_ok:
        raise ValueError(f"{path}.urls: expected a URL string or a list of them, got {urls!r}")
    for key in ("username", "credential"):
        _nullable(_str)(value.get(key), f"{path}.{key}")
    return RTCIceServer(
        urls=urls if isinstance(urls, str) else list(urls),  # type: ignore[arg-type]
        username=value.get("username"),
        credential=value.get("credential"),
    )


def _ice_transport_policy(value: Any, path: str) -> RTCIceTransportPolicy:
    if isinstance(value, RTCIceTransportPolicy):
        return value
    try:
        return RTCIceTransportPolicy(value)
    except ValueError:
        raise ValueError(f"{path}: {value!r} is not one of all, relay") from None


def _network_quality(value: Any, path: str) -> NetworkQualityConfiguration | None:
    if value is False or value is None:
        return None
    if value is True:
        return NetworkQualityConfiguration()
    return NetworkQualityConfiguration.from_dict(value, path)


def _event_listener(value: Any, path: str) -> Any:
    if value is None or callable(value) or callable(getattr(value, "emit", None)):
        return value
    raise TypeError(f"{path}: expected a callable or an object with emit(), got {value!r}")


def _track(value: Any, path: str) -> Any:
    # Imported here: the client package imports this module.
    from aiortc.mediastreams import MediaStreamTrack

    from rtcroom.client.localtrack import LocalTrack

    if isinstance(value, (LocalTrack, MediaStreamTrack)):
        return value
    raise TypeError(f"{path}: expected a LocalTrack or an aiortc MediaStreamTrack, got {value!r}")


@dataclass(frozen=True)
class ConnectOptions(_Options):
    """Everything ``rtcroom.connect()`` accepts besides the token and server URL.

    Fields follow twilio-video.js's ConnectOptions in snake_case:

    - ``audio`` / ``video``: when ``tracks`` is not given, whether to publish a synthetic tone
      / moving test pattern (a :class:`CreateLocalTrackOptions` shapes it). Unlike the browser
      SDK the default is False: a Python process has no microphone or camera to default to.
    - ``automatic_subscription``: subscribe to every remote track (default True).
    - ``bandwidth_profile``: :class:`BandwidthProfileOptions` (group rooms).
    - ``dominant_speaker``: enable ``dominant_speaker_changed`` events (group rooms).
    - ``enable_dscp``: mark outgoing media packets (EF audio, AF41 video); ``dscp_tagging`` is
      its deprecated alias and warns.
    - ``event_listener``: a callable (or an object with ``emit("event", e)``) receiving
      :class:`rtcroom.events.EventListenerEvent` for signaling connection states.
    - ``ice_servers``, ``ice_transport_policy`` (``all``/``relay``): override the ICE setup.
    - ``insights``: accepted, no effect (there is no telemetry gateway).
    - ``max_audio_bitrate`` / ``max_video_bitrate``: outgoing caps in bps (None/0: none).
    - ``name``: the room to join. ``region``: preferred signaling region (default ``gll``).
    - ``network_quality``: True (local minimal, remote none) or a
      :class:`NetworkQualityConfiguration`; stored as None when off.
    - ``preferred_audio_codecs`` / ``preferred_video_codecs``: codec names or settings,
      normalized to settings objects.
    - ``log_level``: a LogLevel or :class:`LogLevels`, normalized to LogLevels; None (the
      default) leaves the application's logging configuration alone.
    - ``tracks``: LocalTracks or aiortc MediaStreamTracks to publish on joining.
    """

    audio: bool | CreateLocalTrackOptions = _opt(_track_options, False)
    automatic_subscription: bool = _opt(_bool, True)
    bandwidth_profile: BandwidthProfileOptions | None = _opt(
        _nullable(_options(BandwidthProfileOptions))
    )
    dominant_speaker: bool = _opt(_bool, False)
    dscp_tagging: bool | None = _opt(_nullable(_bool))
    enable_dscp: bool = _opt(_bool, False)
    event_listener: Any = _opt(_event_listener)
    ice_servers: tuple[RTCIceServer, ...] | None = _opt(_nullable(_tuple_of(_ice_server)))
    ice_transport_policy: RTCIceTransportPolicy = _opt(
        _ice_transport_policy, RTCIceTransportPolicy.ALL
    )
    insights: bool = _opt(_bool, False)
    max_audio_bitrate: int | None = _opt(_nullable(_int(0)))
    max_video_bitrate: int | None = _opt(_nullable(_int(0)))
    name: str | None = _opt(_nullable(_str))
    network_quality: NetworkQualityConfiguration | None = _opt(_network_quality)
    region: str = _opt(_str, "gll")
    preferred_audio_codecs: tuple[AudioCodecSettings, ...] = _opt(
        _tuple_of(_audio_codec), factory=tuple
    )
    preferred_video_codecs: tuple[VideoCodecSettings, ...] = _opt(
        _tuple_of(_video_codec), factory=tuple
    )
    log_level: LogLevels | None = _opt(_nullable(_log_levels))
    tracks: tuple[Any, ...] | None = _opt(_nullable(_tuple_of(_track)))
    video: bool | CreateLocalTrackOptions = _opt(_track_options, False)

    def _check_together(self, prefix: str) -> None:
        if self.dscp_tagging is not None:
            warnings.warn(
                f"{_join(prefix, 'dscp_tagging')} is deprecated; use enable_dscp",
                DeprecationWarning,
                stacklevel=_user_stacklevel(),
            )
            object.__setattr__(self, "enable_dscp", self.dscp_tagging)
            object.__setattr__(self, "dscp_tagging", None)
