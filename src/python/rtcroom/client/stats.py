"""``room.get_stats()``: one :class:`StatsReport` per peer connection, in the reference's shape.

Each report lists the local audio/video tracks being sent and the remote ones being received,
with the counters aiortc keeps (packets, bytes, loss, jitter, round-trip time) and what rtcroom's
own track objects measure (audio level, dimensions). A field aiortc does not measure is None.

For the network layer: :func:`collect_stats_report` builds a report from one aiortc
RTCPeerConnection, given the sid of each MediaStreamTrack id it sends or receives and the
rtcroom track objects behind them (for levels and sizes). Jitter is converted from RTP clock
units to seconds with the negotiated codec's clock rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.sdp import SessionDescription

from rtcroom.aiortc_ext.simulcast import simulcast_of
from rtcroom.options import VideoTrackDimensions

__all__ = [
    "LocalAudioTrackStats",
    "LocalTrackStats",
    "LocalVideoTrackStats",
    "NetworkQualityInputs",
    "RemoteAudioTrackStats",
    "RemoteTrackStats",
    "RemoteVideoTrackStats",
    "StatsReport",
    "TrackStats",
    "collect_stats_report",
]


@dataclass(frozen=True)
class TrackStats:
    """What every track's stats have: ids, time (ms since the epoch), SSRC, loss, codec."""

    track_id: str
    track_sid: str | None
    timestamp: float
    ssrc: int
    packets_lost: int | None = None
    codec: str | None = None


@dataclass(frozen=True)
class LocalTrackStats(TrackStats):
    """A sent track: bytes and packets sent, round-trip time in seconds (from RTCP)."""

    bytes_sent: int | None = None
    packets_sent: int | None = None
    round_trip_time: float | None = None


@dataclass(frozen=True)
class LocalAudioTrackStats(LocalTrackStats):
    """``audio_level``: the last sent frame's AudioLevel; ``jitter`` in seconds (from RTCP)."""

    audio_level: int | None = None
    jitter: float | None = None


@dataclass(frozen=True)
class LocalVideoTrackStats(LocalTrackStats):
    """``dimensions`` of the last sent frame (capture and sent sizes are the same here)."""

    dimensions: VideoTrackDimensions | None = None
    capture_dimensions: VideoTrackDimensions | None = None
    frame_rate: float | None = None


@dataclass(frozen=True)
class RemoteTrackStats(TrackStats):
    """A received track: packets received, ``jitter`` in seconds."""

    bytes_received: int | None = None
    packets_received: int | None = None
    jitter: float | None = None


@dataclass(frozen=True)
class RemoteAudioTrackStats(RemoteTrackStats):
    """``audio_level``: the last received frame's AudioLevel."""

    audio_level: int | None = None


@dataclass(frozen=True)
class RemoteVideoTrackStats(RemoteTrackStats):
    """``dimensions`` of the last received frame."""

    dimensions: VideoTrackDimensions | None = None
    frame_rate: float | None = None


@dataclass(frozen=True)
class StatsReport:
    """The tracks of one peer connection."""

    peer_connection_id: str
    local_audio_track_stats: list[LocalAudioTrackStats] = field(default_factory=list)
    local_video_track_stats: list[LocalVideoTrackStats] = field(default_factory=list)
    remote_audio_track_stats: list[RemoteAudioTrackStats] = field(default_factory=list)
    remote_video_track_stats: list[RemoteVideoTrackStats] = field(default_factory=list)


def _codecs_by_mid(pc: RTCPeerConnection) -> dict[str, tuple[str, int]]:
    description = pc.localDescription
    if description is None:
        return {}
    codecs: dict[str, tuple[str, int]] = {}
    for media in SessionDescription.parse(description.sdp).media:
        if media.rtp.muxId and media.rtp.codecs:
            codec = media.rtp.codecs[0]
            codecs[media.rtp.muxId] = (codec.mimeType.split("/", 1)[-1], codec.clockRate)
    return codecs


