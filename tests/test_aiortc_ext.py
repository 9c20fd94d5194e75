"""rtcroom.aiortc_ext: first, that the aiortc/aioice internals it relies on are still there (an
upgrade that moves them fails here, by name); then DSCP marking and pacing on real aiortc peers
connected over loopback, read back with getsockopt and captured on the wire."""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import AsyncIterator

import aioice
import aioice.ice
import aiortc
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from rtcroom import dscp
from rtcroom.aiortc_ext import enable_dscp, enable_pacing, udp_endpoints, use_host_addresses
from rtcroom.aiortc_ext.ssrc import SenderSsrcs, packet_ssrc
from rtcroom.pacer import PacketClass
from wire import LoopbackCapture

AUDIO, VIDEO = dscp.AUDIO_TRAFFIC_CLASS, dscp.VIDEO_TRAFFIC_CLASS


# --- what aiortc_ext relies on ------------------------------------------------------------------

def parameters(fn: object) -> list[str]:
    return list(inspect.signature(fn).parameters)  # type: ignore[arg-type]


async def test_aioice_connection_keeps_its_protocols() -> None:
    connection = aioice.Connection(ice_controlling=True)
    assert connection._protocols == []
    assert parameters(aioice.ice.get_host_addresses) == ["use_ipv4", "use_ipv6"]
    send_data = aioice.ice.StunProtocol.send_data
    assert inspect.iscoroutinefunction(send_data)
    assert parameters(send_data) == ["self", "data", "addr"]
    source = inspect.getsource(aioice.Connection.sendto)
    assert "protocol.send_data(" in source, "aioice no longer sends through StunProtocol.send_data"
    assert "get_host_addresses(" in inspect.getsource(aioice.Connection.gather_candidates)


async def test_aiortc_internals() -> None:
    pc = RTCPeerConnection()
    sender = pc.addTransceiver("video").sender
    assert isinstance(sender._ssrc, int) and isinstance(sender._rtx_ssrc, int)
    dtls = sender.transport
    assert isinstance(dtls.transport.iceGatherer._connection, aioice.Connection)
    assert inspect.iscoroutinefunction(aiortc.RTCDtlsTransport._send_rtp)
    assert parameters(aiortc.RTCDtlsTransport._send_rtp) == ["self", "data"]
    # Senders reach their transport's _send_rtp through the instance, where the hook goes.
    assert "self.transport._send_rtp(" in inspect.getsource(aiortc.RTCRtpSender._run_rtp)
    # Receivers send their RTCP under the transceiver's sender SSRC.
    assert "_set_rtcp_ssrc(transceiver.sender._ssrc)" in inspect.getsource(RTCPeerConnection)
    await pc.close()


def test_packet_ssrc() -> None:
    rtp = bytes([0x80, 96, 0, 1]) + bytes(4) + (0x11223344).to_bytes(4, "big") + b"payload"
    rtcp_sr = bytes([0x80, 200, 0, 6]) + (0x55667788).to_bytes(4, "big") + bytes(20)
    assert packet_ssrc(rtp) == 0x11223344
    assert packet_ssrc(rtcp_sr) == 0x55667788
    assert packet_ssrc(b"\x00\x01\x00\x00" + bytes(16)) is None  # STUN
    assert packet_ssrc(b"\x16\xfe\xfd" + bytes(20)) is None  # DTLS
    assert packet_ssrc(rtp[:10]) is None


# --- real peers on loopback ---------------------------------------------------------------------

@pytest.fixture
async def peers() -> AsyncIterator[tuple[RTCPeerConnection, RTCPeerConnection]]:
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    yield offerer, answerer
    await offerer.close()
    await answerer.close()


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection,
                  address: str = "127.0.0.1") -> None:
    with use_host_addresses([address]):
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
    await wait_for(lambda: offerer.connectionState == answerer.connectionState == "connected")


async def wait_for(condition: object, timeout: float = 20) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


def classes_by_ssrc(capture: LoopbackCapture, port: int) -> dict[int | None, set[int]]:
    seen: dict[int | None, set[int]] = {}
    for d in capture.datagrams():
        if d.src[1] == port:
            seen.setdefault(packet_ssrc(d.payload), set()).add(d.traffic_class)
    return seen


def ssrcs(pc: RTCPeerConnection, kind: str) -> tuple[int, int]:
    sender = next(s for s in pc.getSenders() if s.kind == kind)
    return sender._ssrc, sender._rtx_ssrc


