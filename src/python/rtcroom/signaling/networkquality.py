"""Network quality statistics: what ``network_quality_level_changed(level, stats)`` carries.

With verbosity ``minimal`` only the level (0-5) is reported and ``stats`` is None; ``moderate``
adds per-kind send/receive levels (:class:`NetworkQualityMediaStats`), ``detailed`` also the
measurements behind them (bandwidth, fraction lost, latency). Every measurement may be None
when the server did not report it.

:meth:`NetworkQualityStats.from_dict` reads the object in twilio-video.js's shape (``{level,
audio: {send, recv, sendStats: {bandwidth, fractionLost, latency}, recvStats}, video}``),
which is also the shape of a remote entry of the ``network_quality`` media-signaling message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NetworkQualityAudioStats",
    "NetworkQualityBandwidthStats",
    "NetworkQualityFractionLostStats",
    "NetworkQualityLatencyStats",
    "NetworkQualityMediaStats",
    "NetworkQualityRecvStats",
    "NetworkQualitySendOrRecvStats",
    "NetworkQualitySendStats",
    "NetworkQualityStats",
    "NetworkQualityVideoStats",
]


def _object(value: Any, path: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: expected an object, got {value!r}")
    return value


def _number(data: Mapping[str, Any], key: str, path: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{path}.{key}: expected a number, got {value!r}")
    return value


def _level(data: Mapping[str, Any], key: str, path: str) -> int | None:
    value = _number(data, key, path)
    if value is None:
        return None
    if value != int(value) or not 0 <= value <= 5:
        raise ValueError(f"{path}.{key}: expected a level 0-5, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class NetworkQualityBandwidthStats:
    """Bitrate in bps: ``actual`` used, ``available`` estimated, and the resulting ``level``."""

    actual: float | None = None
    available: float | None = None
    level: int | None = None


@dataclass(frozen=True)
class NetworkQualityFractionLostStats:
    """Fraction of packets lost (0..1) and the resulting ``level``."""

    fraction_lost: float | None = None
    level: int | None = None


@dataclass(frozen=True)
class NetworkQualityLatencyStats:
    """``jitter`` and ``rtt`` in seconds, and the resulting ``level``."""

    jitter: float | None = None
    rtt: float | None = None
    level: int | None = None


@dataclass(frozen=True)
class NetworkQualitySendOrRecvStats:
    """The measurements behind one direction's level."""

    bandwidth: NetworkQualityBandwidthStats | None = None
    fraction_lost: NetworkQualityFractionLostStats | None = None
    latency: NetworkQualityLatencyStats | None = None

    @classmethod
    def from_dict(cls, data: Any, path: str) -> NetworkQualitySendOrRecvStats | None:
        """Read ``{bandwidth, fractionLost, latency}``; None stays None."""
        obj = _object(data, path)
        if obj is None:
            return None
        bandwidth = _object(obj.get("bandwidth"), f"{path}.bandwidth")
        lost = _object(obj.get("fractionLost"), f"{path}.fractionLost")
        latency = _object(obj.get("latency"), f"{path}.latency")
        return cls(
            bandwidth=None
            if bandwidth is None
            else NetworkQualityBandwidthStats(
                _number(bandwidth, "actual", f"{path}.bandwidth"),
                _number(bandwidth, "available", f"{path}.bandwidth"),
                _level(bandwidth, "level", f"{path}.bandwidth"),
            ),
            fraction_lost=None
            if lost is None
            else NetworkQualityFractionLostStats(
                _number(lost, "fractionLost", f"{path}.fractionLost"),
                _level(lost, "level", f"{path}.fractionLost"),
            ),
            latency=None
            if latency is None
            else NetworkQualityLatencyStats(
                _number(latency, "jitter", f"{path}.latency"),
                _number(latency, "rtt", f"{path}.latency"),
                _level(latency, "level", f"{path}.latency"),
            ),
        )


class NetworkQualitySendStats(NetworkQualitySendOrRecvStats):
    """Measurements of the sending direction."""


class NetworkQualityRecvStats(NetworkQualitySendOrRecvStats):
    """Measurements of the receiving direction."""


@dataclass(frozen=True)
class NetworkQualityMediaStats:
    """Send and receive levels of one kind of media, with their measurements (if detailed)."""

    send: int | None = None
    recv: int | None = None
    send_stats: NetworkQualitySendOrRecvStats | None = None
    recv_stats: NetworkQualitySendOrRecvStats | None = None

    @classmethod
    def from_dict(cls, data: Any, path: str) -> NetworkQualityMediaStats | None:
        """Read ``{send, recv, sendStats, recvStats}``; None stays None."""
        obj = _object(data, path)
        if obj is None:
            return None
        return cls(
            send=_level(obj, "send", path),
            recv=_level(obj, "recv", path),
            send_stats=NetworkQualitySendStats.from_dict(obj.get("sendStats"), f"{path}.sendStats"),
            recv_stats=NetworkQualityRecvStats.from_dict(obj.get("recvStats"), f"{path}.recvStats"),
        )


class NetworkQualityAudioStats(NetworkQualityMediaStats):
    """Network quality of audio."""


class NetworkQualityVideoStats(NetworkQualityMediaStats):
    """Network quality of video."""


@dataclass(frozen=True)
class NetworkQualityStats:
    """A participant's network quality ``level`` and, when reported, per-kind details."""

    level: int
    audio: NetworkQualityMediaStats | None = None
    video: NetworkQualityMediaStats | None = None

    @classmethod
    def from_dict(cls, data: Any, path: str = "network_quality") -> NetworkQualityStats:
        """Read twilio-video.js's ``{level, audio, video}``; raises ValueError naming the path."""
        obj = _object(data, path)
        if obj is None:
            raise ValueError(f"{path}: expected an object, got None")
        level = _level(obj, "level", path)
        if level is None:
            raise ValueError(f"{path}.level: required")
        return cls(
            level=level,
            audio=NetworkQualityAudioStats.from_dict(obj.get("audio"), f"{path}.audio"),
            video=NetworkQualityVideoStats.from_dict(obj.get("video"), f"{path}.video"),
        )
