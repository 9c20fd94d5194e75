"""What the SFU measures of one group-room participant's connection between two network-quality
updates, in the inputs :class:`~rtcroom.server.networkquality.NetworkQualityScorer` takes.

Per kind (audio, video):

- ``send`` (what the participant publishes, as the SFU receives it): fraction lost and jitter of
  its streams since the last update (the SFU's own receive statistics), the bitrate received
  (``actual``) against the bitrate the participant says it sent (``available``, from its
  ``network_quality`` reports; not judged without them);
- ``recv`` (what the SFU forwards to it): fraction lost and jitter from its RTCP receiver
  reports on each forwarded leg (switched-off legs left out), the loss counting only what was
  lost between the SFU and the participant (``Subscription.downlink_lost``: a forwarded stream
  keeps its publisher's gaps, which would otherwise lower every subscriber's level for one
  lossy publisher). That count is exact for audio, forwarded packet for packet; video is not
  (the SFU repairs its own losses with NACKs, late, and holds streams back until a keyframe),
  so the downlink's loss is judged on the audio legs, for both kinds, when the participant
  receives any audio. Bandwidth: the bitrate it says it received
  (``actual``, reported per kind; a 0 counts as no report, see ``_recv``) against what the
  SFU sent it (``available``);
- RTT, one per participant since one connection carries both directions: the SFU's own from
  the receiver reports answering its sender reports, else the participant's reported send RTT.

A participant's ``network_quality`` message has twilio-video.js's shape (``{send: {bitrate,
rtt}, recv: {bitrate, fractionLost, jitter}, audio: {send, recv}, video: {send, recv},
reportLevel, remoteReportLevel}``); :meth:`LinkMeter.reported` keeps the numbers it needs and
ignores what is missing or malformed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rtcroom.server.networkquality import measurements
from rtcroom.server.sfu import Subscription
from rtcroom.server.sfu.router import PublishedTrack
from rtcroom.signaling.networkquality import NetworkQualityAudioStats, NetworkQualityVideoStats

__all__ = ["LinkMeter", "Reported"]

REPORT_TTL = 5.0
"""Seconds a participant's report counts for (it sends one about every second)."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        return None
    return float(value)


@dataclass
class Reported:
    """Sums of what a participant reported since the last update, to average over it."""

    count: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, value: Any) -> None:
        number = _number(value)
        if number is not None:
            self.sums[name] = self.sums.get(name, 0.0) + number
            self.counts[name] = self.counts.get(name, 0) + 1

    def mean(self, name: str) -> float | None:
        n = self.counts.get(name)
        return None if not n else self.sums[name] / n


