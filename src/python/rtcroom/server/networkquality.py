"""Network quality levels (0-5) per participant, computed on the server, and what each client is
told about itself and the others.

Inputs. For each kind (audio, video) and direction, the SFU measures what it sees of a
participant's media: ``send`` is what the participant publishes (loss and jitter of the RTP the
SFU receives, RTT of that leg, bitrate received vs the bitrate the publisher's encodings should
produce), ``recv`` what it receives from the SFU (fraction lost, jitter and RTT from its RTCP
receiver reports, bitrate forwarded vs the bitrate its subscriptions would take on an unconstrained
link). They are passed in the client's own stats types: a
:class:`~rtcroom.signaling.networkquality.NetworkQualityMediaStats` per kind whose ``send_stats`` /
``recv_stats`` hold the measurements (levels left None; :func:`measurements` builds one). A
direction left None (nothing published / subscribed) does not count, and a measurement left None
is not judged. For media whose rate legitimately collapses (audio with DTX during silence) leave
the bandwidth out, and expect nothing (``available`` 0 or None) of a disabled or switched-off
track: a low rate there is not a network problem.

Formula. LiveKit's open connection-quality scorer, on a 0-100 score per measurement:

- latency: effective delay ``d = rtt / 2 + 2 x jitter`` (ms); score ``100 - d / 40`` up to
  160 ms, ``100 - (d - 120) / 10`` above (1 ms loopback: 100; 300 ms: 82; 500 ms: 62);
- fraction lost: ``100 - loss % x weight``, weight 8 for audio (Opus conceals loss well) and 10
  for video (2 % -> 84 / 80; 5 % -> 60 / 50);
- bandwidth: ``100 - 20 ln(available / actual)`` capped at 100: getting half the expected bitrate
  costs 14, a third 22, a tenth 46 (``available`` is the bitrate expected, ``actual`` achieved);
- loss and latency scores stop at 1, since media still flows; a score of 0 ("broken") is kept
  for media that is expected but does not arrive at all (actual bitrate 0, or everything lost),
  and for a participant that is reconnecting.

rtcroom's thresholds (Twilio publishes the scale, not its thresholds): level 5 (excellent) from
a score of 85, 4 from 70, 3 from 55, 2 from 40, 1 above 0, 0 at 0. So a clean loopback link is
5, 2 % loss is 4, 5 % loss is 3 (audio) or 2 (video), 10 % video loss or a 1 s effective delay
(2 s RTT) is 1, and half the expected bitrate still reads 5 (encoders ramp up, and simulcast
layers differ).

Smoothing: each measurement's score moves towards the new value by 40 % per ``INTERVAL`` (5 s)
when it rises and by 80 % when it falls (LiveKit's factors, scaled to the time since the last
update, so the caller may recompute every second or every five): quality drops are shown within
one update, recovery takes several (from 50, a clean link needs three 5 s updates to read 5
again). A broken measurement drops to 0 at once and climbs back from there.

Levels: a direction's level is the lowest of its three measurements' levels, a kind's ``send`` /
``recv`` levels are its directions' (5 when absent), and the participant's level is the lowest of
the four. A participant with nothing published or subscribed is 5.

What each client is told (:func:`build_report`, twilio-video.js's ``network_quality`` media
signaling reply, :meth:`NetworkQualityReport.to_message`): about itself at its ``local``
verbosity (``none`` acts as ``minimal``, as in twilio-video.js), about every other participant at
its ``remote`` verbosity: ``none`` nothing, ``minimal`` the level, ``moderate`` also the audio and
video send / recv levels, ``detailed`` also the measurements behind them with their levels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from rtcroom.constants import NetworkQualityVerbosity
from rtcroom.options import NetworkQualityConfiguration
from rtcroom.signaling.networkquality import (
    NetworkQualityAudioStats,
    NetworkQualityBandwidthStats,
    NetworkQualityFractionLostStats,
    NetworkQualityLatencyStats,
    NetworkQualityMediaStats,
    NetworkQualityRecvStats,
    NetworkQualitySendOrRecvStats,
    NetworkQualitySendStats,
    NetworkQualityStats,
    NetworkQualityVideoStats,
)

__all__ = [
    "FALL",
    "INTERVAL",
    "LEVEL_SCORES",
    "LOSS_WEIGHT",
    "RISE",
    "NetworkQualityReport",
    "NetworkQualityScorer",
    "bandwidth_score",
    "build_report",
    "fraction_lost_score",
    "latency_score",
    "measurements",
    "score_level",
    "trim",
]

Kind = Literal["audio", "video"]
Direction = Literal["send", "recv"]

INTERVAL: Final = 5.0
RISE: Final = 0.4
FALL: Final = 0.8
LOSS_WEIGHT: Final[Mapping[Kind, float]] = {"audio": 8.0, "video": 10.0}
# Lowest score of levels 5, 4, 3, 2; any score above 0 is at least 1.
LEVEL_SCORES: Final = (85.0, 70.0, 55.0, 40.0)
_MAX: Final = 100.0
_MEDIA_TYPES: Final[Mapping[Kind, type[NetworkQualityMediaStats]]] = {
    "audio": NetworkQualityAudioStats, "video": NetworkQualityVideoStats}
_FLOOR: Final = 1.0  # loss and latency alone never mean "broken"


def score_level(score: float) -> int:
    """The level 0-5 of a 0-100 score (see the module's thresholds)."""
    for level, threshold in zip((5, 4, 3, 2), LEVEL_SCORES):
        if score >= threshold:
            return level
    return 1 if score > 0 else 0


def latency_score(jitter: float | None, rtt: float | None) -> float:
    """Score of ``jitter`` and ``rtt`` (seconds; None counts as 0)."""
    delay = ((rtt or 0.0) / 2 + 2 * (jitter or 0.0)) * 1000
    effect = delay / 40 if delay <= 160 else (delay - 120) / 10
    return max(_MAX - effect, _FLOOR)


def fraction_lost_score(fraction_lost: float, kind: Kind) -> float:
    """Score of a fraction lost (0..1) for ``kind``; 1.0 (nothing arrives) is broken: 0."""
    if fraction_lost >= 1:
        return 0.0
    return max(_MAX - fraction_lost * 100 * LOSS_WEIGHT[kind], _FLOOR)


def bandwidth_score(actual: float, available: float | None) -> float:
    """Score of the bitrate achieved vs expected (bps); nothing expected is 100, nothing
    achieved of something expected is broken: 0."""
    if not available:
        return _MAX
    if actual <= 0:
        return 0.0
    return max(min(_MAX - 20 * math.log(available / actual), _MAX), _FLOOR)


def measurements(*, actual: float | None = None, available: float | None = None,
                 fraction_lost: float | None = None, jitter: float | None = None,
                 rtt: float | None = None) -> NetworkQualitySendOrRecvStats:
    """One direction's measurements (bps, 0..1, seconds) as the scorer takes them."""
    return NetworkQualitySendOrRecvStats(
        bandwidth=None if actual is None and available is None
        else NetworkQualityBandwidthStats(actual, available),
        fraction_lost=None if fraction_lost is None
        else NetworkQualityFractionLostStats(fraction_lost),
        latency=None if jitter is None and rtt is None else NetworkQualityLatencyStats(jitter, rtt),
    )


def _check(value: float | None, path: str, upper: float | None = None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0 <= value <= (math.inf if upper is None else upper)):
        bound = f"0..{upper:g}" if upper is not None else ">= 0"
        raise ValueError(f"{path}: expected a number {bound}, got {value!r}")


_Component = Literal["bandwidth", "fraction_lost", "latency"]


class NetworkQualityScorer:
    """One participant's smoothed network quality; call :meth:`update` every few seconds."""

    def __init__(self) -> None:
        self._scores: dict[tuple[Kind, Direction, _Component], float] = {}
        self._last: float | None = None
        self._stats: NetworkQualityStats | None = None

    @property
    def stats(self) -> NetworkQualityStats | None:
        """The last full result (every level and measurement), None before the first update."""
        return self._stats

    @property
    def level(self) -> int | None:
        return None if self._stats is None else self._stats.level

    def update(self, now: float, *, audio: NetworkQualityMediaStats | None = None,
               video: NetworkQualityMediaStats | None = None,
               reconnecting: bool = False) -> NetworkQualityStats:
        """New measurements at ``now`` (seconds); returns the full stats (detailed verbosity).
        ``reconnecting``: the participant's connection is down: every level is 0, and every
        measurement climbs back from 0 afterwards."""
        elapsed = INTERVAL if self._last is None else max(now - self._last, 0.0)
        self._last = now
        seen: set[tuple[Kind, Direction, _Component]] = set()
        kinds: dict[Kind, NetworkQualityMediaStats] = {}
        inputs: dict[Kind, NetworkQualityMediaStats | None] = {"audio": audio, "video": video}
        for kind, media in inputs.items():
            send = self._direction(kind, "send", None if media is None else media.send_stats,
                                   elapsed, reconnecting, seen)
            recv = self._direction(kind, "recv", None if media is None else media.recv_stats,
                                   elapsed, reconnecting, seen)
            kinds[kind] = _MEDIA_TYPES[kind](
                send=0 if reconnecting else _level_of(send),
                recv=0 if reconnecting else _level_of(recv),
                send_stats=None if send is None else NetworkQualitySendStats(
                    send.bandwidth, send.fraction_lost, send.latency),
                recv_stats=None if recv is None else NetworkQualityRecvStats(
                    recv.bandwidth, recv.fraction_lost, recv.latency))
        for key in set(self._scores) - seen:
            del self._scores[key]  # a track that comes back starts afresh
        overall = min(level for media in kinds.values() for level in (media.send, media.recv)
                      if level is not None)
        self._stats = NetworkQualityStats(overall, kinds["audio"], kinds["video"])
        return self._stats

    def _direction(self, kind: Kind, direction: Direction,
                   stats: NetworkQualitySendOrRecvStats | None, elapsed: float,
                   reconnecting: bool, seen: set[tuple[Kind, Direction, _Component]],
                   ) -> NetworkQualitySendOrRecvStats | None:
        if stats is None:
            return None
        path = f"{kind}.{direction}_stats"

        def smoothed(component: _Component, raw: float) -> int:
            key = (kind, direction, component)
            seen.add(key)
            if reconnecting:
                raw = 0.0
            old = self._scores.get(key, _MAX)
            if raw <= 0:
                new = 0.0
            else:
                factor = FALL if raw < old else RISE
                weight = 1 - (1 - factor) ** (elapsed / INTERVAL)
                new = old + weight * (raw - old)
            self._scores[key] = new
            return score_level(new)

        bandwidth = fraction_lost = latency = None
        if (b := stats.bandwidth) is not None:
            _check(b.actual, f"{path}.bandwidth.actual")
            _check(b.available, f"{path}.bandwidth.available")
            bandwidth = NetworkQualityBandwidthStats(
                b.actual, b.available, None if b.actual is None
                else smoothed("bandwidth", bandwidth_score(b.actual, b.available)))
        if (f := stats.fraction_lost) is not None and f.fraction_lost is not None:
            _check(f.fraction_lost, f"{path}.fraction_lost", 1)
            fraction_lost = NetworkQualityFractionLostStats(
                f.fraction_lost, smoothed("fraction_lost", fraction_lost_score(f.fraction_lost,
                                                                                kind)))
        if (lat := stats.latency) is not None:
            _check(lat.jitter, f"{path}.latency.jitter")
            _check(lat.rtt, f"{path}.latency.rtt")
            latency = NetworkQualityLatencyStats(
                lat.jitter, lat.rtt, smoothed("latency", latency_score(lat.jitter, lat.rtt)))
        return NetworkQualitySendOrRecvStats(bandwidth, fraction_lost, latency)


def _level_of(stats: NetworkQualitySendOrRecvStats | None) -> int:
    if stats is None:
        return 5
    levels = [part.level for part in (stats.bandwidth, stats.fraction_lost, stats.latency)
              if part is not None and part.level is not None]
    return min(levels, default=5)


def trim(stats: NetworkQualityStats, verbosity: NetworkQualityVerbosity | int,
         ) -> NetworkQualityStats | None:
    """``stats`` cut to what ``verbosity`` shows: None for none, the level for minimal, per-kind
    levels for moderate, everything for detailed."""
    verbosity = NetworkQualityVerbosity(verbosity)
    if verbosity is NetworkQualityVerbosity.NONE:
        return None
    if verbosity is NetworkQualityVerbosity.MINIMAL:
        return NetworkQualityStats(stats.level)
    if verbosity is NetworkQualityVerbosity.DETAILED:
        return stats

    def levels(media: NetworkQualityMediaStats | None) -> NetworkQualityMediaStats | None:
        return None if media is None else type(media)(send=media.send, recv=media.recv)

    return NetworkQualityStats(stats.level, levels(stats.audio), levels(stats.video))


@dataclass(frozen=True)
class NetworkQualityReport:
    """What one client is told: ``local`` about itself, ``remotes`` (sid -> stats) about the
    others, each cut to the verbosity it asked for."""

    local: NetworkQualityStats
    local_verbosity: NetworkQualityVerbosity
    remotes: Mapping[str, NetworkQualityStats] = field(default_factory=dict)

    def to_message(self) -> dict[str, Any]:
        """twilio-video.js's ``network_quality`` reply: ``local`` is the bare level at minimal
        verbosity, an object above it; each remote is ``{sid, level, audio?, video?}``."""
        local: Any = (self.local.level if self.local_verbosity <= NetworkQualityVerbosity.MINIMAL
                      else _stats_dict(self.local))
        return {"type": "network_quality", "local": local,
                "remotes": [{"sid": sid, **_stats_dict(stats)}
                            for sid, stats in self.remotes.items()]}


def build_report(recipient: str, configuration: NetworkQualityConfiguration,
                 stats: Mapping[str, NetworkQualityStats]) -> NetworkQualityReport | None:
    """The report for ``recipient`` given every participant's full stats (sid -> stats, from
    their scorers); None while the recipient's own level is not known yet."""
    own = stats.get(recipient)
    if own is None:
        return None
    local_verbosity = max(NetworkQualityVerbosity(configuration.local),
                          NetworkQualityVerbosity.MINIMAL)
    local = trim(own, local_verbosity)
    assert local is not None  # at least minimal
    remotes: dict[str, NetworkQualityStats] = {}
    for sid, theirs in stats.items():
        if sid != recipient and (cut := trim(theirs, configuration.remote)) is not None:
            remotes[sid] = cut
    return NetworkQualityReport(local, local_verbosity, remotes)


def _stats_dict(stats: NetworkQualityStats) -> dict[str, Any]:
    out: dict[str, Any] = {"level": stats.level}
    for name, media in (("audio", stats.audio), ("video", stats.video)):
        if media is not None:
            out[name] = _media_dict(media)
    return out


def _media_dict(media: NetworkQualityMediaStats) -> dict[str, Any]:
    out: dict[str, Any] = {"send": media.send, "recv": media.recv}
    for name, stats in (("sendStats", media.send_stats), ("recvStats", media.recv_stats)):
        if stats is not None:
            out[name] = _direction_dict(stats)
    return out


def _direction_dict(stats: NetworkQualitySendOrRecvStats) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if (b := stats.bandwidth) is not None:
        out["bandwidth"] = {"actual": b.actual, "available": b.available, "level": b.level}
    if (f := stats.fraction_lost) is not None:
        out["fractionLost"] = {"fractionLost": f.fraction_lost, "level": f.level}
    if (lat := stats.latency) is not None:
        out["latency"] = {"jitter": lat.jitter, "rtt": lat.rtt, "level": lat.level}
    return out

