"""Packet-level access to aiortc's RTP stack, for forwarding media without decoding it.

aiortc 1.16 has no public way to read a receiver's packets or to send RTP of one's own on a
sender's SSRC. This module is the only place the SFU touches aiortc internals; what it relies on:

- `RTCDtlsTransport._handle_rtp_data(data, arrival_time_ms)`: called with each decrypted RTP
  packet; replaced per transport by a tap that hands packets of tapped receivers on as bytes.
- aioice `Connection.data_received(data, component)`, which queues each non-STUN datagram for
  the DTLS transport's task, and the connection's `_protocols` (`StunProtocol`s, whose
  `datagram_received` tries to parse every datagram as STUN first and whose `local_candidate`
  names the component), and that transport's `_rx_srtp` session and `__rx_bytes` /
  `__rx_packets` counters: the tap decrypts known SSRCs' packets right there instead, natively,
  with libsrtp 2's `srtp_unprotect` from pylibsrtp's cffi binding on that session's `_srtp`.
- `RTCDtlsTransport._rtp_router.route_rtp(packet)` and `_rtp_header_extensions_map`: how aiortc
  maps an SSRC it has not seen yet to a receiver (used once per new SSRC); the router's
  `ssrc_table` and `register_sender`, to route RTCP about extra (simulcast) SSRCs.
- `RTCDtlsTransport._send_rtp(data)`: SRTP/SRTCP-protects and sends one RTP or RTCP packet;
  for the synchronous `write_rtp`, what it does: `_state`, `_tx_srtp.protect`, its counters
  `__tx_packets`/`__tx_bytes`, and aioice's `Connection._nominated[1]` pair whose
  `protocol.transport` (a `StunProtocol`'s asyncio datagram transport) sends to `remote_addr`.
- For `direct_sink`, the same path as `write_rtp`'s, handed to native code: pylibsrtp's cffi
  binding (`pylibsrtp._binding`: `lib.srtp_protect`, libsrtp 2's `(srtp_t, void *, int *)`) and
  a `Session`'s `_srtp` (its `srtp_t *`), and the asyncio transport's `socket` extra info.
- `RTCRtpReceiver._handle_rtcp_packet` / `RTCRtpSender._handle_rtcp_packet`: where the transport
  delivers RTCP (SR/BYE to receivers; RR, NACK, PLI, FIR, REMB to senders).
- `RtpRouter.route_rtcp(packet)` returning the set of recipients, and its `senders` by SSRC: a
  FIR names the streams it wants keyframes of in its FCI (RFC 5104 4.3.1; its media SSRC is 0),
  which aiortc does not read, so carriers also get the FIRs naming them.
- `RTCRtpSender._run_rtcp` (started by `send()`), and the name-mangled `__rtcp_started`,
  `__rtcp_exited` events `stop()` waits on and `__cname`: replaced so a forwarded stream's sender
  reports describe the forwarded packets instead of the (absent) encoder's.
- `aiortc.rtcrtpreceiver.NackGenerator` and `StreamStatistics` (undocumented), fed with any
  object with `sequence_number` and `timestamp`: the oracles of the SFU's native receive
  statistics and NACK lists (rtcroom._native.forward.ReceiveStream), which report and NACK as
  aiortc's receivers do.
- `RTCRtpSender._ssrc` / `_rtx_ssrc`, `RTCRtpReceiver.__rtcp_ssrc`, `RTCRtpTransceiver._codecs` / `_headerExtensions`: the SSRC to
  send feedback from and the negotiated codecs and header extension ids.

tests/test_aiortc_ext_rtp.py checks each of these, so an aiortc upgrade that moves one fails there
first; pyproject.toml pins aiortc to the range these were checked against.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
import struct
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pylibsrtp
import pylibsrtp._binding  # type: ignore[import-not-found]  # cffi, no stubs
from aioice.ice import StunProtocol
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    AnyRtcpPacket,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
)

from rtcroom._native.forward import Source

__all__ = [
    "RTCP_INTERVAL", "DirectSink", "ForwardedTrack", "NackGenerator", "StreamStatistics", "attach_sender",
    "claim_sender_ssrcs", "direct_sink", "negotiated_codecs", "negotiated_header_extensions",
    "receiver_rtcp_ssrc", "send_rtcp", "send_rtp", "sender_rtx_ssrc", "sender_ssrc",
    "srtp_source", "tap_receiver", "untap_receiver", "write_rtp",
]

RtpHandler = Callable[[bytes, int], None]
"""Receives one decrypted RTP packet and its arrival time in milliseconds. It runs inside the
socket's callback: it must not block, and schedules any I/O of its own."""