@pytest.mark.parametrize(("per_packet", "address", "paced"), [
    (True, "127.0.0.1", False),
    (False, "127.0.0.1", False),
    (True, "::1", False),
    (True, "127.0.0.1", True),
], ids=["sendmsg", "setsockopt-switch", "sendmsg-ipv6", "sendmsg-paced"])
async def test_bundled_audio_and_video_marked_per_kind(
        peers: tuple[RTCPeerConnection, RTCPeerConnection], per_packet: bool, address: str,
        paced: bool) -> None:
    offerer, answerer = peers
    if ":" in address and not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    offerer.addTrack(AudioStreamTrack())
    offerer.addTrack(VideoStreamTrack())
    marker = enable_dscp(offerer)
    if paced:
        enable_pacing(offerer, 1_000_000)  # above SRTP; the marking is below it, at the socket
    with LoopbackCapture() as capture:
        await connect(offerer, answerer, address)
        assert [e.socket.getsockname()[0] for e in udp_endpoints(offerer)] == [address]
        sock, = marker.sockets()
        if not per_packet:
            for marked in marker._sockets.values():
                marked.per_packet = False  # as on a platform without per-packet marking
        port = sock.getsockname()[1]
        audio, video = ssrcs(offerer, "audio")[0], ssrcs(offerer, "video")[0]
        await wait_for(lambda: {audio, video} <= classes_by_ssrc(capture, port).keys())
        seen = classes_by_ssrc(capture, port)
    assert seen[audio] == {AUDIO}
    assert seen[video] == {VIDEO}
    # STUN and DTLS carry the connection's default: video's, since it sends video.
    assert seen[None] == {VIDEO}
    if per_packet:
        assert dscp.get_traffic_class(sock) == VIDEO


async def test_audio_only_connection_is_all_ef(
        peers: tuple[RTCPeerConnection, RTCPeerConnection]) -> None:
    offerer, answerer = peers
    offerer.addTrack(AudioStreamTrack())
    answerer_marker = enable_dscp(answerer)
    marker = enable_dscp(offerer)
    await connect(offerer, answerer)
    assert marker.apply() == 1
    assert [dscp.get_traffic_class(s) for s in marker.sockets()] == [AUDIO]
    # The answerer sends nothing but RTCP for the audio it receives: its RTCP is under its
    # transceiver's audio sender SSRC, so it is marked audio too.
    assert answerer_marker.default_class == AUDIO
    assert [dscp.get_traffic_class(s) for s in answerer_marker.sockets()] == [AUDIO]


async def test_paced_connection_delivers_media(
        peers: tuple[RTCPeerConnection, RTCPeerConnection]) -> None:
    """Media still flows, in order, through the pacer hook (video frames decode on the far side)
    and the pacer actually carried the RTP."""
    offerer, answerer = peers
    offerer.addTrack(AudioStreamTrack())
    offerer.addTrack(VideoStreamTrack())
    received: list[aiortc.MediaStreamTrack] = []
    answerer.on("track", received.append)
    pacer = enable_pacing(offerer, 500_000)
    await connect(offerer, answerer)
    await wait_for(lambda: len(received) == 2)
    video = next(t for t in received if t.kind == "video")
    for _ in range(10):
        frame = await asyncio.wait_for(video.recv(), 20)
    assert frame.width == 640
    paced, = pacer.paced_senders()
    assert paced.sent_packets > 10
    assert paced.dropped_packets(PacketClass.VIDEO) == 0
    pacer.target_bitrate = 1_000_000
    assert paced.target_bitrate == 1_000_000
    await pacer.stop()
    transport = offerer.getSenders()[0].transport
    assert "_send_rtp" not in vars(transport)


async def test_sender_ssrcs(peers: tuple[RTCPeerConnection, RTCPeerConnection]) -> None:
    offerer, _ = peers
    offerer.addTrack(AudioStreamTrack())
    table = SenderSsrcs(offerer)

    def rtp(ssrc: int) -> bytes:
        return bytes([0x80, 96, 0, 1]) + bytes(4) + ssrc.to_bytes(4, "big")

    audio = offerer.getSenders()[0]
    assert table.lookup(rtp(audio._ssrc)) == ("audio", False)
    video = offerer.addTransceiver("video").sender  # added later: the table catches up
    assert table.lookup(rtp(video._ssrc)) == ("video", False)
    assert table.lookup(rtp(video._rtx_ssrc)) == ("video", True)
    assert table.lookup(rtp(12345)) is None
    table.add(12345, "audio")
    assert table.lookup(rtp(12345)) == ("audio", False)
    with pytest.raises(ValueError, match="media kind"):
        table.add(1, "data")  # type: ignore[arg-type]


def test_host_addresses_restored() -> None:
    original = aioice.ice.get_host_addresses
    with use_host_addresses(["127.0.0.1", "::1"]):
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(False, True) == ["::1"]
    assert aioice.ice.get_host_addresses is original


def test_aiortc_connect_task_is_guarded() -> None:
    """aiortc's private connecting task is wrapped (rtcroom.aiortc_ext.closing): an aiortc that
    renames it fails here, and at import, rather than letting its errors go unretrieved."""
    from aiortc import RTCPeerConnection

    connect = RTCPeerConnection._RTCPeerConnection__connect  # type: ignore[attr-defined]
    assert getattr(connect, "_rtcroom_no_late_start", False)