def _by_type(report: Mapping[str, Any], kind: str) -> list[Any]:
    return [s for s in report.values() if getattr(s, "type", None) == kind]


async def collect_stats_report(
    peer_connection_id: str,
    pc: RTCPeerConnection,
    track_sids: Mapping[str, str],
    tracks: Mapping[str, Any],
) -> StatsReport:
    """Build the StatsReport of ``pc``.

    ``track_sids`` maps a MediaStreamTrack id (the msid track id) to the track's sid;
    ``tracks`` maps it to the rtcroom track object (LocalAudioTrack, RemoteVideoTrack, ...)
    whose measurements complete the counters.
    """
    codecs = _codecs_by_mid(pc)
    report = StatsReport(peer_connection_id)
    for transceiver in pc.getTransceivers():
        codec, clock_rate = codecs.get(transceiver.mid or "", (None, 0))
        sender, receiver = transceiver.sender, transceiver.receiver
        if sender.track is not None:
            # A simulcast sender reports each layer it sends, with the layer's size.
            layered = simulcast_of(sender)
            stats = await (layered or sender).getStats()
            for out in _by_type(stats, "outbound-rtp"):
                remote = next(
                    (r for r in _by_type(stats, "remote-inbound-rtp") if r.ssrc == out.ssrc), None
                )
                track_id = sender.track.id
                common: dict[str, Any] = {
                    "track_id": track_id,
                    "track_sid": track_sids.get(track_id),
                    "timestamp": out.timestamp.timestamp() * 1000.0,
                    "ssrc": out.ssrc,
                    "packets_lost": remote.packetsLost if remote else None,
                    "codec": codec,
                    "bytes_sent": out.bytesSent,
                    "packets_sent": out.packetsSent,
                    "round_trip_time": remote.roundTripTime if remote else None,
                }
                track = tracks.get(track_id)
                if out.kind == "audio":
                    jitter = remote.jitter / clock_rate if remote and clock_rate else None
                    level = getattr(track, "audio_level", None)
                    report.local_audio_track_stats.append(
                        LocalAudioTrackStats(**common, audio_level=level, jitter=jitter)
                    )
                else:
                    dims = capture = getattr(track, "dimensions", None)
                    if layered is not None:
                        size = layered.dimensions[layered.ssrcs.index(out.ssrc)]
                        dims = VideoTrackDimensions(*size) if size else None
                    report.local_video_track_stats.append(
                        LocalVideoTrackStats(**common, dimensions=dims, capture_dimensions=capture)
                    )
        if receiver.track is not None:
            stats = await receiver.getStats()
            for inbound in _by_type(stats, "inbound-rtp"):
                track_id = receiver.track.id
                track = tracks.get(track_id)
                common = {
                    "track_id": track_id,
                    "track_sid": track_sids.get(track_id),
                    "timestamp": inbound.timestamp.timestamp() * 1000.0,
                    "ssrc": inbound.ssrc,
                    "packets_lost": inbound.packetsLost,
                    "codec": codec,
                    "packets_received": inbound.packetsReceived,
                    "jitter": inbound.jitter / clock_rate if clock_rate else None,
                }
                if inbound.kind == "audio":
                    report.remote_audio_track_stats.append(
                        RemoteAudioTrackStats(
                            **common, audio_level=getattr(track, "audio_level", None)
                        )
                    )
                else:
                    report.remote_video_track_stats.append(
                        RemoteVideoTrackStats(
                            **common, dimensions=getattr(track, "dimensions", None)
                        )
                    )
    return report


