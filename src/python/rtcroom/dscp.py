"""DSCP marking of media sockets (the reference's ``enable_dscp``).

The native layer (src/native/dscp/) sets and reads the IP traffic class byte by descriptor:
``IP_TOS`` on IPv4 sockets, ``IPV6_TCLASS`` on IPv6 ones. A DSCP value sits in the top six bits
of that byte, so EF (46) is the byte 0xb8 and AF41 (34) is 0x88.

A socket-wide setting marks everything the socket sends. With bundle, audio and video share one
socket, so :func:`send_marked` marks a single datagram instead, with the traffic class as
ancillary data to ``sendmsg``. Linux allows this for IPv4 and IPv6; macOS and the BSDs for IPv6
only; Windows not at all (its QoS goes through the qWAVE API). Where it is refused the caller
learns so (:attr:`SendResult.UNSUPPORTED`) and falls back to the socket-wide setting; see
rtcroom.aiortc_ext.dscp for the choice made there.
"""

from __future__ import annotations

import enum
import logging
import socket
from typing import Final

from rtcroom._native import dscp as _dscp

__all__ = [
    "AUDIO_TRAFFIC_CLASS",
    "VIDEO_TRAFFIC_CLASS",
    "SendResult",
    "get_traffic_class",
    "send_marked",
    "set_traffic_class",
]

logger = logging.getLogger("rtcroom.webrtc")

AUDIO_TRAFFIC_CLASS: Final = 0xB8  # DSCP EF, expedited forwarding
VIDEO_TRAFFIC_CLASS: Final = 0x88  # DSCP AF41, assured forwarding class 4, low drop


def _fd(sock: socket.socket | int) -> int:
    fd = sock if isinstance(sock, int) else sock.fileno()
    if fd < 0:
        raise ValueError("socket is closed")
    return fd


def set_traffic_class(sock: socket.socket | int, traffic_class: int) -> bool:
    """Marks every packet the socket sends with ``traffic_class`` (0..255).

    Returns False, after a logged warning, where the OS refuses the option; raises ValueError for a
    closed socket, a value out of range or a socket that is not IPv4/IPv6.
    """
    if not _dscp.set_traffic_class(_fd(sock), traffic_class):
        logger.warning("the OS refused traffic class 0x%02x on %r; packets go unmarked",
                       traffic_class, sock)
        return False
    return True


def get_traffic_class(sock: socket.socket | int) -> int:
    """The traffic class byte the socket's packets carry."""
    return _dscp.get_traffic_class(_fd(sock))


class SendResult(enum.IntEnum):
    SENT = 0
    WOULD_BLOCK = 1  # the send buffer is full; nothing was sent
    UNSUPPORTED = 2  # no per-packet marking for this socket's family on this platform


def send_marked(sock: socket.socket | int, data: bytes | bytearray | memoryview,
                addr: tuple[str, int], traffic_class: int) -> SendResult:
    """Sends one datagram to ``addr`` (numeric host, port) carrying ``traffic_class``, whatever the
    socket's own setting. Raises ValueError for a closed socket, a non-numeric host or a value out
    of range, OSError for other send failures."""
    return SendResult(_dscp.send_marked(_fd(sock), data, addr[0], addr[1], traffic_class))