RtcpHandler = Callable[[AnyRtcpPacket], Awaitable[None]]
SenderReportSource = Callable[[], dict[int, RtcpSenderInfo]]
"""The sender information to report now, by SSRC (several for simulcast layers)."""

_NTP_EPOCH_OFFSET_MS = 2_208_988_800_000
"""aiortc's arrival times are milliseconds since 1900 (aiortc.clock.current_ms, which builds
datetimes: too slow for every packet)."""

RTCP_INTERVAL = 1.0
"""Mean seconds between RTCP reports, varied by +-50 % as aiortc's own sender does."""


class ForwardedTrack(MediaStreamTrack):
    """The track of a sender whose packets the SFU writes itself: it never yields a frame, so the
    sender's encoding loop waits without polling until the sender stops. ``id`` is the track id
    its m-line signals in ``a=msid`` (aiortc's sender reads ``track.id``); a random one if not
    given."""

    def __init__(self, kind: str, id: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        if id is not None:
            self._id = id
        self._ended = asyncio.Event()

    async def recv(self) -> Any:
        await self._ended.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._ended.set()


class _TransportTap:
    """Replaces one DTLS transport's RTP dispatch: packets whose SSRC belongs to a tapped receiver
    go to its handler as bytes, without aiortc parsing them; all others take aiortc's path.

    Packets of SSRCs already known are taken straight from aioice's datagram callback, decrypted
    and handed on there: no queue and no task switch per packet (aiortc's path puts every
    datagram in a queue that the DTLS transport's task reads). RTP and RTCP (first byte 128 to
    191, RFC 7983) do not wait for aioice to fail parsing them as STUN first."""

    def __init__(self, transport: RTCDtlsTransport) -> None:
        self.transport = transport
        self.by_receiver: dict[RTCRtpReceiver, RtpHandler] = {}
        self.by_ssrc: dict[int, RtpHandler] = {}
        self._source: tuple[pylibsrtp.Session, Source] | None = None
        """The receiving SRTP session and its native decryptor (one call per datagram instead
        of pylibsrtp's wrapper)."""
        transport._handle_rtp_data = self.handle_rtp_data  # type: ignore[method-assign]
        self.connection = transport.transport._connection
        self.connection.data_received = self.data_received  # type: ignore[method-assign]
        self.protocols = [p for p in self.connection._protocols
                          if type(p) is StunProtocol and p.local_candidate is not None]
        for protocol in self.protocols:
            protocol.datagram_received = self._demultiplexer(  # type: ignore[method-assign,assignment]
                protocol)

    def _demultiplexer(
        self, protocol: StunProtocol
    ) -> Callable[[bytes | str, tuple[Any, ...]], None]:
        stun = type(protocol).datagram_received.__get__(protocol)
        component = protocol.local_candidate.component
        data_received = self.data_received

        def datagram_received(data: bytes | str, addr: tuple[Any, ...]) -> None:
            if isinstance(data, bytes) and data and 127 < data[0] < 192:
                data_received(data, component)
            else:
                stun(data, addr)

        return datagram_received

    def data_received(self, data: bytes, component: int) -> None:
        transport = self.transport
        srtp = transport._rx_srtp
        if (srtp is not None and len(data) >= 12 and 127 < data[0] < 192
                and not 191 < data[1] < 224):  # SRTP, not SRTCP (RFC 5761)
            handler = self.by_ssrc.get(int.from_bytes(data[8:12], "big"))
            if handler is not None:
                transport._RTCDtlsTransport__rx_bytes += len(data)  # type: ignore[attr-defined]
                transport._RTCDtlsTransport__rx_packets += 1  # type: ignore[attr-defined]
                source = self._source
                if source is None or source[0] is not srtp:
                    source = self._source = (srtp, srtp_source(srtp))
                packet = source[1].unprotect(data)
                if packet is None:
                    return
                handler(packet, int(time.time() * 1000) + _NTP_EPOCH_OFFSET_MS)
                return
        type(self.connection).data_received(self.connection, data, component)

    async def handle_rtp_data(self, data: bytes, arrival_time_ms: int) -> None:
        handler = self.by_ssrc.get(int.from_bytes(data[8:12], "big"))
        if handler is not None:
            handler(data, arrival_time_ms)
            return
        # An SSRC not seen yet: let aiortc decide which receiver it belongs to (by signalled
        # SSRC or payload type), once.
        transport = self.transport
        try:
            packet = RtpPacket.parse(data, transport._rtp_header_extensions_map)
        except (ValueError, struct.error):
            # A malformed packet, or a header extension whose id the bundle's other m-lines map
            # to another extension: raised here it would end the transport's receive loop.
            return
        receiver = transport._rtp_router.route_rtp(packet)
        if receiver is None:
            return
        handler = self.by_receiver.get(receiver)  # type: ignore[call-overload]
        if handler is None:
            await receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)
        else:
            self.by_ssrc[packet.ssrc] = handler
            handler(data, arrival_time_ms)

    def remove(self, receiver: RTCRtpReceiver) -> None:
        handler = self.by_receiver.pop(receiver, None)
        for ssrc in [s for s, h in self.by_ssrc.items() if h is handler]:
            del self.by_ssrc[ssrc]
        if not self.by_receiver:
            # The instance attributes shadowed the methods; removing them restores the originals.
            del self.transport._handle_rtp_data
            del self.connection.data_received
            for protocol in self.protocols:
                protocol.__dict__.pop("datagram_received", None)
            del _taps[self.transport]


