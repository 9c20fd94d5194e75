"""Pacing what the SFU sends one subscriber: the native pacer (:class:`rtcroom.pacer.PacedSender`
over the native ``Pacer`` core) between the forwarder's rewriting and the leg's SRTP and socket.

Video and retransmissions go through it, so a keyframe forwarded to many subscribers leaves to
each at the subscriber's pace (target bitrate x the pacing factor) instead of as one burst;
audio goes at once (small packets, and the most sensitive to delay). The pacer sends through
the connection's native sink (SRTP and ``sendto`` without aiortc's coroutine chain), or through
``write_rtp`` where there is none (DSCP marking per packet, a TURN relay)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import RTCDtlsTransport

from rtcroom.aiortc_ext.rtp import DirectSink, direct_sink, write_rtp
from rtcroom.pacer import PacedSender, PacketClass
from rtcroom.server.sfu.forwarder import Sink, native_sink

__all__ = ["SubscriberPacer", "paced_by"]

_by_transport: weakref.WeakKeyDictionary[RTCDtlsTransport, SubscriberPacer] = (
    weakref.WeakKeyDictionary())


def paced_by(transport: RTCDtlsTransport) -> SubscriberPacer | None:
    """The pacer of the subscriber connection `transport` belongs to, if it is paced."""
    return _by_transport.get(transport)


class SubscriberPacer:
    """Paces one subscriber connection; :meth:`rtcroom.server.sfu.Router.pace` makes it.
    ``on_change`` is called when the transports it paces change (the router then moves the
    connection's video legs onto it)."""

    def __init__(self, pc: RTCPeerConnection, target_bitrate: int,
                 on_change: Callable[[], None]) -> None:
        self._pc = pc
        self._on_change = on_change
        self._paced = PacedSender(self._send, target_bitrate)
        self._paced.start()
        self._transports: list[RTCDtlsTransport] = []
        self._direct: DirectSink | None = None
        self._sink: Sink | None = None
        self.closed = False
        pc.on("connectionstatechange", self._connection_state)
        self._connection_state()

    @property
    def target_bitrate(self) -> int:
        return self._paced.target_bitrate

    @target_bitrate.setter
    def target_bitrate(self, value: int) -> None:
        if value != self._paced.target_bitrate:
            self._paced.target_bitrate = value

    @property
    def sent_packets(self) -> int:
        return self._paced.sent_packets

    def dropped_packets(self) -> int:
        """Packets the pacer's bounded queues dropped (video and retransmissions)."""
        return (self._paced.dropped_packets(PacketClass.VIDEO)
                + self._paced.dropped_packets(PacketClass.RETRANSMISSION))

    def enqueue(self, data: bytes, retransmission: bool = False) -> None:
        if not self.closed:
            self._paced.enqueue(data, "video", retransmission=retransmission)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._paced.close()
        self._pc.remove_listener("connectionstatechange", self._connection_state)
        self._use([])
        self._on_change()

    def _connection_state(self) -> None:
        state = self._pc.connectionState
        if state in ("closed", "failed"):
            self.close()
            return
        # Bundling leaves one transport once connected; until then, whatever the senders have.
        self._use(list({id(t.sender.transport): t.sender.transport
                        for t in self._pc.getTransceivers()}.values()))
        self._on_change()

    def _use(self, transports: list[RTCDtlsTransport]) -> None:
        for transport in self._transports:
            if _by_transport.get(transport) is self:
                del _by_transport[transport]
            transport.remove_listener("statechange", self._refresh_sink)
        self._transports = transports
        for transport in transports:
            _by_transport[transport] = self
            transport.on("statechange", self._refresh_sink)
        self._refresh_sink()

    def _refresh_sink(self) -> None:
        direct = direct_sink(self._transports[0]) if len(self._transports) == 1 else None
        if direct != self._direct:
            self._direct = direct
            self._sink = None if direct is None else native_sink(direct)

    def _send(self, data: bytes, packet_class: PacketClass, due_us: int) -> Any:
        sink = self._sink
        if sink is not None:
            sink.send(data)
        elif self._transports:
            write_rtp(self._transports[0], data)
