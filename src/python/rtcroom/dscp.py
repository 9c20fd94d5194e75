"""DSCP marking of media sockets (the reference's ``enable_dscp``).

The native layer (src/native/dscp/) sets and reads the IP traffic class byte by descriptor:
``IP_TOS`` on IPv4 sockets, ``IPV6_TCLASS`` on IPv6 ones. A DSCP value sits in the top six bits
of that byte, so EF (46) is the byte 0xb8 and AF41 (34) is 0x88.
"""

from __future__ import annotations

import logging
import socket
from typing import Final

from rtcroom._native import dscp as _dscp

__all__ = ["AUDIO_TRAFFIC_CLASS", "VIDEO_TRAFFIC_CLASS", "get_traffic_class", "set_traffic_class"]

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
