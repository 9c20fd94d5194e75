"""A group room's media routing: each published track is received once and its packets are
forwarded, rewritten per subscriber, to every subscription of it; RTCP terminates per leg.

The asyncio half of the SFU. Per packet it parses the header once, reads the audio level and the
keyframe flag, keeps receive statistics, NACKs losses on the publisher's leg, caches video for
subscribers' NACKs and hands the bytes to each subscription's Forwarder.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import (
    RTCRtpCodecCapability,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    unpack_remb_fci,
)

from rtcroom._native.forward import ReceiveStream
from rtcroom.aiortc_ext.rtp import (
    RTCP_INTERVAL,
    DirectSink,
    ForwardedTrack,
    attach_sender,
    direct_sink,
    negotiated_codecs,
    negotiated_header_extensions,
    receiver_rtcp_ssrc,
    send_rtcp,
    sender_rtx_ssrc,
    sender_ssrc,
    tap_receiver,
    untap_receiver,
    write_rtp,
)
from rtcroom.media.keyframe import KEYFRAME_TESTS, KeyframeTest
from rtcroom.server.sfu.audiolevel import DecodedAudioLevel
from rtcroom.server.sfu.datarelay import PublishedDataTrack
from rtcroom.server.sfu.forwarder import Forwarder, LegExtensions, Sink, forward_all, native_sink
from rtcroom.server.sfu.pacing import SubscriberPacer, paced_by, release
from rtcroom.server.sfu.packetcache import PacketCache
from rtcroom.server.sfu.ratelimit import RateLimit
from rtcroom.server.sfu.resend import ResendTimes
from rtcroom.server.sfu.rtpheader import parse_header, unwrap_rtx, wrap_rtx
from rtcroom.server.sfu.simulcast import StreamRates, choose_layer
from rtcroom.server.sfu.transportcc import (
    TRANSPORT_CC_URI,
    acquire_transport_feedback,
    release_transport_feedback,
)

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"

_RESTART, _DROP, _LOSS = 1, 2, 3
"""ReceiveStream.add's verdicts besides accepting the packet (_LOSS: accepted, and it showed
packets missing that were not before: NACK them)."""

KEYFRAME_REQUEST_INTERVAL = 1.0
"""Seconds between keyframe requests for one stream of a publisher's track (one stream per track
without simulcast), however many subscribers ask."""


def _extension_id(
    extensions: list[RTCRtpHeaderExtensionParameters], uri: str
) -> int | None:
    return next((e.id for e in extensions if e.uri == uri), None)


def _same_format(a: RTCRtpCodecParameters, b: RTCRtpCodecParameters) -> bool:
    if (a.mimeType.lower(), a.clockRate, a.channels) != (b.mimeType.lower(), b.clockRate,
                                                          b.channels):
        return False
    if a.mimeType.lower() == "video/h264":
        # A packetization mode the receiver did not agree to cannot be depacketized.
        return (a.parameters.get("packetization-mode", 0)
                == b.parameters.get("packetization-mode", 0))
    return True


def map_payload_types(
    source: list[RTCRtpCodecParameters], leg: list[RTCRtpCodecParameters]
) -> dict[int, int]:
    """The publisher's payload types -> the subscriber leg's, for codecs both legs negotiated."""
    mapping = {}
    for codec in source:
        if is_rtx(codec) or codec.payloadType is None:
            continue
        match = next((c for c in leg if not is_rtx(c) and _same_format(codec, c)), None)
        if match is not None and match.payloadType is not None:
            mapping[codec.payloadType] = match.payloadType
    return mapping


def publisher_first(codecs: list[RTCRtpCodecParameters],
                    kind: str) -> list[RTCRtpCodecCapability]:
    """This end's ``kind`` codecs, those matching ``codecs`` (a publisher's, the one it sends
    first) first and in their order."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    media = [c for c in capabilities if not is_rtx(c)]
    first = [c for p in codecs for c in media
             if c.mimeType.lower() == p.mimeType.lower() and c.parameters == p.parameters]
    return first + [c for c in media if c not in first] + [c for c in capabilities if is_rtx(c)]


