"""Capture of UDP datagrams on the loopback interface with an AF_PACKET raw socket (Linux, root
or CAP_NET_RAW), to read the traffic class packets really carry on the wire."""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING, NamedTuple

import pytest

if TYPE_CHECKING:
    from typing_extensions import Self

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class Datagram(NamedTuple):
    traffic_class: int
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def parse_frame(frame: bytes) -> Datagram | None:
    """A UDP datagram from an Ethernet frame (loopback frames have a zeroed Ethernet header)."""
    ethertype = int.from_bytes(frame[12:14], "big")
    ip = frame[14:]
    if ethertype == 0x0800 and len(ip) >= 20 and ip[9] == socket.IPPROTO_UDP:
        tc, udp = ip[1], ip[(ip[0] & 0x0F) * 4:]
        src_ip, dst_ip = ip[12:16], ip[16:20]
    elif ethertype == 0x86DD and len(ip) >= 48 and ip[6] == socket.IPPROTO_UDP:
        tc, udp = ((ip[0] & 0x0F) << 4) | (ip[1] >> 4), ip[40:]
        src_ip, dst_ip = ip[8:24], ip[24:40]
    else:
        return None
    src = (str(ipaddress.ip_address(src_ip)), int.from_bytes(udp[0:2], "big"))
    dst = (str(ipaddress.ip_address(dst_ip)), int.from_bytes(udp[2:4], "big"))
    return Datagram(tc, src, dst, bytes(udp[8:int.from_bytes(udp[4:6], "big")]))


class LoopbackCapture:
    """Open it before sending; :meth:`datagrams` returns what was sent on ``lo`` since (each
    datagram once: loopback shows every frame leaving and arriving, only leaving ones are kept).
    Skips the calling test, with the reason, where raw capture is impossible."""

    def __init__(self) -> None:
        if not hasattr(socket, "AF_PACKET"):
            pytest.skip("no AF_PACKET raw sockets on this platform: cannot capture the wire")
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock.bind(("lo", 0))
        except PermissionError as exc:
            pytest.skip(f"raw capture on lo needs root or CAP_NET_RAW: {exc}")
        except OSError as exc:
            pytest.skip(f"cannot capture on the loopback interface: {exc}")
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.setblocking(False)
        self.seen: list[Datagram] = []

    def datagrams(self) -> list[Datagram]:
        while True:
            try:
                frame, addr = self.sock.recvfrom(65535)
            except BlockingIOError:
                return self.seen
            if addr[2] == PACKET_OUTGOING and (d := parse_frame(frame)) is not None:
                self.seen.append(d)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
