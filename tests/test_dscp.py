"""Native traffic-class socket options, read back from real sockets."""

from __future__ import annotations

import socket

import pytest

from rtcroom import dscp


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
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        with pytest.raises(ValueError, match="IPv4 and IPv6 sockets only"):
            dscp.set_traffic_class(sock, 0xB8)


@pytest.mark.parametrize("value", [-1, 256])
def test_value_out_of_range(value: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(ValueError, match="0..255"):
            dscp.set_traffic_class(sock, value)