def _rtx_payload_types(codecs: list[RTCRtpCodecParameters]) -> dict[int, int]:
    mapping = {}
    for codec in codecs:
        apt = codec.parameters.get("apt")
        if is_rtx(codec) and codec.payloadType is not None and isinstance(apt, int):
            mapping[codec.payloadType] = apt
    return mapping


class PublishedTrack:
    """One published track as the SFU receives it: its codecs, the streams (SSRCs) seen so far,
    a packet cache for NACKs (video), the last RFC 6464 audio level (audio) and its
    subscriptions."""

    def __init__(self, sid: str, transceiver: RTCRtpTransceiver,
                 keyframe_request_interval: float = KEYFRAME_REQUEST_INTERVAL,
                 layers: list[int] | None = None,
                 rtx: dict[int, int] | None = None) -> None:
        self.sid = sid
        self.kind: str = transceiver.kind
        self.receiver = transceiver.receiver
        self.codecs = [c for c in negotiated_codecs(transceiver)
                       if not is_rtx(c) and c.payloadType is not None]
        if not self.codecs:
            raise ValueError(f"track {sid}: no codec negotiated on the publisher's transceiver")
        by_type = {c.payloadType: c for c in self.codecs if c.payloadType is not None}
        self._payload_types = set(by_type)
        self._rtx_apt = _rtx_payload_types(negotiated_codecs(transceiver))
        """RTX payload type -> the payload type it retransmits."""
        self._rtx_ssrcs = dict(rtx or {})
        """RTX SSRC -> the SSRC it repairs (the FID groups)."""
        self._keyframe_tests: dict[int, KeyframeTest] = {
            pt: KEYFRAME_TESTS[c.mimeType.lower()]
            for pt, c in by_type.items() if c.mimeType.lower() in KEYFRAME_TESTS}
        extensions = negotiated_header_extensions(transceiver)
        self._audio_level_id = _extension_id(extensions, AUDIO_LEVEL_URI)
        self._transport_cc_id = _extension_id(extensions, TRANSPORT_CC_URI)
        self._transport_cc = (acquire_transport_feedback(self.receiver)
                              if self._transport_cc_id is not None else None)
        """Where the publisher numbers its packets transport-wide, the recorder of its
        connection's congestion control feedback."""
        self._decoded_level = (
            DecodedAudioLevel(self.codecs[0])
            if self.kind == "audio" and self._audio_level_id is None else None)
        self.cache = PacketCache() if self.kind == "video" else None
        self.subscriptions: tuple[Subscription, ...] = ()
        self._forwarders: list[Forwarder] = []
        self._forwarding: list[Subscription] = []
        """The subscriptions whose forwarder has started, and those forwarders, in one order:
        what one native call per packet rewrites (and mostly sends) for."""
        self._starting: list[Subscription] = []
        """Subscriptions whose forwarder has not started yet (leg not negotiated or connected)."""
        self.layers = list(layers or [])
        """Simulcast layers' SSRCs, lowest first (from the SIM group); [] without simulcast."""
        self.ssrcs: list[int] = list(self.layers)
        """Streams of this track: the layers, or the streams in the order they first arrived."""
        self.rates = StreamRates()
        self.sender_reports: dict[int, tuple[int, int]] = {}
        """Last (NTP, RTP) timestamp pair from the publisher's sender report, per SSRC."""
        self.audio_level: int | None = None
        """Last RFC 6464 level, in -dBov (0 loudest, 127 silence)."""
        self.on_audio_level: Callable[[int, float], None] | None = None
        """Called with each packet's level and ``time.monotonic()`` (the dominant speaker)."""
        self.voice_activity: bool | None = None
        self.packets_received = 0
        self.bytes_received = 0
        self.keyframe_requests_sent = 0
        self.nacks_sent = 0
        self.retransmissions_received = 0
        self.statistics: dict[int, ReceiveStream] = {}
        """Per stream: which packets to believe, the receive statistics reported to the
        publisher in receiver reports and (video) the losses to NACK it for (native, one call
        per packet)."""
        self.fractions_lost: dict[int, int] = {}
        """Fraction lost (Q8) per stream in the last receiver report: loss upstream of the SFU,
        which the subscribers' reports include too."""
        self._sender_report_times: dict[int, float] = {}
        self._sends: set[asyncio.Future[bool]] = set()
        self.closed = False
        self._keyframe_request_interval = keyframe_request_interval
        self._keyframe_limits: dict[int, RateLimit] = {}
        tap_receiver(self.receiver, self._on_rtp, self._on_rtcp,
                     self.layers + list(self._rtx_ssrcs))
        self._rtcp_task = asyncio.ensure_future(self._run_rtcp())

    def _on_rtp(self, data: bytes, arrival_time_ms: int) -> None:
        now = time.monotonic()
        try:
            h = parse_header(data)
            # Every packet counts: RTX and probes too.
            if self._transport_cc is not None and self._transport_cc_id is not None:
                self._transport_cc.received(h.extensions.get(self._transport_cc_id), h.ssrc,
                                            now)
            if h.payload_type in self._rtx_apt:
                # A retransmission our NACK asked for: forward the packet it carries.
                media_ssrc = self._rtx_media_ssrc(h.ssrc)
                if media_ssrc is None:
                    return
                data = unwrap_rtx(data, h, self._rtx_apt[h.payload_type], media_ssrc)
                h = parse_header(data)
                self.retransmissions_received += 1
        except ValueError:
            return
        if h.payload_type not in self._payload_types:
            return
        statistics = self.statistics.get(h.ssrc)
        if statistics is None:
            statistics = self.statistics[h.ssrc] = ReceiveStream(
                self.codecs[0].clockRate, nack=self.kind == "video")
        verdict = statistics.add(h.sequence_number, h.timestamp, now)
        if verdict == _DROP:
            return
        if verdict == _RESTART:
            self._restart_stream(h.ssrc)
        elif verdict == _LOSS:
            self._nack(h.ssrc, statistics.missing)
        self.packets_received += 1
        self.bytes_received += len(data)
        level = None
        if self._audio_level_id is not None:
            level = h.extensions.get(self._audio_level_id)
            if level:
                self.audio_level = level[0] & 0x7F
                self.voice_activity = bool(level[0] & 0x80)
        elif self._decoded_level is not None:
            decoded = self._decoded_level.level(data[h.payload_offset:h.payload_end],
                                                h.timestamp)
            if decoded is not None:
                self.audio_level = decoded
                level = bytes([decoded])  # subscribers get the level in the extension too
        if level and self.on_audio_level is not None:
            self.on_audio_level(level[0] & 0x7F, now)
        test = self._keyframe_tests.get(h.payload_type)
        keyframe = test is not None and test(data, h.payload_offset, h.payload_end)
        if self.cache is not None:
            self.cache.put(h.ssrc, h.sequence_number, data)
        if h.ssrc not in self.ssrcs:
            self._new_stream(h.ssrc)
        if self.rates.add(h.ssrc, len(data), now) and self.layers:
            for sub in self.subscriptions:
                sub.refresh()
        if self._starting:
            self._start_forwarders()
        unsent, wanted, queued = forward_all(data, keyframe, now, level, self._forwarders)
        for i, out in unsent:
            self._forwarding[i].send(out)
        if wanted is not None:
            self.request_keyframe(wanted, now)
        if queued:
            release(queued)

    def _start_forwarders(self) -> None:
        for sub in self._starting:
            if sub.start() is not None:
                self._legs_changed()

    def _legs_changed(self) -> None:
        subs = self.subscriptions
        self._forwarding = [s for s in subs if s.forwarder is not None]
        self._forwarders = [s.forwarder for s in self._forwarding if s.forwarder is not None]
        self._starting = [s for s in subs if s.forwarder is None and not s.closed]

    def _restart_stream(self, ssrc: int) -> None:
        """The publisher renumbered a stream (its statistics and loss detection started over
        by themselves): start every forwarder on it over, from the current packet."""
        for sub in self.subscriptions:
            if sub.forwarder is not None:
                sub.forwarder.restart(ssrc)

    def _new_stream(self, ssrc: int) -> None:
        self.ssrcs.append(ssrc)
        for sub in self.subscriptions:
            sub.refresh()

    def _rtx_media_ssrc(self, rtx_ssrc: int) -> int | None:
        media_ssrc = self._rtx_ssrcs.get(rtx_ssrc)
        if media_ssrc is None and not self.layers and len(self.ssrcs) == 1:
            # Without FID groups a single-stream track's RTX can only repair that stream.
            media_ssrc = self.ssrcs[0]
        return media_ssrc

    def _nack(self, ssrc: int, lost: list[int]) -> None:
        """NACK the publisher for packets lost on its own leg (video)."""
        rtcp_ssrc = receiver_rtcp_ssrc(self.receiver)
        if rtcp_ssrc is not None:
            nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=rtcp_ssrc, media_ssrc=ssrc)
            nack.lost = lost
            self.nacks_sent += 1
            self._spawn(send_rtcp(self.receiver.transport, [nack]))

    async def _on_rtcp(self, packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpSrPacket):
            info = packet.sender_info
            self.sender_reports[packet.ssrc] = (info.ntp_timestamp, info.rtp_timestamp)
            self._sender_report_times[packet.ssrc] = time.monotonic()

    async def _run_rtcp(self) -> None:
        """Receiver reports to the publisher, for the streams the SFU receives in the
        receiver's place."""
        try:
            while True:
                await asyncio.sleep(RTCP_INTERVAL * (0.5 + random.random()))
                rtcp_ssrc = receiver_rtcp_ssrc(self.receiver)
                if rtcp_ssrc is not None and self.statistics:
                    report = RtcpRrPacket(ssrc=rtcp_ssrc, reports=self._reception_reports())
                    await send_rtcp(self.receiver.transport, [report])
        except asyncio.CancelledError:
            pass

    def _reception_reports(self) -> list[RtcpReceiverInfo]:
        reports = []
        now = time.monotonic()
        for ssrc, stats in list(self.statistics.items())[:31]:
            lsr = dlsr = 0
            if ssrc in self.sender_reports:
                lsr = (self.sender_reports[ssrc][0] >> 16) & 0xFFFFFFFF
                dlsr = int((now - self._sender_report_times[ssrc]) * 65536)
            fraction_lost = self.fractions_lost[ssrc] = stats.fraction_lost
            reports.append(RtcpReceiverInfo(
                ssrc=ssrc, fraction_lost=fraction_lost, packets_lost=stats.packets_lost,
                highest_sequence=(stats.cycles + (stats.max_seq or 0)) & 0xFFFFFFFF,
                jitter=stats.jitter, lsr=lsr, dlsr=dlsr))
        return reports

    def layer_bitrates(self) -> list[float | None]:
        """Measured bits/s of each simulcast layer (None before it has arrived)."""
        return [self.rates.rates.get(ssrc) for ssrc in self.layers]

    def request_keyframe(self, ssrc: int, now: float) -> bool:
        """Send a PLI for stream `ssrc` to the publisher, unless one for that stream went out
        less than the rate limit's interval ago (however many subscribers ask); True when
        sent. Without simulcast a track has one stream, so this is one PLI per track."""
        rtcp_ssrc = receiver_rtcp_ssrc(self.receiver)
        limit = self._keyframe_limits.get(ssrc)
        if limit is None:
            limit = self._keyframe_limits[ssrc] = RateLimit(self._keyframe_request_interval)
        if self.closed or rtcp_ssrc is None or not limit.allow(now):
            return False
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=rtcp_ssrc, media_ssrc=ssrc)
        self.keyframe_requests_sent += 1
        self._spawn(send_rtcp(self.receiver.transport, [pli]))
        return True

    def _spawn(self, send: Coroutine[Any, Any, bool]) -> None:
        """Run an RTCP send started from the packet path, which cannot wait for it."""
        task = asyncio.ensure_future(send)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def _add(self, sub: Subscription) -> None:
        self.subscriptions += (sub,)
        self._legs_changed()

    def _remove(self, sub: Subscription) -> None:
        self.subscriptions = tuple(s for s in self.subscriptions if s is not sub)
        self._legs_changed()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._rtcp_task.cancel()
        untap_receiver(self.receiver)
        if self._transport_cc is not None:
            release_transport_feedback(self.receiver)
        for sub in self.subscriptions:
            sub.close()
        if self.cache is not None:
            self.cache.clear()


