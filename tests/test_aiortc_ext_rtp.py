"""rtcroom.aiortc_ext.rtp against real aiortc peers on loopback, and the aiortc internals it relies
on: if an aiortc upgrade renames or reshapes one of them, the contract tests here fail by name."""

from __future__ import annotations

import asyncio
import inspect
import struct

import aioice.ice
import aiortc
import pylibsrtp
import pylibsrtp._binding
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver, clock
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rtp import (
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback_peers import ToneTrack, loopback_only, negotiate, wait_connected
from rtcroom.aiortc_ext.rtp import (
    ForwardedTrack,
    NackGenerator,
    StreamStatistics,
    attach_sender,
    negotiated_codecs,
    negotiated_header_extensions,
    receiver_rtcp_ssrc,
    send_rtcp,
    send_rtp,
    srtp_source,
    tap_receiver,
    untap_receiver,
    write_rtp,
)


@pytest.fixture(autouse=True)
def _loopback():
    with loopback_only():
        yield


def test_aiortc_version_is_the_checked_one() -> None:
    assert aiortc.__version__.startswith("1.16."), aiortc.__version__


def test_private_contract_of_aiortc() -> None:
    """Every private name aiortc_ext.rtp uses, with the shape it relies on."""
    params = list(inspect.signature(RTCDtlsTransport._handle_rtp_data).parameters)
    assert params == ["self", "data", "arrival_time_ms"]
    assert list(inspect.signature(RTCDtlsTransport._send_rtp).parameters) == ["self", "data"]
    assert inspect.iscoroutinefunction(RTCDtlsTransport._send_rtp)
    assert list(inspect.signature(RtpRouter.route_rtp).parameters) == ["self", "packet"]
    assert list(inspect.signature(RtpRouter.register_sender).parameters) == [
        "self", "sender", "ssrc"]
    assert "self.ssrc_table.get(packet.ssrc)" in inspect.getsource(RtpRouter.route_rtcp)
    assert list(inspect.signature(RTCRtpReceiver._handle_rtcp_packet).parameters) == [
        "self", "packet"]
    assert list(inspect.signature(RTCRtpSender._handle_rtcp_packet).parameters) == [
        "self", "packet"]
    assert list(inspect.signature(RTCRtpSender._run_rtcp).parameters) == ["self"]
    # The transport must look the dispatch method up on the instance (so a tap can shadow it),
    # and the sender must start its RTCP loop through self._run_rtcp.
    assert "self._handle_rtp_data(" in inspect.getsource(RTCDtlsTransport._recv_next)
    assert "self._run_rtcp()" in inspect.getsource(RTCRtpSender.send)
    # aioice hands each non-STUN datagram to the connection's data_received, which queues it.
    assert "self.receiver.data_received(data, self.local_candidate.component)" in \
        inspect.getsource(aioice.ice.StunProtocol.datagram_received)
    assert list(inspect.signature(aioice.ice.Connection.data_received).parameters) == [
        "self", "data", "component"]
    assert list(inspect.signature(aioice.ice.StunProtocol.datagram_received).parameters) == [
        "self", "data", "addr"]
    assert "for protocol in self._protocols:" in inspect.getsource(aioice.ice.Connection.close)
    recv = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "self._rx_srtp.unprotect(data)" in recv and "self.__rx_packets += 1" in recv
    assert "self._handle_rtcp_packet(" not in inspect.getsource(RTCRtpSender._run_rtcp)
    # write_rtp does what _send_rtp does, through aioice's nominated pair.
    send = inspect.getsource(RTCDtlsTransport._send_rtp)
    assert "self._tx_srtp.protect(data)" in send and "self.__tx_packets += 1" in send
    assert "active_pair = self._nominated.get(component)" in inspect.getsource(
        aioice.ice.Connection.sendto)
    assert "self.transport.sendto(data, addr)" in inspect.getsource(
        aioice.ice.StunProtocol.send_data)
    route = inspect.getsource(RTCDtlsTransport._handle_rtcp_data)
    assert "recipient._handle_rtcp_packet(packet)" in route
    # direct_sink hands native code libsrtp 2's protect and the session write_rtp uses.
    ffi = pylibsrtp._binding.ffi
    assert ffi.typeof(pylibsrtp._binding.lib.srtp_protect).cname == (
        "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)")
    session = pylibsrtp.Session(pylibsrtp.Policy(
        key=bytes(30), ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    assert ffi.typeof(session._srtp).cname == "struct srtp_ctx_t_ * *"
    # The tap decrypts with libsrtp 2's unprotect on the receiving session the same way.
    assert ffi.typeof(pylibsrtp._binding.lib.srtp_unprotect).cname == (
        "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)")
    assert "_rx_srtp" in inspect.getsource(RTCDtlsTransport)


_KEY = bytes(range(30))


def _inbound() -> pylibsrtp.Session:
    return pylibsrtp.Session(pylibsrtp.Policy(key=_KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 2000), st.booleans(),
                          st.integers(0, 3)), min_size=1, max_size=30))
def test_srtp_source_decrypts_as_pylibsrtp(packets: list[tuple[int, int, bool, int]]) -> None:
    """The native decryptor of the tap against pylibsrtp's own unprotect (the oracle), each on
    its own session with the same key, fed the same datagrams: genuine, replayed, tampered with,
    or not SRTP at all. Same packet out, or both refuse."""
    sender = pylibsrtp.Session(pylibsrtp.Policy(
        key=_KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    oracle, native_session = _inbound(), _inbound()
    source = srtp_source(native_session)
    sent: list[bytes] = []
    for seq, size, tamper, kind in packets:
        if kind == 3 and sent:
            datagram = sent[seq % len(sent)]  # a replay
        else:
            rtp = struct.pack("!BBHII", 0x80, 96, seq, seq * 3000, 1234) + bytes(size % 1200)
            try:
                datagram = sender.protect(rtp) if kind else rtp[:12 + size % 7]
            except pylibsrtp.Error:  # a sequence number this sender protected already
                continue
            sent.append(datagram)
        if tamper and len(datagram) > 12:
            datagram = datagram[:-1] + bytes([datagram[-1] ^ 1])
        try:
            expected: bytes | None = oracle.unprotect(datagram)
        except pylibsrtp.Error:
            expected = None
        assert source.unprotect(datagram) == expected


def test_statistics_and_nack_generator_need_only_sequence_number_and_timestamp() -> None:
    class Header:
        __slots__ = ("sequence_number", "timestamp")

        def __init__(self, sequence_number: int, timestamp: int) -> None:
            self.sequence_number, self.timestamp = sequence_number, timestamp

    stats, nacks = StreamStatistics(90000), NackGenerator()
    for seq in (10, 11, 14):
        stats.add(Header(seq, seq * 3000))
        nacks.add(Header(seq, seq * 3000))
    assert (stats.packets_received, stats.packets_lost, stats.max_seq) == (3, 2, 14)
    assert nacks.missing == {12, 13}


async def _pair() -> tuple[RTCPeerConnection, RTCPeerConnection]:
    return RTCPeerConnection(), RTCPeerConnection()


async def test_tap_delivers_raw_rtp_and_sr_instead_of_decoding() -> None:
    pub, sfu = await _pair()
    tone = ToneTrack(440)
    pub_sender = pub.addTrack(tone)
    await negotiate(pub, sfu)
    transceiver: RTCRtpTransceiver = sfu.getTransceivers()[0]
    receiver = transceiver.receiver
    # Private state is in place once negotiation has run.
    assert transceiver._codecs and transceiver._headerExtensions
    assert receiver_rtcp_ssrc(receiver) == transceiver.sender._ssrc
    assert isinstance(transceiver.sender._rtx_ssrc, int)
    assert isinstance(receiver.transport._rtp_router, RtpRouter)
    assert hasattr(receiver.transport, "_rtp_header_extensions_map")

    packets: list[bytes] = []
    reports: list[RtcpSrPacket] = []
    got_sr = asyncio.Event()

    def on_rtp(data: bytes, arrival_ms: int) -> None:
        # On aiortc's clock (milliseconds since 1900), however the packet was taken.
        assert isinstance(arrival_ms, int) and abs(arrival_ms - clock.current_ms()) < 1000
        packets.append(data)

    async def on_rtcp(packet) -> None:
        if isinstance(packet, RtcpSrPacket):
            reports.append(packet)
            got_sr.set()

    tap_receiver(receiver, on_rtp, on_rtcp)
    try:
        await wait_connected(pub, sfu)
        await asyncio.wait_for(got_sr.wait(), 10)
        assert len(packets) > 10
        codecs = {c.payloadType: c for c in negotiated_codecs(transceiver)}
        for data in packets:
            packet = RtpPacket.parse(data)
            assert packet.ssrc == pub_sender._ssrc
            assert codecs[packet.payload_type].mimeType == "audio/opus"
        assert reports[0].ssrc == pub_sender._ssrc
        # The decoder saw none of it.
        assert receiver.track._queue.empty()
        uris = {e.uri for e in negotiated_header_extensions(transceiver)}
        assert "urn:ietf:params:rtp-hdrext:ssrc-audio-level" in uris

        # Untapped, the receiver decodes again: aiortc's own path is restored.
        # Once its SSRC was known, the stream was decrypted in aioice's datagram callback.
        connection = receiver.transport.transport._connection
        assert "data_received" in vars(connection)
        # RTP went past aioice's STUN parsing, from every socket of the connection.
        assert connection._protocols and all(
            "datagram_received" in vars(p) for p in connection._protocols)
        untap_receiver(receiver)
        assert "_handle_rtp_data" not in vars(receiver.transport)
        assert "data_received" not in vars(connection)
        assert not any("datagram_received" in vars(p) for p in connection._protocols)
        frame = await asyncio.wait_for(receiver.track.recv(), 10)
        assert frame.sample_rate == 48000
    finally:
        await pub.close()
        await sfu.close()


def _pcmu_packet(ssrc: int, seq: int, ts: int, payload_type: int = 0) -> bytes:
    # 20 ms of mu-law silence (0xFF).
    return struct.pack("!BBHII", 0x80, payload_type, seq, ts, ssrc) + b"\xff" * 160


async def test_attached_sender_carries_raw_rtp_and_reports_feedback() -> None:
    sfu, sub = await _pair()
    transceiver = sfu.addTransceiver(ForwardedTrack("audio"), direction="sendonly")
    transceiver.setCodecPreferences(
        [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/PCMU"])
    sender = transceiver.sender
    feedback: list = []
    got_pli, got_rr = asyncio.Event(), asyncio.Event()
    sent = {"packets": 0}

    async def on_rtcp(packet) -> None:
        feedback.append(packet)
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            got_pli.set()
        if isinstance(packet, RtcpRrPacket):
            got_rr.set()

    def info() -> dict[int, RtcpSenderInfo]:
        if not sent["packets"]:
            return {}
        return {sender._ssrc: RtcpSenderInfo(
            ntp_timestamp=1 << 32, rtp_timestamp=1000, packet_count=sent["packets"],
            octet_count=160 * sent["packets"])}

    attach_sender(sender, on_rtcp, info)
    tracks: list = []
    sub.on("track", tracks.append)
    await negotiate(sfu, sub)
    try:
        await wait_connected(sfu, sub)
        ssrc = sender._ssrc
        for i in range(100):
            packet = _pcmu_packet(ssrc, 100 + i, 160 * i)
            # Both ways of sending: the coroutine through aiortc, and the synchronous one.
            assert (write_rtp(sender.transport, packet) if i % 2
                    else await send_rtp(sender.transport, packet))
            sent["packets"] += 1
            if i % 10 == 0:
                await asyncio.sleep(0.02)
        frame = await asyncio.wait_for(tracks[0].recv(), 10)
        assert frame.sample_rate == 8000
        with pytest.raises(RuntimeError):
            attach_sender(sender, on_rtcp, info)
        # Feedback from the subscriber's side reaches the SFU's handler.
        sub_receiver = sub.getTransceivers()[0].receiver
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=receiver_rtcp_ssrc(sub_receiver),
                             media_ssrc=ssrc)
        assert await send_rtcp(sub_receiver.transport, [pli])
        await asyncio.wait_for(got_pli.wait(), 10)
        await asyncio.wait_for(got_rr.wait(), 10)
        # The subscriber saw the SR built from `info`, not aiortc's encoder counters.
        for _ in range(100):
            stats = await sub_receiver.getStats()
            remote = [s for s in stats.values() if s.type == "remote-outbound-rtp"]
            if remote:
                break
            await asyncio.sleep(0.1)
        assert remote and remote[0].packetsSent == sent["packets"]
    finally:
        # close() returns only if the replaced RTCP loop set the event stop() waits on.
        await asyncio.wait_for(sfu.close(), 10)
        await sub.close()


async def test_hooked_sends_run_at_once_or_finish_later() -> None:
    from rtcroom.aiortc_ext.rtp import _run_now

    done: list[str] = []

    async def immediate() -> None:
        done.append("immediate")

    gate = asyncio.get_running_loop().create_future()

    async def waits() -> None:
        done.append(f"waited for {await gate}")

    _run_now(immediate())
    assert done == ["immediate"]  # no task, no loop iteration needed
    _run_now(waits())
    await asyncio.sleep(0)
    assert done == ["immediate"]
    gate.set_result("gate")
    for _ in range(5):
        await asyncio.sleep(0)
    assert done == ["immediate", "waited for gate"]
