"""Which of a peer connection's senders an outgoing RTP or RTCP packet belongs to, by SSRC.

Works on plain and on SRTP/SRTCP packets alike: the header carrying the SSRC is not encrypted.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from aiortc import RTCPeerConnection

__all__ = ["PacketSource", "SenderSsrcs", "packet_ssrc"]

MediaKind = Literal["audio", "video"]


class PacketSource(NamedTuple):
    kind: MediaKind
    retransmission: bool


def packet_ssrc(data: bytes) -> int | None:
    """The sender SSRC of an RTP or RTCP packet, None for anything else (STUN, DTLS, ...).

    RTP and RTCP share a socket (RFC 5761); their first byte is 128..191 (RFC 7983) and the
    second byte of RTCP is a packet type 192..223, which RTP payload types avoid.
    """
    if len(data) < 8 or not 128 <= data[0] <= 191:
        return None
    if 192 <= data[1] <= 223:
        return int.from_bytes(data[4:8], "big")
    if len(data) < 12:
        return None
    return int.from_bytes(data[8:12], "big")


class SenderSsrcs:
    """SSRC -> (kind, retransmission) for a peer connection's senders, plus any SSRC registered
    with :meth:`add` (an SFU forwarding streams under its own SSRCs). Receivers send their RTCP
    under their transceiver's sender SSRC, so that is covered too."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self._pc = pc
        self._extra: dict[int, PacketSource] = {}
        self._table: dict[int, PacketSource] = {}
        self._senders_seen = -1

    def add(self, ssrc: int, kind: MediaKind, *, retransmission: bool = False) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"media kind must be 'audio' or 'video', got {kind!r}")
        self._extra[ssrc] = PacketSource(kind, retransmission)
        self._table[ssrc] = self._extra[ssrc]

    def kinds(self) -> set[str]:
        return {s.kind for s in self._table.values()} | {s.kind for s in self._pc.getSenders()}

    def lookup(self, data: bytes) -> PacketSource | None:
        ssrc = packet_ssrc(data)
        if ssrc is None:
            return None
        source = self._table.get(ssrc)
        if source is None:
            senders = self._pc.getSenders()
            # Senders are only added (renegotiation), so a new count means a table to rebuild.
            if len(senders) != self._senders_seen:
                self._rebuild(senders)
                source = self._table.get(ssrc)
        return source

    def _rebuild(self, senders: list) -> None:  # type: ignore[type-arg]
        table = {}
        for sender in senders:
            table[sender._ssrc] = PacketSource(sender.kind, False)
            table[sender._rtx_ssrc] = PacketSource(sender.kind, True)
        table.update(self._extra)
        self._table = table
        self._senders_seen = len(senders)