class Subscription:
    """One subscriber's leg of a published track: the sender on the subscriber's peer connection
    that carries the forwarded packets, the Forwarder rewriting them, and that leg's RTCP
    (NACKs answered from the track's cache, PLI/FIR relayed to the publisher rate-limited,
    REMB and receiver reports kept for the allocator)."""

    def __init__(self, track: PublishedTrack, transceiver: RTCRtpTransceiver,
                 max_bitrate: int | None = None) -> None:
        if transceiver.kind != track.kind:
            raise ValueError(f"track {track.sid} is {track.kind}, the transceiver "
                             f"{transceiver.kind}")
        if not isinstance(transceiver.sender.track, ForwardedTrack):
            raise TypeError("the subscriber's transceiver must send a ForwardedTrack")
        self.track = track
        self.transceiver = transceiver
        self.sender = transceiver.sender
        self.forwarder: Forwarder | None = None
        self.paused = False
        self.layer: int | None = None
        """Simulcast layer forced by the caller (the allocator); None to choose by budget."""
        self.max_bitrate = max_bitrate
        """Budget for choosing a simulcast layer, bits/s; None for the highest layer arriving."""
        self.closed = False
        self.estimated_bitrate: int | None = None
        """The subscriber's last REMB, bits per second."""
        self.fraction_lost = 0
        self.jitter = 0
        self.rtt: float | None = None
        """Round-trip time of this leg (seconds), from the subscriber's receiver reports."""
        self.on_receiver_report: Callable[[RtcpReceiverInfo, float | None], None] | None = None
        """Called with each report block about this leg's stream and the RTT it gave."""
        self.on_remb: Callable[[int, list[int]], None] | None = None
        """Called with each REMB's bitrate and the SSRCs it names."""
        self.downlink_lost = 0
        self.downlink_expected = 0
        """Packets lost between the SFU and the subscriber, and packets it expected, since the
        leg started: its receiver reports' cumulative loss less what was already missing when
        the packets reached the SFU (a forwarded stream keeps its publisher's gaps)."""
        self._report_snapshot: tuple[int, int, int, int] | None = None
        """(source SSRC, highest sequence, subscriber's cumulative loss, the SFU's cumulative
        loss of the source) at the last receiver report."""
        self._sender_report_sent: dict[int, float] = {}
        """Middle 32 bits of the NTP time of recent sender reports -> when they went out
        (the subscriber's LSR names one; the NTP time is the publisher's, so not our clock)."""
        self.nacks_received = 0
        self.retransmitted = 0
        self._resend_times = ResendTimes()
        self._rtx: dict[int, int] = {}
        """This leg's payload type -> its RTX payload type, where RTX is negotiated."""
        self._rtx_sequence_number = random.randrange(1 << 15)
        self._packets_sent = 0
        self._bytes_sent = 0
        """Sent through :meth:`send`; the forwarder counts what it sends itself."""
        self._sink: DirectSink | Sink | None = None
        self._pacer: SubscriberPacer | None = None
        """The subscriber connection's pacer, for a video leg of a paced connection."""
        self._detach_sender = attach_sender(self.sender, self._on_rtcp, self._sender_reports)

    @property
    def packets_sent(self) -> int:
        forwarder = self.forwarder
        return self._packets_sent + (forwarder.sent_packets if forwarder is not None else 0)

    @property
    def bytes_sent(self) -> int:
        forwarder = self.forwarder
        return self._bytes_sent + (forwarder.sent_bytes if forwarder is not None else 0)

    def unforwardable(self) -> str | None:
        """Why this leg, once negotiated, cannot carry the track (the subscriber accepted none
        of the publisher's codecs, and the SFU does not transcode); None when it can or is
        not negotiated yet."""
        if self.transceiver.currentDirection not in ("sendonly", "sendrecv"):
            return None
        leg = [c for c in negotiated_codecs(self.transceiver) if not is_rtx(c)]
        # The publisher sends the first codec it negotiated.
        sent = self.track.codecs[0]
        if sent.payloadType in map_payload_types([sent], leg):
            return None
        return (f"the subscriber accepts {', '.join(c.mimeType for c in leg) or 'no codec'} "
                f"for track {self.track.sid}, which is published in {sent.mimeType}")

    def start(self) -> Forwarder | None:
        """Create the forwarder once the subscriber's leg is negotiated and connected."""
        if (self.closed or self.transceiver.currentDirection not in ("sendonly", "sendrecv")
                or self.sender.transport.state != "connected"):
            return None
        track = self.track
        leg_codecs = negotiated_codecs(self.transceiver)
        payload_types = map_payload_types(track.codecs, leg_codecs)
        self._rtx = {apt: rtx for rtx, apt in _rtx_payload_types(leg_codecs).items()}
        extensions = negotiated_header_extensions(self.transceiver)
        video = track.kind == "video"
        forwarder = Forwarder(
            ssrc=sender_ssrc(self.sender),
            clock_rate=track.codecs[0].clockRate,
            payload_types=payload_types,
            extensions=LegExtensions(
                mid_id=_extension_id(extensions, MID_URI),
                mid=self.transceiver.mid or "",
                audio_level_id=None if video else _extension_id(extensions, AUDIO_LEVEL_URI),
                abs_send_time_id=_extension_id(extensions, ABS_SEND_TIME_URI) if video else None,
            ),
            wait_for_keyframe=video and bool(track._keyframe_tests),
            first_sequence_number=random.randrange(1 << 15),
            first_timestamp=random.randrange(1 << 32),
            vp8_payload_types=tuple(c.payloadType for c in track.codecs
                                    if c.mimeType.lower() == "video/vp8"
                                    and c.payloadType is not None),
        )
        self.forwarder = forwarder
        self.refresh()
        self.sender.transport.on("statechange", self._check_sink)
        self._check_sink()
        return forwarder

    def _check_sink(self) -> None:
        """Let the forwarder send by itself where ``write_rtp`` would go straight to the socket
        (connected, not marked per packet, not relayed), through its connection's pacing sink
        if the leg is paced video, and take that back as soon as it would not (a paced leg then
        goes through the pacer's Python driver); also undone by replacing :meth:`send` on the
        instance (a test's or an instrument's hook then sees every packet). Checked when the
        leg starts, when its DTLS transport changes state, when its connection's pacing changes
        and with each RTCP report."""
        forwarder = self.forwarder
        if forwarder is None:
            return
        transport = self.sender.transport
        pacer = paced_by(transport) if self.track.kind == "video" else None
        self._pacer = pacer
        sink: DirectSink | Sink | None
        if self.closed or "send" in self.__dict__:
            sink = None
        elif pacer is not None:
            sink = pacer.sink  # the connection's, pacing; None where it cannot be native
        else:
            sink = direct_sink(transport)
        if sink == self._sink:
            return
        self._sink = sink
        if sink is None:
            forwarder.detach()
        else:
            forwarder.attach(native_sink(sink) if isinstance(sink, DirectSink) else sink)

    def refresh(self) -> None:
        """Point the forwarder at the stream that pause and layer choose."""
        if self.forwarder is None:
            return
        track = self.track
        if self.paused or not track.ssrcs:
            self.forwarder.select(None)
        elif not track.layers:
            self.forwarder.select(track.ssrcs[0])
        else:
            self.forwarder.select(track.layers[self.current_layer()])

    def current_layer(self) -> int:
        """The simulcast layer this subscription should receive now."""
        top = len(self.track.layers) - 1
        if self.layer is not None:
            return max(0, min(self.layer, top))
        if self.max_bitrate is None:
            # The highest layer arriving: a browser sends its upper layers only once its
            # bandwidth estimate has room for them, and may drop them again.
            return choose_layer(self.track.layer_bitrates(), math.inf)
        return choose_layer(self.track.layer_bitrates(), self.max_bitrate)

    def pause(self) -> None:
        self.paused = True
        self.refresh()

    def resume(self) -> None:
        self.paused = False
        self.refresh()

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if self._pacer is not None:
            self._pacer.enqueue(data)
        elif not write_rtp(self.sender.transport, data):
            return
        self._packets_sent += 1
        self._bytes_sent += len(data)

    async def _on_rtcp(self, packet: AnyRtcpPacket) -> None:
        forwarder = self.forwarder
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self.nacks_received += 1
            if forwarder is not None and self.track.cache is not None:
                self._retransmit(forwarder, packet.lost)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            if forwarder is not None and forwarder.source is not None:
                self.track.request_keyframe(forwarder.source, time.monotonic())
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                self.estimated_bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if self.on_remb is not None:
                self.on_remb(self.estimated_bitrate, ssrcs)
        elif isinstance(packet, RtcpRrPacket):
            ssrc = sender_ssrc(self.sender)
            for report in packet.reports:
                if report.ssrc == ssrc:
                    self.fraction_lost = report.fraction_lost
                    self.jitter = report.jitter
                    rtt = self._round_trip_time(report)
                    if rtt is not None:
                        self.rtt = rtt
                    self._count_downlink_loss(report)
                    if self.on_receiver_report is not None:
                        self.on_receiver_report(report, rtt)

    def _count_downlink_loss(self, report: RtcpReceiverInfo) -> None:
        forwarder = self.forwarder
        source = forwarder.source if forwarder is not None else None
        stats = self.track.statistics.get(source) if source is not None else None
        if stats is None or source is None:
            self._report_snapshot = None
            return
        # The report arrives within milliseconds of the packets it counts: the source's loss
        # counted now covers the same packets, give or take the last one or two.
        snapshot = (source, report.highest_sequence, report.packets_lost, stats.packets_lost)
        previous, self._report_snapshot = self._report_snapshot, snapshot
        if previous is None or previous[0] != source:
            return  # a new stream (layer switch, restart): counting starts again
        expected = snapshot[1] - previous[1]
        if expected <= 0:
            return
        lost = (snapshot[2] - previous[2]) - (snapshot[3] - previous[3])
        self.downlink_expected += expected
        self.downlink_lost += min(max(lost, 0), expected)

    def _round_trip_time(self, report: RtcpReceiverInfo) -> float | None:
        sent = self._sender_report_sent.get(report.lsr)
        if sent is None or not report.lsr:
            return None
        rtt = time.monotonic() - sent - report.dlsr / 65536
        return rtt if rtt >= 0 else None

    def _retransmit(self, forwarder: Forwarder, lost: list[int]) -> None:
        cache = self.track.cache
        assert cache is not None
        now = time.monotonic()
        for seq in lost:
            if not self._resend_times.allow(seq, now, self.rtt):
                continue
            source_seq = forwarder.source_sequence_number(seq)
            if source_seq is None or forwarder.source is None:
                continue
            data = cache.get(forwarder.source, source_seq)
            if data is None:
                continue
            out = forwarder.retransmission(data, now)
            if out is None:
                continue
            h = parse_header(out)
            rtx_payload_type = self._rtx.get(h.payload_type)
            if rtx_payload_type is not None:
                out = wrap_rtx(out, h, rtx_payload_type, self._rtx_sequence_number,
                               sender_rtx_ssrc(self.sender))
                self._rtx_sequence_number = (self._rtx_sequence_number + 1) & 0xFFFF
            if self._pacer is not None:
                self._pacer.enqueue(out, retransmission=True,
                                    abs_send_time_id=forwarder.extensions.abs_send_time_id)
                self.retransmitted += 1
            elif write_rtp(self.sender.transport, out):
                self.retransmitted += 1

    def _sender_reports(self) -> dict[int, RtcpSenderInfo]:
        """The subscriber's sender report: the publisher's NTP/RTP pair moved into this leg's
        timestamp space, so the subscriber can still synchronise audio with video."""
        self._check_sink()
        forwarder = self.forwarder
        if forwarder is None or forwarder.source is None:
            return {}
        report = self.track.sender_reports.get(forwarder.source)
        if report is None:
            return {}
        sent = self._sender_report_sent
        sent[(report[0] >> 16) & 0xFFFFFFFF] = time.monotonic()
        while len(sent) > 8:  # the subscriber answers the last few; older ones are stale
            del sent[next(iter(sent))]
        return {forwarder.ssrc: RtcpSenderInfo(
            ntp_timestamp=report[0],
            rtp_timestamp=(report[1] + forwarder.ts_delta) & 0xFFFFFFFF,
            packet_count=forwarder.packets & 0xFFFFFFFF,
            octet_count=forwarder.octets & 0xFFFFFFFF,
        )}

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        # A retired m-line keeps its sender until reused: it must not keep the leg (and with it
        # the track, its cache and statistics) alive.
        self._detach_sender()
        forwarder = self.forwarder
        if forwarder is not None:
            self._check_sink()
            self.sender.transport.remove_listener("statechange", self._check_sink)
            self._packets_sent, self._bytes_sent = self.packets_sent, self.bytes_sent
        self.forwarder = None
        self.track._remove(self)
        if self.sender.track is not None:
            self.sender.track.stop()


