"""Pacing what the SFU sends one subscriber: rtcroom's leaky-bucket pacer (src/native/pacer/)
between the forwarder's rewriting and the leg's SRTP and socket.

Video and retransmissions go through it, so a keyframe forwarded to many subscribers leaves to
each at the subscriber's pace (target bitrate x the pacing factor, with libwebrtc's 40 ms burst
allowance) instead of as one burst; audio goes at once (small packets, and the most sensitive to
delay).

Where the connection can be sent to natively (see ``rtcroom.aiortc_ext.rtp.direct_sink``) the
pacer lives in the connection's native :class:`Sink`, which the video forwarders send through:
a packet that fits the budget while nothing waits leaves inside the same native call that
rewrote it (one budget check is all pacing costs then), and only what is over the budget, a
keyframe's burst, waits in the sink. One asyncio timer per event loop (:func:`release`) drains
the sinks that have packets waiting, at their next send time. Elsewhere (DSCP marking per
packet, a TURN relay) the same pacer core runs under :class:`rtcroom.pacer.PacedSender`, which
sends through ``write_rtp``."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import RTCDtlsTransport

from rtcroom.aiortc_ext.rtp import DirectSink, direct_sink, write_rtp
from rtcroom.pacer import PacedSender, PacketClass
from rtcroom.server.sfu.forwarder import Sink, native_sink

__all__ = ["BURST", "SubscriberPacer", "paced_by", "release"]

BURST = 0.04
"""Seconds of the pacing rate a connection may send at once before packets wait (libwebrtc's
burst interval): a frame's packets go out together, a keyframe's beyond that are spread."""

EARLY = 0.0005
"""How far ahead of its slot a waiting packet may leave (as :class:`PacedSender`'s ``early``):
asyncio's timers wake at millisecond granularity."""

_QUEUED_FIRST = 2
"""``Sink.send_paced``'s outcome for a packet queued into an empty queue: drain from now on."""

_by_transport: weakref.WeakKeyDictionary[RTCDtlsTransport, SubscriberPacer] = (
    weakref.WeakKeyDictionary())


def paced_by(transport: RTCDtlsTransport) -> SubscriberPacer | None:
    """The pacer of the subscriber connection `transport` belongs to, if it is paced."""
    return _by_transport.get(transport)


def _now_us() -> int:
    # The clock of forward_all's `now` (time.monotonic()), and of asyncio's loop.time().
    return round(time.monotonic() * 1e6)


class _Releaser:
    """Drains the paced sinks of one event loop that have packets waiting, each at its next
    send time, with one timer for all of them (none while nothing waits)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._sinks: set[Sink] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._at = 0.0

    def add(self, sinks: Iterable[Sink]) -> None:
        for sink in sinks:
            at = sink.next_send_time()
            if at is not None:
                self._sinks.add(sink)
                self._schedule(at)

    def _schedule(self, at_us: int) -> None:
        when = at_us / 1e6 - EARLY
        if self._timer is not None:
            if when >= self._at:
                return
            self._timer.cancel()
        self._at = when
        self._timer = self._loop.call_at(when, self._run)

    def _run(self) -> None:
        self._timer = None
        now_us = _now_us() + round(EARLY * 1e6)
        following = None
        for sink in list(self._sinks):
            at = sink.drain(now_us)  # None once empty, or closed
            if at is None:
                self._sinks.discard(sink)
            elif following is None or at < following:
                following = at
        if following is not None:
            self._schedule(following)


_releasers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Releaser] = (
    weakref.WeakKeyDictionary())


def release(sinks: Iterable[Sink]) -> None:
    """Drain `sinks` (paced sinks whose queue just started: ``forward_all``'s third result) at
    their next send times, until they are empty."""
    loop = asyncio.get_running_loop()
    releaser = _releasers.get(loop)
    if releaser is None:
        releaser = _releasers[loop] = _Releaser(loop)
    releaser.add(sinks)


class SubscriberPacer:
    """Paces one subscriber connection; :meth:`rtcroom.server.sfu.Router.pace` makes it.
    ``on_change`` is called when the transports it paces or its :attr:`sink` change (the router
    then moves the connection's video legs onto it)."""

    def __init__(self, pc: RTCPeerConnection, target_bitrate: int,
                 on_change: Callable[[], None]) -> None:
        self._pc = pc
        self._on_change = on_change
        self._target_bitrate = target_bitrate
        self._paced = PacedSender(self._send, target_bitrate, burst=BURST, early=EARLY)
        self._paced.start()
        self._transports: list[RTCDtlsTransport] = []
        self._direct: DirectSink | None = None
        self.sink: Sink | None = None
        """The connection's native sink, pacing, while it can be sent to natively: the video
        forwarders send through it."""
        self._counts_before = (0, 0, 0)
        """Sent, delayed and dropped packets of the sinks replaced so far."""
        self.closed = False
        pc.on("connectionstatechange", self._connection_state)
        self._connection_state()

    @property
    def target_bitrate(self) -> int:
        return self._target_bitrate

    @target_bitrate.setter
    def target_bitrate(self, value: int) -> None:
        if value != self._target_bitrate:
            self._target_bitrate = value
            self._paced.target_bitrate = value
            if self.sink is not None:
                self.sink.set_target_bitrate(value, _now_us())

    def _counts(self) -> tuple[int, int, int]:
        sent, delayed, dropped = self._counts_before
        sink = self.sink
        if sink is not None:
            sent += sink.sent_packets
            delayed += sink.delayed_packets
            dropped += sink.dropped_packets
        return sent, delayed, dropped

    @property
    def sent_packets(self) -> int:
        """Video packets and retransmissions sent, at once or after waiting."""
        return self._paced.sent_packets + self._counts()[0]

    @property
    def delayed_packets(self) -> int:
        """Packets of the native sinks that waited for the budget before they left."""
        return self._counts()[1]

    def dropped_packets(self) -> int:
        """Packets the pacer's bounded queues dropped (video and retransmissions)."""
        return (self._paced.dropped_packets(PacketClass.VIDEO)
                + self._paced.dropped_packets(PacketClass.RETRANSMISSION) + self._counts()[2])

    def enqueue(self, data: bytes, retransmission: bool = False,
                abs_send_time_id: int | None = None) -> None:
        """Send a video packet (or a retransmission) at the connection's pace. Its
        abs-send-time extension, if `abs_send_time_id` names it, is rewritten when it leaves."""
        if self.closed:
            return
        sink = self.sink
        if sink is None:
            self._paced.enqueue(data, "video", retransmission=retransmission)
            return
        packet_class = PacketClass.RETRANSMISSION if retransmission else PacketClass.VIDEO
        if sink.send_paced(data, packet_class, _now_us(),
                           -1 if abs_send_time_id is None else abs_send_time_id) == _QUEUED_FIRST:
            release((sink,))

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
        if direct == self._direct:
            return
        old = self.sink
        if old is not None:
            # Before its SRTP session may go: a closed sink sends nothing, and drops its queue.
            self._counts_before = self._counts()
            old.close()
        self._direct = direct
        self.sink = None
        if direct is not None:
            sink = native_sink(direct)
            sink.pace(self._target_bitrate, _now_us(), burst_us=round(BURST * 1e6))
            self.sink = sink
        self._on_change()

    def _send(self, data: bytes, packet_class: PacketClass, due_us: int) -> Any:
        if self._transports:
            write_rtp(self._transports[0], data)