class NetworkQualityInputs:
    """What a participant reports on the ``network_quality`` channel about every second, in
    twilio-video.js's shape, from one aiortc peer connection's counters since the last call:
    ``send: {bitrate, rtt}``, ``recv: {bitrate, fractionLost, jitter}`` overall and per kind
    (``audio`` / ``video``), and ``ice: {send, recv}`` (bps on the transport). Bitrates in bps,
    RTT and jitter in seconds, fraction lost 0..1. aiortc counts no bytes per received stream, so
    ``recv.bitrate`` is reported only overall (the transport's)."""

    def __init__(self) -> None:
        self._previous: dict[str, tuple[float, int]] = {}
        self._losses: dict[str, tuple[int, int]] = {}

    def _rate(self, key: str, total: int, now: float) -> float | None:
        before = self._previous.get(key)
        self._previous[key] = (now, total)
        if before is None or now <= before[0]:
            return None
        return 8 * max(total - before[1], 0) / (now - before[0])

    async def next(self, pc: RTCPeerConnection, now: float) -> dict[str, Any]:
        codecs = _codecs_by_mid(pc)
        kinds: dict[str, dict[str, list[dict[str, float]]]] = {
            "audio": {"send": [], "recv": []}, "video": {"send": [], "recv": []}}
        transport_stats = None
        for transceiver in pc.getTransceivers():
            kind = transceiver.kind
            if kind not in kinds or transceiver.stopped:
                continue
            clock_rate = codecs.get(transceiver.mid or "", (None, 0))[1]
            if transceiver.sender.track is not None:
                stats = await transceiver.sender.getStats()
                for out in _by_type(stats, "outbound-rtp"):
                    remote = next((r for r in _by_type(stats, "remote-inbound-rtp")
                                   if r.ssrc == out.ssrc), None)
                    entry: dict[str, float] = {}
                    rate = self._rate(f"send-{out.ssrc}", out.bytesSent, now)
                    if rate is not None:
                        entry["bitrate"] = rate
                    if remote is not None and remote.roundTripTime is not None:
                        entry["rtt"] = remote.roundTripTime
                    kinds[kind]["send"].append(entry)
                transport_stats = transport_stats or _by_type(stats, "transport")
            if transceiver.receiver.track is not None:
                stats = await transceiver.receiver.getStats()
                for inbound in _by_type(stats, "inbound-rtp"):
                    entry = {}
                    key = f"recv-{inbound.ssrc}"
                    lost, received = self._losses.get(key, (0, 0))
                    self._losses[key] = (inbound.packetsLost, inbound.packetsReceived)
                    d_lost = max(inbound.packetsLost - lost, 0)
                    d_received = max(inbound.packetsReceived - received, 0)
                    if d_lost + d_received:
                        entry["fractionLost"] = d_lost / (d_lost + d_received)
                    if clock_rate:
                        entry["jitter"] = inbound.jitter / clock_rate
                    kinds[kind]["recv"].append(entry)
                transport_stats = transport_stats or _by_type(stats, "transport")
        message: dict[str, Any] = {"ice": {}}
        if transport_stats:
            t = transport_stats[0]
            for name, total in (("send", t.bytesSent), ("recv", t.bytesReceived)):
                rate = self._rate(f"ice-{name}", total, now)
                if rate is not None:
                    message["ice"][name] = rate
        for kind, directions in kinds.items():
            message[kind] = {"send": _summarize(directions["send"], "bitrate", ("rtt",)),
                             "recv": _summarize(directions["recv"], "bitrate",
                                                ("fractionLost", "jitter"))}
        sends = kinds["audio"]["send"] + kinds["video"]["send"]
        recvs = kinds["audio"]["recv"] + kinds["video"]["recv"]
        message["send"] = _summarize(sends, "bitrate", ("rtt",))
        message["recv"] = _summarize(recvs, "bitrate", ("fractionLost", "jitter"))
        if "recv" in message["ice"]:
            message["recv"]["bitrate"] = message["ice"]["recv"]
        return message


def _summarize(entries: list[dict[str, float]], summed: str,
               averaged: tuple[str, ...]) -> dict[str, float]:
    """twilio-video.js's summary of several streams: bitrates add up, the rest is averaged."""
    out: dict[str, float] = {}
    values = [e[summed] for e in entries if summed in e]
    if values:
        out[summed] = sum(values)
    for name in averaged:
        values = [e[name] for e in entries if name in e]
        if values:
            out[name] = sum(values) / len(values)
    return out