class Router:
    """The SFU of one group room: published tracks by sid and their subscriptions.

    The signaling layer publishes a track once the publisher's transceiver is negotiated, and
    subscribes a subscriber by adding a `ForwardedTrack` transceiver to that subscriber's peer
    connection *before* negotiating it; forwarding starts when that leg connects.
    """

    def __init__(self, keyframe_request_interval: float = KEYFRAME_REQUEST_INTERVAL,
                 default_max_bitrate: int | None = None) -> None:
        self.keyframe_request_interval = keyframe_request_interval
        self.default_max_bitrate = default_max_bitrate
        """Layer budget of subscriptions that get none of their own (until the allocator)."""
        self.tracks: dict[str, PublishedTrack] = {}
        self.data_tracks: dict[str, PublishedDataTrack] = {}
        self._pacers: list[SubscriberPacer] = []

    def publish_data(self, sid: str, channel: RTCDataChannel) -> PublishedDataTrack:
        """Relay a publisher's data track (its channel on the server's connection)."""
        if sid in self.tracks or sid in self.data_tracks:
            raise ValueError(f"track {sid} is already published")
        track = self.data_tracks[sid] = PublishedDataTrack(sid, channel)
        return track

    def subscribe_data(self, sid: str, pc: RTCPeerConnection) -> RTCDataChannel:
        track = self.data_tracks.get(sid)
        if track is None:
            raise ValueError(f"data track {sid} is not published in this room")
        return track.subscribe(pc)

    def publish(self, sid: str, transceiver: RTCRtpTransceiver,
                layers: list[int] | None = None,
                rtx: dict[int, int] | None = None) -> PublishedTrack:
        """Start receiving a publisher's track. From the publisher's description
        (`remote_sdp`): `layers`, its simulcast SSRCs lowest first
        (`simulcast_ssrcs(remote_sdp, transceiver.mid)`), and `rtx`, which RTX stream repairs
        which (`rtx_ssrcs(remote_sdp, transceiver.mid)`)."""
        if sid in self.tracks or sid in self.data_tracks:
            raise ValueError(f"track {sid} is already published")
        track = PublishedTrack(sid, transceiver, self.keyframe_request_interval, layers, rtx)
        self.tracks[sid] = track
        return track

    def unpublish(self, sid: str) -> None:
        """Stop receiving the track and end all its subscriptions (idempotent)."""
        track = self.tracks.pop(sid, None)
        if track is not None:
            track.close()
        data_track = self.data_tracks.pop(sid, None)
        if data_track is not None:
            data_track.close()

    def subscribe(self, sid: str, transceiver: RTCRtpTransceiver,
                  max_bitrate: int | None = None) -> Subscription:
        track = self.tracks.get(sid)
        if track is None:
            raise ValueError(f"track {sid} is not published in this room")
        # Offered first, the publisher's codecs are what the subscriber answers with when it
        # has them: the leg forwards without transcoding.
        transceiver.setCodecPreferences(publisher_first(track.codecs, transceiver.kind))
        sub = Subscription(track, transceiver,
                           self.default_max_bitrate if max_bitrate is None else max_bitrate)
        track._add(sub)
        return sub

    def pace(self, pc: RTCPeerConnection, target_bitrate: int) -> SubscriberPacer:
        """Pace the video (and retransmissions) the SFU sends on a subscriber's connection
        ``pc`` with the native pacer, at ``target_bitrate`` x the pacing factor (set the
        pacer's ``target_bitrate`` from the subscriber's budget as it changes); see
        :mod:`rtcroom.server.sfu.pacing`. Call it before or after ``pc`` connects; it ends when
        ``pc`` closes."""
        pacer = SubscriberPacer(pc, target_bitrate, self._check_sinks)
        self._pacers.append(pacer)
        return pacer

    def _check_sinks(self) -> None:
        # Also called as a pacer closes: a closed one must not keep its connection alive.
        self._pacers = [p for p in self._pacers if not p.closed]
        for track in self.tracks.values():
            for sub in track.subscriptions:
                sub._check_sink()

    def close(self) -> None:
        for sid in [*self.tracks, *self.data_tracks]:
            self.unpublish(sid)
        for pacer in self._pacers:
            pacer.close()
        self._pacers = []