_taps: weakref.WeakKeyDictionary[RTCDtlsTransport, _TransportTap] = weakref.WeakKeyDictionary()


def tap_receiver(receiver: RTCRtpReceiver, on_rtp: RtpHandler, on_rtcp: RtcpHandler,
                 ssrcs: list[int] | None = None) -> None:
    """Deliver every RTP packet `receiver` gets (decrypted, as bytes) to `on_rtp` instead of its
    jitter buffer and decoder, and every RTCP packet routed to it (SR, BYE) to `on_rtcp` as well.

    `ssrcs` claims streams aiortc does not map to the receiver by itself (it knows only the first
    SSRC of a media section): simulcast layers announced in an SSRC group.
    Call once the receiver's transport is final (after the description that bundles it is set).
    """
    transport = receiver.transport
    tap = _taps.get(transport)
    if tap is None:
        tap = _taps[transport] = _TransportTap(transport)
    tap.by_receiver[receiver] = on_rtp
    for ssrc in ssrcs or []:
        tap.by_ssrc[ssrc] = on_rtp
        # So that the layers' sender reports are routed to the receiver too.
        transport._rtp_router.ssrc_table[ssrc] = receiver
    original = type(receiver)._handle_rtcp_packet.__get__(receiver)

    async def handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        await on_rtcp(packet)
        await original(packet)

    receiver._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]


def untap_receiver(receiver: RTCRtpReceiver) -> None:
    """Undo `tap_receiver`; packets the receiver gets afterwards go to aiortc's decoder again."""
    receiver.__dict__.pop("_handle_rtcp_packet", None)
    for tap in list(_taps.values()):
        if receiver in tap.by_receiver:
            tap.remove(receiver)


def claim_sender_ssrcs(sender: RTCRtpSender, ssrcs: list[int]) -> None:
    """Route RTCP about `ssrcs` (simulcast layers written on this sender) to the sender too;
    aiortc routes feedback by the one SSRC it gave the sender. Call once the sender's transport
    is final (connected)."""
    for ssrc in ssrcs:
        sender.transport._rtp_router.register_sender(sender, ssrc)


def receiver_rtcp_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC a receiver's feedback (PLI, NACK, RR) is sent from, None before negotiation."""
    ssrc: int | None = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
    return ssrc


def sender_ssrc(sender: RTCRtpSender) -> int:
    """The SSRC a sender's packets carry, announced in the SDP (a=ssrc) before negotiation."""
    ssrc: int = sender._ssrc
    return ssrc


