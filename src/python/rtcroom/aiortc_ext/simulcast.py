"""VP8 simulcast from Python: one video track encoded at several resolutions (PyAV/libvpx through
aiortc's Vp8Encoder) and sent as one stream per layer on one transceiver, announced the way
browsers do without rids: extra `a=ssrc` lines and an `a=ssrc-group:SIM` (lowest layer first).

aiortc sends one stream per sender and has no simulcast, so the layers' packets are written with
`aiortc_ext.rtp.write_rtp` on a sender carrying a `ForwardedTrack`, and the offer's SDP is
amended with `announce` before it goes to the other side.

A bitrate cap (`set_max_bitrate`, for ``max_video_bitrate``) applies to the sum of the layers:
the top layers are dropped (no longer encoded nor sent) until the ones left can have at least
`MIN_SHARE` of their default bitrates within the cap, and those are scaled down together, as
libwebrtc turns simulcast streams off when the bitrate cannot hold them at their minimums.
Layer 0 is always sent. A NACK for a layer's packets is answered from a per-layer history.
Statistics (`getStats`, the shape of aiortc's sender's) have one
outbound-rtp entry per layer sent, and a remote-inbound-rtp per layer from the receiver
reports about it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections.abc import Sequence
from typing import Any

from aiortc import (
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCStatsReport,
    clock,
    rtcrtpsender,
)
from aiortc.codecs import is_rtx
from aiortc.codecs.base import Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpParameters
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
)
from av import VideoFrame

from rtcroom.aiortc_ext.encoder import cap_encoder
from rtcroom.aiortc_ext.rtp import (
    ForwardedTrack,
    attach_sender,
    claim_sender_ssrcs,
    negotiated_codecs,
    negotiated_header_extensions,
    sender_ssrc,
    write_rtp,
)

logger = logging.getLogger("rtcroom.webrtc")

DEFAULT_SCALES = (4, 2, 1)
"""Each layer's resolution is the source's divided by its scale, lowest layer first."""
DEFAULT_BITRATES = (250_000, 600_000, 1_500_000)
HISTORY_SIZE = 128
"""Packets kept per layer to answer NACKs (as aiortc's sender keeps)."""
MIN_SHARE = 0.3
"""Under a cap, a layer is sent only if it can have at least this share of its default bitrate
(as do all below it)."""

_senders: weakref.WeakKeyDictionary[RTCRtpSender, SimulcastSender] = weakref.WeakKeyDictionary()


def simulcast_of(sender: RTCRtpSender) -> SimulcastSender | None:
    """The SimulcastSender writing on `sender`, if any."""
    return _senders.get(sender)


def layer_bitrates(defaults: Sequence[int], cap: int | None) -> list[int]:
    """The bitrates of the layers to send under `cap` (bits/s, None or 0: no cap), lowest
    first: a prefix of the layers, at least one."""
    if not cap:
        return list(defaults)
    count = 1
    while (count < len(defaults)
           and MIN_SHARE * sum(defaults[:count + 1]) <= cap):
        count += 1
    kept = defaults[:count]
    scale = min(1.0, cap / sum(kept))
    return [max(1, int(b * scale)) for b in kept]


class SimulcastSender:
    """Encodes `source` into len(scales) VP8 layers and sends them on `transceiver`, whose sender
    must carry a `ForwardedTrack`. Layer 0 uses the sender's own SSRC; a PLI or FIR for a
    layer's SSRC makes that layer's next frame a keyframe."""

    def __init__(self, transceiver: RTCRtpTransceiver, source: MediaStreamTrack,
                 scales: Sequence[int] = DEFAULT_SCALES,
                 bitrates: Sequence[int] = DEFAULT_BITRATES) -> None:
        if not isinstance(transceiver.sender.track, ForwardedTrack):
            raise TypeError("the simulcast transceiver must send a ForwardedTrack")
        if len(scales) != len(bitrates) or not scales:
            raise ValueError("one bitrate per simulcast layer is needed")
        self.transceiver = transceiver
        self.source = source
        self.scales = list(scales)
        self.ssrcs = [sender_ssrc(transceiver.sender)] + [
            random.randrange(1, 1 << 32) for _ in scales[1:]]
        self.bitrates = list(bitrates)
        self.encoders: list[Encoder] = []
        for bitrate in bitrates:
            encoder = Vp8Encoder()
            encoder.target_bitrate = bitrate
            self.encoders.append(encoder)
        self.active = len(scales)
        """How many layers are sent (the lowest ones): fewer under a tight cap."""
        self._cap: int | None = None
        self.dimensions: list[tuple[int, int] | None] = [None] * len(scales)
        """Each layer's last encoded picture size."""
        self.frames_encoded = [0] * len(scales)
        self.keyframes_requested = [0] * len(scales)
        self.retransmitted = [0] * len(scales)
        self._history: list[list[bytes | None]] = [[None] * HISTORY_SIZE for _ in scales]
        self._force_keyframe = [True] * len(scales)
        self._sequence = [random.randrange(1 << 15) for _ in scales]
        self._timestamp_base = random.randrange(1 << 32)
        self._task: asyncio.Task[None] | None = None
        self._reports: dict[int, RtcpSenderInfo] = {}
        """Per layer: when its last frame was sent (NTP) with which RTP timestamp, and totals,
        as aiortc's own sender reports them."""
        self._packets = [0] * len(scales)
        self._octets = [0] * len(scales)
        self._remote: dict[int, RTCRemoteInboundRtpStreamStats] = {}
        attach_sender(transceiver.sender, self._on_rtcp, self._reports.copy)
        _senders[transceiver.sender] = self

    @property
    def started(self) -> bool:
        return self._task is not None

    def set_max_bitrate(self, cap: int | None) -> None:
        """Keep the layers' sum at or below `cap` bits/s (None or 0: each layer at its default),
        dropping top layers as `layer_bitrates` says; a layer sent again starts at a keyframe."""
        self._cap = cap
        wanted = layer_bitrates(self.bitrates, cap)
        for layer, bitrate in enumerate(wanted):
            cap_encoder(self.encoders[layer], bitrate if cap else None)
            if layer >= self.active:
                self._force_keyframe[layer] = True
        self.active = len(wanted)

    def announce(self, sdp: str) -> str:
        """`sdp` (an offer or answer of this transceiver's connection) with the other layers'
        SSRCs and the SIM group added to this transceiver's media section."""
        lines = sdp.split("\r\n")
        primary = f"a=ssrc:{self.ssrcs[0]} "
        media_start = next(i for i, line in enumerate(lines)
                           if line == f"a=mid:{self.transceiver.mid}")
        own = [i for i, line in enumerate(lines) if i > media_start and line.startswith(primary)]
        if not own:
            raise ValueError(f"no a=ssrc lines for {self.ssrcs[0]} in the description")
        attributes = [lines[i][len(primary):] for i in own]
        extra = [f"a=ssrc:{ssrc} {attr}" for ssrc in self.ssrcs[1:] for attr in attributes]
        extra.append("a=ssrc-group:SIM " + " ".join(str(s) for s in self.ssrcs))
        at = own[-1] + 1
        return "\r\n".join(lines[:at] + extra + lines[at:])

    def start(self) -> None:
        """Start encoding and sending; call once the connection is established."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def close(self) -> None:
        """Stop encoding now and end the sender's track (its sending loop ends with it); the
        caller stops the source."""
        if self._task is not None:
            self._task.cancel()
        track = self.transceiver.sender.track
        if track is not None:
            track.stop()

    async def getStats(self) -> RTCStatsReport:
        """Per layer being sent: outbound-rtp (packets and bytes written) and remote-inbound-rtp
        (from the receiver reports), as aiortc's sender reports its one stream."""
        report = RTCStatsReport()
        now = clock.current_datetime()
        sender = self.transceiver.sender
        for layer, ssrc in enumerate(self.ssrcs[:self.active]):
            if not self._packets[layer]:
                continue
            report.add(RTCOutboundRtpStreamStats(
                timestamp=now, type="outbound-rtp", id=f"outbound-rtp_{ssrc}", ssrc=ssrc,
                kind="video", transportId=sender.transport._stats_id,
                packetsSent=self._packets[layer], bytesSent=self._octets[layer],
                trackId=str(id(sender.track))))
            remote = self._remote.get(ssrc)
            if remote is not None:
                report.add(remote)
        return report

    async def _on_rtcp(self, packet: AnyRtcpPacket) -> None:
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc in self.ssrcs:
                    self._remote[report.ssrc] = self._remote_stats(report)
        if (isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK
                and packet.media_ssrc in self.ssrcs):
            self._retransmit(self.ssrcs.index(packet.media_ssrc), packet.lost)
        if (isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR)
                and packet.media_ssrc in self.ssrcs):
            layer = self.ssrcs.index(packet.media_ssrc)
            self._force_keyframe[layer] = True
            self.keyframes_requested[layer] += 1

    def _retransmit(self, layer: int, lost: list[int]) -> None:
        """Send the packets a NACK names again, as they were (same SSRC and sequence number: no
        RTX stream is announced for the layers)."""
        history = self._history[layer]
        for sequence in lost:
            data = history[sequence % HISTORY_SIZE]
            if data is not None and int.from_bytes(data[2:4], "big") == sequence:
                write_rtp(self.transceiver.sender.transport, data)
                self.retransmitted[layer] += 1

    def _remote_stats(self, report: RtcpReceiverInfo) -> RTCRemoteInboundRtpStreamStats:
        rtt = None
        if report.lsr:
            # RFC 3550 6.4.1: now less the reported SR's time less the receiver's delay, in
            # the middle 32 bits of NTP time.
            middle = (clock.current_ntp_time() >> 16) & 0xFFFFFFFF
            rtt = max(0, (middle - report.lsr - report.dlsr) & 0xFFFFFFFF) / 65536
        return RTCRemoteInboundRtpStreamStats(
            timestamp=clock.current_datetime(), type="remote-inbound-rtp",
            id=f"remote-inbound-rtp_{report.ssrc}", ssrc=report.ssrc, kind="video",
            transportId=self.transceiver.sender.transport._stats_id,
            packetsReceived=max(0, self._packets[self.ssrcs.index(report.ssrc)]
                                - report.packets_lost),
            packetsLost=report.packets_lost, jitter=report.jitter,
            # None before a report answers one of ours, as aiortc's own sender reports it.
            roundTripTime=rtt,  # type: ignore[arg-type]
            fractionLost=report.fraction_lost)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        sender = self.transceiver.sender
        claim_sender_ssrcs(sender, self.ssrcs[1:])
        codec = next((c for c in negotiated_codecs(self.transceiver) if not is_rtx(c)), None)
        if codec is None or codec.payloadType is None:
            return  # not negotiated (the m-line was refused): nothing to send
        if codec.mimeType.lower() != "video/vp8":
            self._single_stream(codec)
        payload_type = codec.payloadType
        extensions = HeaderExtensionsMap()
        extensions.configure(RTCRtpParameters(
            headerExtensions=negotiated_header_extensions(self.transceiver)))
        try:
            while True:
                frame = await self.source.recv()
                if not isinstance(frame, VideoFrame):
                    raise TypeError("a simulcast source must yield video frames")
                for layer, scale in enumerate(self.scales[:self.active]):
                    scaled = frame if scale == 1 else frame.reformat(
                        width=frame.width // scale, height=frame.height // scale)
                    self.dimensions[layer] = (scaled.width, scaled.height)
                    force, self._force_keyframe[layer] = self._force_keyframe[layer], False
                    payloads, timestamp = await loop.run_in_executor(
                        None, self.encoders[layer].encode, scaled, force)
                    self.frames_encoded[layer] += 1
                    self._send(sender, payload_type, layer, payloads,
                               (self._timestamp_base + timestamp) & 0xFFFFFFFF, extensions)
        except MediaStreamError:
            pass

    def _single_stream(self, codec: RTCRtpCodecParameters) -> None:
        """Send the source at full size in `codec`, on layer 0's SSRC only: the other end
        answered another codec first (a VP9 preference ahead of VP8, a room without VP8), and,
        as twilio-video.js reverts simulcast where the answer's codec is not VP8, there is
        no simulcast of it."""
        logger.info("VP8 simulcast: the other end answered %s; one stream is sent",
                    codec.mimeType)
        encoder = rtcrtpsender.get_encoder(codec)
        self.scales = [1]
        self.bitrates = [self.bitrates[-1]]
        self.encoders = [encoder]
        self.active = 1
        self.set_max_bitrate(self._cap)

    def _send(self, sender: Any, payload_type: int, layer: int, payloads: list[bytes],
              timestamp: int, extensions: HeaderExtensionsMap) -> None:
        for i, payload in enumerate(payloads):
            packet = RtpPacket(payload_type=payload_type, sequence_number=self._sequence[layer],
                               timestamp=timestamp, ssrc=self.ssrcs[layer], payload=payload,
                               marker=int(i == len(payloads) - 1))
            packet.extensions.mid = self.transceiver.mid
            data = packet.serialize(extensions)
            self._history[layer][self._sequence[layer] % HISTORY_SIZE] = data
            self._sequence[layer] = (self._sequence[layer] + 1) & 0xFFFF
            write_rtp(sender.transport, data)
            self._packets[layer] += 1
            self._octets[layer] += len(payload)
        self._reports[self.ssrcs[layer]] = RtcpSenderInfo(
            ntp_timestamp=clock.current_ntp_time(), rtp_timestamp=timestamp,
            packet_count=self._packets[layer] & 0xFFFFFFFF,
            octet_count=self._octets[layer] & 0xFFFFFFFF)