class LinkMeter:
    """One participant's measurements; call :meth:`measure` at each update."""

    def __init__(self) -> None:
        self._reported = Reported()
        self._last_report: float | None = None
        self._received: dict[tuple[str, int], tuple[int, int]] = {}
        """(track sid, SSRC) -> (packets expected, packets received) at the last update."""
        self._bytes: dict[int, int] = {}
        """id of a published track or a leg -> its byte count at the last update."""
        self._time: float | None = None
        self._next_received: dict[tuple[str, int], tuple[int, int]] = {}
        self._next_bytes: dict[int, int] = {}
        self._downlink: dict[int, tuple[int, int]] = {}
        """id of a leg -> (packets lost on the downlink, expected) at the last update."""

    def reported(self, message: Mapping[str, Any], now: float) -> None:
        """A ``network_quality`` message from the participant."""
        for kind in ("audio", "video"):
            media = message.get(kind)
            if not isinstance(media, Mapping):
                continue
            for direction in ("send", "recv"):
                stats = media.get(direction)
                if isinstance(stats, Mapping):
                    self._reported.add(f"{kind}.{direction}.bitrate", stats.get("bitrate"))
        send = message.get("send")
        if isinstance(send, Mapping):
            self._reported.add("rtt", send.get("rtt"))
        self._last_report = now

    def measure(self, now: float, published: Mapping[str, Iterable[PublishedTrack]],
                legs: Iterable[Subscription]) -> dict[str, Any]:
        """``audio`` / ``video`` :class:`NetworkQualityMediaStats` (None for a kind neither
        published nor received) since the last call, from the participant's ``published``
        tracks by kind and the ``legs`` the SFU forwards to it."""
        elapsed = None if self._time is None else now - self._time
        self._time = now
        reported, self._reported = self._reported, Reported()
        fresh = self._last_report is not None and now - self._last_report < REPORT_TTL
        legs = [leg for leg in legs if not leg.closed]
        rtts = [leg.rtt for leg in legs if leg.rtt is not None]
        active = [leg for leg in legs if not leg.paused and leg.forwarder is not None]
        audio = [leg for leg in active if leg.track.kind == "audio"]
        counts = {id(leg): (leg.downlink_lost, leg.downlink_expected) for leg in legs}
        lost = expected = 0
        for leg in audio or active:
            before = self._downlink.get(id(leg), (0, 0))
            now_lost, now_expected = counts[id(leg)]
            lost += max(now_lost - before[0], 0)
            expected += max(now_expected - before[1], 0)
        self._downlink = counts
        downlink_loss = lost / expected if expected else None
        rtt = max(rtts) if rtts else (reported.mean("rtt") if fresh else None)
        out: dict[str, Any] = {}
        for kind, media_type in (("audio", NetworkQualityAudioStats),
                                 ("video", NetworkQualityVideoStats)):
            tracks = list(published.get(kind, ()))
            kind_legs = [leg for leg in legs if leg.track.kind == kind]
            send = self._send(kind, tracks, elapsed, rtt, reported if fresh else None)
            recv = self._recv(kind, kind_legs, elapsed, rtt, downlink_loss,
                              reported if fresh else None)
            out[kind] = (None if send is None and recv is None
                         else media_type(send_stats=send, recv_stats=recv))
        # Counters of tracks and legs that are gone are forgotten.
        self._received, self._next_received = self._next_received, {}
        self._bytes, self._next_bytes = self._next_bytes, {}
        return out

    def _rate(self, key: int, total: int, elapsed: float | None) -> float | None:
        before = self._bytes.get(key)
        self._next_bytes[key] = total
        if before is None or not elapsed or elapsed <= 0:
            return None
        return 8 * max(total - before, 0) / elapsed

    def _send(self, kind: str, tracks: list[PublishedTrack], elapsed: float | None,
              rtt: float | None, reported: Reported | None) -> Any:
        if not tracks:
            return None
        expected = received = 0
        jitters = []
        rates = []
        for track in tracks:
            clock = track.codecs[0].clockRate
            for ssrc, stats in list(track.statistics.items()):
                if stats.max_seq is None:
                    continue
                now_counts = (stats.packets_expected, stats.packets_received)
                before = self._received.get((track.sid, ssrc), (0, 0))
                self._next_received[(track.sid, ssrc)] = now_counts
                expected += max(now_counts[0] - before[0], 0)
                received += max(now_counts[1] - before[1], 0)
                jitters.append(stats.jitter / clock)
            rate = self._rate(id(track), track.bytes_received, elapsed)
            if rate is not None:
                rates.append(rate)
        fraction_lost = (min(max(expected - received, 0) / expected, 1.0) if expected
                         else None)
        sent = reported.mean(f"{kind}.send.bitrate") if reported is not None else None
        return measurements(actual=sum(rates) if rates else None,
                            available=sent or None if rates else None,
                            fraction_lost=fraction_lost,
                            jitter=max(jitters) if jitters else None, rtt=rtt)

    def _recv(self, kind: str, legs: list[Subscription], elapsed: float | None,
              rtt: float | None, fraction_lost: float | None,
              reported: Reported | None) -> Any:
        if not legs:
            return None
        active = [leg for leg in legs if not leg.paused and leg.forwarder is not None]
        rates = [r for leg in legs
                 if (r := self._rate(id(leg), leg.bytes_sent, elapsed)) is not None]
        if not active:
            return measurements(rtt=rtt)
        clock = active[0].track.codecs[0].clockRate
        jitter = max(leg.jitter for leg in active) / clock
        # As for ``sent``, 0 is no measure: twilio-video.js 2.36 files its per-kind stats under
        # ``mediaType``, which Chromium's stats no longer carry, and reports 0 for every kind.
        got = (reported.mean(f"{kind}.recv.bitrate") or None) if reported is not None else None
        return measurements(actual=got, available=sum(rates) if got is not None and rates
                            else None, fraction_lost=fraction_lost, jitter=jitter, rtt=rtt)