def sender_rtx_ssrc(sender: RTCRtpSender) -> int:
    """The SSRC of the sender's RTX stream, announced with the media SSRC in an FID group when
    RTX is negotiated."""
    ssrc: int = sender._rtx_ssrc
    return ssrc


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The codecs of the last negotiation, in preference order (RTX entries included)."""
    return list(transceiver._codecs)


def negotiated_header_extensions(
    transceiver: RTCRtpTransceiver,
) -> list[RTCRtpHeaderExtensionParameters]:
    return list(transceiver._headerExtensions)


async def send_rtp(transport: RTCDtlsTransport, data: bytes) -> bool:
    """Protect and send one RTP or RTCP packet; False when the transport is not connected."""
    try:
        await transport._send_rtp(data)
    except ConnectionError:
        return False
    return True


def write_rtp(transport: RTCDtlsTransport, data: bytes) -> bool:
    """`send_rtp` for RTP packets, synchronously: SRTP-protect and hand the datagram to the
    nominated pair's socket, skipping the per-packet coroutine chain (aiortc -> aioice ->
    protocol) that costs a forwarding path more than the encryption. False when not connected.

    Where rtcroom hooks the path (the pacer of `aiortc_ext.pacing` shadows the transport's
    `_send_rtp`, DSCP marking of `aiortc_ext.dscp` the protocol's `send_data`), the packet goes
    through the hook, which decides when and how it leaves."""
    if transport._state is not DtlsState.CONNECTED:
        return False
    paced = transport.__dict__.get("_send_rtp")
    if paced is not None:
        try:
            _run_now(paced(data))
        except ConnectionError:
            return False
        return True
    pair = transport.transport._connection._nominated.get(1)
    if pair is None:
        return False
    try:
        data = transport._tx_srtp.protect(data)
    except (pylibsrtp.Error, ValueError):  # an index far behind the stream's, or too long
        return False
    protocol = pair.protocol
    if type(protocol) is StunProtocol and "send_data" not in protocol.__dict__:
        protocol.transport.sendto(data, pair.remote_addr)
    else:  # marked (DSCP), or wrapped for a TURN relay
        _run_now(protocol.send_data(data, pair.remote_addr))
    transport._RTCDtlsTransport__tx_packets += 1  # type: ignore[attr-defined]
    transport._RTCDtlsTransport__tx_bytes += len(data)  # type: ignore[attr-defined]
    return True


@dataclasses.dataclass(frozen=True)
class DirectSink:
    """What native code needs to send a DTLS transport's RTP as `write_rtp` does: libsrtp's
    protect function and the transport's SRTP session as addresses, the socket's descriptor and
    the remote address. `srtp` keeps the session alive: hold this while they are in use."""

    protect: int
    session: int
    fd: int
    host: str
    port: int
    srtp: pylibsrtp.Session = dataclasses.field(compare=False, repr=False)
    pair: object = dataclasses.field(repr=False)
    """The nominated candidate pair: another one means another address."""


_ffi = pylibsrtp._binding.ffi
_SRTP_PROTECT = int(_ffi.cast("uintptr_t", _ffi.addressof(pylibsrtp._binding.lib, "srtp_protect")))


_SRTP_UNPROTECT = int(_ffi.cast("uintptr_t",
                                 _ffi.addressof(pylibsrtp._binding.lib, "srtp_unprotect")))


def srtp_source(session: pylibsrtp.Session) -> Source:
    """A native decryptor of SRTP packets with pylibsrtp's `session` itself (its key, its replay
    window), as `session.unprotect` but returning None where that raises; keep `session` alive
    while it is in use."""
    return Source(_SRTP_UNPROTECT, int(_ffi.cast("uintptr_t", session._srtp[0])))


def direct_sink(transport: RTCDtlsTransport) -> DirectSink | None:
    """The sink through which native code may send `transport`'s RTP itself, or None where
    `write_rtp` would not go straight to the socket: not connected, paced (`aiortc_ext.pacing`),
    marked per packet (`aiortc_ext.dscp`), or through a TURN relay. It stays valid until one of
    those changes (the transport's "statechange" says when it stops being connected)."""
    if transport._state is not DtlsState.CONNECTED or "_send_rtp" in transport.__dict__:
        return None
    pair = transport.transport._connection._nominated.get(1)
    srtp = transport._tx_srtp
    if pair is None or srtp is None:
        return None
    protocol = pair.protocol
    if type(protocol) is not StunProtocol or "send_data" in protocol.__dict__:
        return None
    sock = protocol.transport.get_extra_info("socket")
    if sock is None:
        return None
    host, port = pair.remote_addr[:2]
    return DirectSink(protect=_SRTP_PROTECT, session=int(_ffi.cast("uintptr_t", srtp._srtp[0])),
                      fd=sock.fileno(), host=host, port=port, srtp=srtp, pair=pair)


def _run_now(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a send coroutine to its end right away, without a task: those on the packet path
    (aioice's, the pacer's, DSCP marking's) only call sendto or queue, so they finish in one
    step. One that does wait is finished by a task. Exceptions of the first step propagate."""
    try:
        awaited = coroutine.send(None)
    except StopIteration:
        return
    asyncio.ensure_future(_finish(coroutine, awaited))


async def _finish(coroutine: Coroutine[Any, Any, None], awaited: Any) -> None:
    # What a task does for a coroutine: wait for what it yielded, then resume it.
    while True:
        if awaited is None:
            await asyncio.sleep(0)
        else:  # done either way; the coroutine reads the outcome when it resumes
            await asyncio.wait({awaited})
        try:
            awaited = coroutine.send(None)
        except StopIteration:
            return
        except ConnectionError:
            return


async def send_rtcp(transport: RTCDtlsTransport, packets: list[AnyRtcpPacket]) -> bool:
    return await send_rtp(transport, b"".join(bytes(p) for p in packets))


def _route_fir() -> None:
    """Have aiortc's RTCP routing deliver a FIR to the senders its FCI entries name (each entry:
    SSRC, sequence number, 3 reserved bytes), besides its media SSRC's (idempotent)."""
    route = RtpRouter.route_rtcp
    if getattr(route, "_rtcroom_fir", False):
        return

    @functools.wraps(route)
    def route_rtcp(self: RtpRouter, packet: AnyRtcpPacket) -> set[Any]:
        recipients = route(self, packet)
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_FIR:
            fci = packet.fci
            for i in range(0, len(fci) - 7, 8):
                sender = self.senders.get(int.from_bytes(fci[i:i + 4], "big"))
                if sender is not None:
                    recipients.add(sender)
        return recipients

    route_rtcp._rtcroom_fir = True  # type: ignore[attr-defined]
    RtpRouter.route_rtcp = route_rtcp  # type: ignore[method-assign]


async def _ignore_rtcp(packet: AnyRtcpPacket) -> None:
    return None


def _no_sender_reports() -> dict[int, RtcpSenderInfo]:
    return {}


def attach_sender(
    sender: RTCRtpSender, on_rtcp: RtcpHandler, sender_reports: SenderReportSource
) -> Callable[[], None]:
    """Make `sender` a carrier for packets written with `send_rtp` on `sender._ssrc`.

    RTCP the remote end addresses to the sender (RR, NACK, PLI, FIR, REMB) goes to `on_rtcp`
    (RR still feeds aiortc's stats too), and the sender's periodic reports are one SR per entry
    of `sender_reports()`, followed by SDES and, on stop, BYE.
    Call before the sender is started by negotiation. Returns a function that lets go of
    `on_rtcp` and `sender_reports` (no more reports, RTCP ignored): a sender may outlive its
    user, as on a retired m-line kept for reuse, and would otherwise keep it alive.
    """
    if sender._RTCRtpSender__started:  # type: ignore[attr-defined]
        raise RuntimeError("attach_sender must be called before the sender starts")
    _route_fir()
    original = type(sender)._handle_rtcp_packet.__get__(sender)

    async def handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        await on_rtcp(packet)
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            await original(packet)

    async def run_rtcp() -> None:
        started: asyncio.Event = sender._RTCRtpSender__rtcp_started  # type: ignore[attr-defined]
        exited: asyncio.Event = sender._RTCRtpSender__rtcp_exited  # type: ignore[attr-defined]
        started.set()
        ssrc = sender._ssrc
        try:
            while True:
                await asyncio.sleep(RTCP_INTERVAL * (0.5 + random.random()))
                packets: list[AnyRtcpPacket] = [
                    RtcpSrPacket(ssrc=s, sender_info=info)
                    for s, info in sender_reports().items()]
                cname: str | None = sender._RTCRtpSender__cname  # type: ignore[attr-defined]
                if cname is not None:
                    packets.append(
                        RtcpSdesPacket(
                            chunks=[RtcpSourceInfo(ssrc=ssrc, items=[(1, cname.encode())])]
                        )
                    )
                if packets:
                    await send_rtcp(sender.transport, packets)
        except asyncio.CancelledError:
            pass
        await send_rtcp(sender.transport, [RtcpByePacket(sources=[ssrc])])
        exited.set()

    def detach() -> None:
        nonlocal on_rtcp, sender_reports
        on_rtcp, sender_reports = _ignore_rtcp, _no_sender_reports

    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]
    sender._run_rtcp = run_rtcp  # type: ignore[method-assign]
    return detach
