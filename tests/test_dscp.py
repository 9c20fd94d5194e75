"""Native traffic-class socket options and per-packet marking, read back from real sockets and
captured on the loopback wire; Python's own socket calls are the oracle."""

from __future__ import annotations

import socket
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rtcroom import dscp
from wire import LoopbackCapture


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
@pytest.mark.parametrize("value", [dscp.AUDIO_TRAFFIC_CLASS, dscp.VIDEO_TRAFFIC_CLASS, 0])
def test_set_and_read_back(family: int, value: int) -> None:
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM)
    except OSError as exc:
        pytest.skip(f"no {family.name} sockets here: {exc}")
    with sock:
        assert dscp.set_traffic_class(sock, value)
        assert dscp.get_traffic_class(sock) == value
        assert dscp.get_traffic_class(sock.fileno()) == value


def test_closed_socket() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fd = sock.fileno()
    sock.close()
    with pytest.raises(ValueError, match="closed"):
        dscp.set_traffic_class(sock, 0xB8)
    with pytest.raises(ValueError, match="closed or not a socket"):
        dscp.get_traffic_class(fd)


def test_not_a_socket(tmp_path: object) -> None:
    import os

    r, w = os.pipe()
    try:
        with pytest.raises(ValueError, match="not a socket"):
            dscp.set_traffic_class(r, 0xB8)
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no AF_UNIX on this platform")
def test_unsupported_family() -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, \
            pytest.raises(ValueError, match="IPv4 and IPv6 sockets only"):
        dscp.set_traffic_class(sock, 0xB8)


@pytest.mark.parametrize("value", [-1, 256])
def test_value_out_of_range(value: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            pytest.raises(ValueError, match="0..255"):
        dscp.set_traffic_class(sock, value)


# --- per-packet marking, against Python's own socket calls as the oracle ----------------------
FAMILIES = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}
RECV_OPTION = {socket.AF_INET: (socket.IPPROTO_IP, socket.IP_RECVTOS),
               socket.AF_INET6: (socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS)}
SEND_OPTION = {socket.AF_INET: (socket.IPPROTO_IP, socket.IP_TOS),
               socket.AF_INET6: (socket.IPPROTO_IPV6, socket.IPV6_TCLASS)}


def udp(family: int, bind: bool = False) -> socket.socket:
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM)
    except OSError as exc:
        pytest.skip(f"no {socket.AddressFamily(family).name} sockets here: {exc}")
    if bind:
        sock.bind((FAMILIES[family], 0))
        sock.setsockopt(*RECV_OPTION[family], 1)
        sock.settimeout(5)
    return sock


def received_class(receiver: socket.socket) -> tuple[bytes, int]:
    data, ancillary, _, _ = receiver.recvmsg(65535, socket.CMSG_SPACE(4))
    (_, _, value), = ancillary
    return data, int.from_bytes(value[:1] if len(value) == 1 else value[:4], sys.byteorder)


def python_send_marked(sock: socket.socket, data: bytes, addr: tuple[str, int],
                       traffic_class: int) -> None:
    """The oracle: the same datagram sent with Python's sendmsg and ancillary data."""
    level, name = SEND_OPTION[sock.family]
    sock.sendmsg([data], [(level, name, traffic_class.to_bytes(4, sys.byteorder))], 0, addr)


@given(family=st.sampled_from(list(FAMILIES)), value=st.integers(0, 255))
@settings(max_examples=100, deadline=None)
def test_set_and_get_match_python_socket_options(family: int, value: int) -> None:
    with udp(family) as sock:
        assert dscp.set_traffic_class(sock, value)
        assert sock.getsockopt(*SEND_OPTION[family]) == value
        sock.setsockopt(*SEND_OPTION[family], 255 - value)
        assert dscp.get_traffic_class(sock) == 255 - value


@pytest.mark.skipif(sys.platform != "linux", reason="per-packet IP_TOS is a Linux feature")
@given(family=st.sampled_from(list(FAMILIES)), value=st.integers(0, 255),
       socket_value=st.integers(0, 255), data=st.binary(max_size=1400))
@settings(max_examples=100, deadline=None)
def test_send_marked_matches_python_sendmsg(family: int, value: int, socket_value: int,
                                            data: bytes) -> None:
    with udp(family, bind=True) as receiver, udp(family) as sender:
        dscp.set_traffic_class(sender, socket_value)
        addr = receiver.getsockname()[:2]
        assert dscp.send_marked(sender, data, addr, value) is dscp.SendResult.SENT
        python_send_marked(sender, data, addr, value)
        assert received_class(receiver) == received_class(receiver) == (data, value)
        sender.sendto(b"after", addr)
        # The socket's own class is untouched.
        assert received_class(receiver) == (b"after", socket_value)
        assert dscp.get_traffic_class(sender) == socket_value


@pytest.mark.skipif(sys.platform != "linux", reason="per-packet IP_TOS is a Linux feature")
def test_ipv4_peer_of_a_dual_stack_socket() -> None:
    with udp(socket.AF_INET, bind=True) as receiver, udp(socket.AF_INET6) as sender:
        addr = receiver.getsockname()
        assert dscp.send_marked(sender, b"x", addr, 0xB8) is dscp.SendResult.SENT
        assert received_class(receiver) == (b"x", 0xB8)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_marks_on_the_wire(family: int) -> None:
    """What a capture of lo sees: the socket-wide class, and per-packet classes over it."""
    with LoopbackCapture() as capture, udp(family, bind=True) as receiver, \
            udp(family) as sender:
        sender.bind((FAMILIES[family], 0))
        addr = receiver.getsockname()[:2]
        dscp.set_traffic_class(sender, dscp.VIDEO_TRAFFIC_CLASS)
        sender.sendto(b"socket-wide", addr)
        per_packet = dscp.send_marked(sender, b"per-packet", addr, dscp.AUDIO_TRAFFIC_CLASS)
        for _ in range(2 if per_packet is dscp.SendResult.SENT else 1):
            receiver.recv(100)
        seen = {d.payload: d.traffic_class for d in capture.datagrams()
                if d.src[1] == sender.getsockname()[1]}
    assert seen[b"socket-wide"] == dscp.VIDEO_TRAFFIC_CLASS
    if per_packet is dscp.SendResult.UNSUPPORTED:
        pytest.skip("no per-packet marking for this family here; the socket-wide mark was seen")
    assert seen[b"per-packet"] == dscp.AUDIO_TRAFFIC_CLASS


def test_send_marked_bad_arguments() -> None:
    with udp(socket.AF_INET) as sock:
        with pytest.raises(ValueError, match="numeric IP address"):
            dscp.send_marked(sock, b"x", ("localhost", 9), 0xB8)
        with pytest.raises(ValueError, match="numeric IP address"):
            dscp.send_marked(sock, b"x", ("::1", 9), 0xB8)
        with pytest.raises(ValueError, match="port"):
            dscp.send_marked(sock, b"x", ("127.0.0.1", 70000), 0xB8)
        with pytest.raises(ValueError, match="0..255"):
            dscp.send_marked(sock, b"x", ("127.0.0.1", 9), 256)
    with pytest.raises(ValueError, match="closed"):
        dscp.send_marked(sock, b"x", ("127.0.0.1", 9), 0xB8)
