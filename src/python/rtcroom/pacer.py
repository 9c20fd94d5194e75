"""Paced sending of RTP: the native leaky bucket (src/native/pacer/) driven by an asyncio task.

libwebrtc paces media so a keyframe burst does not flood the network; rtcroom does the same. The
native :class:`Pacer` only decides: packets go in with their class, and it answers when the next
one is due and which ones are due now. :class:`PacedSender` is the asyncio side: one task that
asks when the next packet is due, sleeps until then, and hands what is due to a send function
(no thread, no task or timer per packet).

Rules (the native header documents the arithmetic):

- release rate = target bitrate x pacing factor (2.5, libwebrtc's default); the target can be
  changed at any time and applies from that moment on;
- order: audio first, then retransmissions, then video; first in first out within a class;
- queue time limit (2 s): after every change the rate is raised, if needed, so that everything
  queued leaves before the oldest packet has waited that long;
- bounded queues: at most 100 audio, 500 retransmission and 3000 video packets by default; a full
  class drops its *oldest* packet to admit the new one (the oldest is the most stale: audio past
  its playout time, video the receiver recovers from by NACK or keyframe request anyway).
  :meth:`PacedSender.dropped_packets` counts them.

Timing: asyncio's timers on Linux wake at millisecond granularity, so the task wakes up to
``early`` (default 0.5 ms) before a packet is due and also sends what falls due within that
margin; each packet is released within about half a millisecond of its slot either way.

:class:`PacedSocket` is the same pacer for a connected UDP socket that rtcroom writes to itself
(no Python between the pacer and the kernel, so not for aiortc's SRTP path, which
:class:`PacedSender` serves): one native thread per socket sleeps until packets are due and sends
them with one ``sendmmsg`` per wake-up, without the GIL; on Linux, runs of equal-sized packets
in it go as UDP GSO datagrams (one trip through the kernel's stack, the same packets on the
wire). Python only copies packets in. At 10k
packets/s that takes the interpreter's per-packet and per-wake-up work out of pacing; what is
left is the kernel's (see the README's performance section).
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from rtcroom._native.pacer import Pacer, SocketSender

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["PACING_FACTOR", "PacedSender", "PacedSocket", "Pacer", "PacketClass", "SendFunction",
           "packet_class"]

logger = logging.getLogger("rtcroom.pacer")

PACING_FACTOR = 2.5


class PacketClass(enum.IntEnum):
    """Release priority, highest first (the native pacer's class numbers)."""

    AUDIO = 0
    RETRANSMISSION = 1
    VIDEO = 2


_CLASSES = tuple(PacketClass)

MediaKind = Literal["audio", "video"]

_CLASS_OF = {
    ("audio", False): PacketClass.AUDIO,
    ("audio", True): PacketClass.AUDIO,
    ("video", False): PacketClass.VIDEO,
    ("video", True): PacketClass.RETRANSMISSION,
}


def packet_class(kind: MediaKind, retransmission: bool = False) -> PacketClass:
    """The class of a packet: audio (retransmitted or not) goes first, then any retransmission,
    then video."""
    try:
        return _CLASS_OF[kind, bool(retransmission)]
    except KeyError:
        raise ValueError(f"media kind must be 'audio' or 'video', got {kind!r}") from None


# send(data, packet_class, due_us): due_us is when the pacer scheduled the packet, in microseconds
# of the event loop's clock (loop.time() x 1e6). A coroutine function is awaited before the next
# packet goes.
SendFunction = Callable[[bytes, PacketClass, int], "Awaitable[Any] | None"]


class PacerCore(Protocol):
    """What :class:`PacedSender` needs from a pacer: the native :class:`Pacer`'s interface (the
    plain-Python twin in the tests has it too)."""

    def set_target_bitrate(self, target_bitrate: int, now_us: int) -> None: ...
    def enqueue_size(self, size: int, packet_class: int, now_us: int) -> bool: ...
    def enqueue_sizes(self, sizes: list[int], packet_class: int, now_us: int) -> int: ...
    def next_send_time(self) -> int | None: ...
    def pop_due_classes(self, now_us: int) -> list[tuple[int, int]]: ...
    def queued_packets(self, packet_class: int | None = None) -> int: ...
    def dropped_packets(self, packet_class: int) -> int: ...


class PacedSender:
    """Sends packets through ``send`` at the pace of a :class:`Pacer`.

    Use it as an async context manager (or call :meth:`start` and :meth:`stop`) inside a running
    event loop. Options:

    - ``enabled=False``: no pacing; :meth:`enqueue` sends at once (``send`` must then be a plain
      function);
    - ``target_bitrate`` (bits/s) and ``pacing_factor``: packets leave at their product;
    - ``burst`` (s, 0 to 1): debt allowed before packets wait (libwebrtc allows 0.04);
    - ``queue_time_limit`` (s, 0 for none): the longest a packet should wait;
    - ``max_packets``: queue bounds for audio, retransmissions and video;
    - ``early`` (s, 0 to 0.01): how far ahead of its slot a packet may leave;
    - ``pacer_type``: the decision core, the native :class:`Pacer` unless a test or benchmark
      passes the plain-Python twin.
    """

    def __init__(
        self,
        send: SendFunction,
        target_bitrate: int,
        *,
        enabled: bool = True,
        pacing_factor: float = PACING_FACTOR,
        burst: float = 0.0,
        queue_time_limit: float = 2.0,
        max_packets: tuple[int, int, int] = (100, 500, 3000),
        early: float = 0.0005,
        pacer_type: Callable[..., PacerCore] = Pacer,
    ) -> None:
        if early < 0 or early > 0.01:
            raise ValueError(f"early must be 0 to 10 ms, got {early!r} s")
        self._send = send
        self._enabled = enabled
        self._early_us = round(early * 1e6)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._idle = False  # the task waits for a packet, with no timer set
        self._core = pacer_type(
            target_bitrate,
            0,
            pacing_factor=pacing_factor,
            burst_us=round(burst * 1e6),
            queue_time_limit_us=round(queue_time_limit * 1e6),
            max_packets=max_packets,
        )
        self._target_bitrate = target_bitrate
        self._sent = 0
        # The packets themselves stay here, one FIFO per class, mirroring the core's queues
        # (which hold only sizes): no bytes copied into the core or back.
        self._queues: tuple[collections.deque[bytes], ...] = tuple(
            collections.deque() for _ in _CLASSES)

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def target_bitrate(self) -> int:
        """Target bitrate in bits per second; packets leave at this times the pacing factor."""
        return self._target_bitrate

    @target_bitrate.setter
    def target_bitrate(self, value: int) -> None:
        self._core.set_target_bitrate(value, self._now_us())
        self._target_bitrate = value
        self._wake()  # a higher rate may make the next packet due sooner

    @property
    def sent_packets(self) -> int:
        """Packets handed to the send function so far (paced or not)."""
        return self._sent

    def queued_packets(self, packet_class: PacketClass | None = None) -> int:
        return self._core.queued_packets(packet_class)

    def dropped_packets(self, packet_class: PacketClass) -> int:
        """Packets of this class dropped because its queue was full."""
        return self._core.dropped_packets(packet_class)

    def enqueue(self, data: bytes, kind: MediaKind, *, retransmission: bool = False) -> None:
        """Queues a packet (sends it at once when pacing is disabled)."""
        try:
            cls = _CLASS_OF[kind, retransmission]
        except KeyError:  # a truthy non-bool retransmission flag, or a bad kind (which raises)
            cls = packet_class(kind, retransmission)
        if not self._enabled:
            self._sent += 1
            result = self._send(data, cls, self._now_us())
            if result is not None:
                raise TypeError("with pacing disabled the send function must not be a coroutine "
                                "function: enqueue() cannot await it")
            return
        if self._loop is None:
            raise RuntimeError("PacedSender is not started")
        queue = self._queues[cls]
        if self._core.enqueue_size(len(data), cls, int(self._loop.time() * 1e6)):
            queue.popleft()
            logger.debug("pacer queue for %s full: dropped its oldest packet", cls.name)
        queue.append(data)
        if self._idle:
            self._wake()

    def enqueue_many(self, packets: Iterable[bytes], kind: MediaKind, *,
                     retransmission: bool = False) -> None:
        """Queues packets of one kind at once (a frame's packets: one call into the pacer for
        all of them); sends them at once when pacing is disabled."""
        packets = list(packets)
        if not self._enabled:
            for data in packets:
                self.enqueue(data, kind, retransmission=retransmission)
            return
        cls = packet_class(kind, retransmission)
        if self._loop is None:
            raise RuntimeError("PacedSender is not started")
        dropped = self._core.enqueue_sizes([len(data) for data in packets], cls,
                                           int(self._loop.time() * 1e6))
        queue = self._queues[cls]
        queue.extend(packets)
        # Both sides drop oldest first: what the core dropped from its queue goes from here.
        for _ in range(dropped):
            queue.popleft()
        if dropped:
            logger.debug("pacer queue for %s full: dropped its %d oldest packets", cls.name,
                         dropped)
        if self._idle and packets:
            self._wake()

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("PacedSender already started")
        self._loop = asyncio.get_running_loop()
        if self._enabled:
            self._task = self._loop.create_task(self._run(), name="rtcroom pacer")

    def close(self) -> None:
        """Stops releasing (the task ends at its next step); packets still queued are
        discarded. :meth:`stop` also waits for the task to end."""
        if self._task is not None:
            self._task.cancel()
        self._loop = None

    async def stop(self) -> None:
        """Stops releasing and waits for the task to end; packets still queued are discarded."""
        task, self._task, self._loop = self._task, None, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _now_us(self) -> int:
        loop = self._loop or asyncio.get_running_loop()
        return int(loop.time() * 1e6)

    def _wake(self) -> None:
        self._idle = False
        if self._waiter is not None:
            _resolve(self._waiter)

    async def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        core, send, early_us, classes = self._core, self._send, self._early_us, _CLASSES
        queues = self._queues
        try:
            while True:
                batch = core.pop_due_classes(int(loop.time() * 1e6) + early_us)
                self._sent += len(batch)
                for cls, due_us in batch:
                    try:
                        result = send(queues[cls].popleft(), classes[cls], due_us)
                        if result is not None:
                            await result
                    except (ConnectionError, OSError) as exc:
                        # The transport's own trouble (not connected yet, buffer full): this
                        # packet is lost, as it would be on the network; the next may go.
                        logger.debug("pacer: send failed, packet dropped: %s", exc)
                next_us = core.next_send_time()
                self._waiter = waiter = loop.create_future()
                if next_us is None:
                    self._idle = True
                    await waiter
                    continue
                timer = loop.call_at((next_us - early_us) / 1e6, _resolve, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
        except Exception:
            # A bug in the send function: say so loudly rather than stall media silently.
            logger.exception("pacer send function failed; pacing stopped")
            raise


class PacedSocket:
    """Paces packets onto a connected datagram socket from one native thread.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`); it needs no event loop,
    and its methods never block on the network. The thread sends with ``MSG_DONTWAIT``: a packet
    the kernel refuses (buffer full, destination unreachable) is lost, as on the network, and
    counted in :attr:`send_errors`. The native side keeps its own duplicate of the socket's
    descriptor, so closing ``sock`` first does not redirect its sends (on Windows, which cannot
    duplicate a socket descriptor, stop it before closing the socket).

    Options as :class:`PacedSender`'s (``enabled=False`` sends at once with ``sock.send``), and:

    - ``tolerance`` (s, 0 to 0.01): how far from its slot a packet may leave, either way; a busy
      sender wakes about once per 1.5 tolerances, so this trades accuracy for wake-ups;
    - ``record``: keep a log of releases for :meth:`take_releases` (benchmarks and tests).
    """

    def __init__(
        self,
        sock: socket.socket,
        target_bitrate: int,
        *,
        enabled: bool = True,
        pacing_factor: float = PACING_FACTOR,
        burst: float = 0.0,
        queue_time_limit: float = 2.0,
        max_packets: tuple[int, int, int] = (100, 500, 3000),
        tolerance: float = 0.0005,
        record: bool = False,
    ) -> None:
        if not 0 <= tolerance <= 0.01:
            raise ValueError(f"tolerance must be 0 to 10 ms, got {tolerance!r} s")
        self._sock = sock  # keeps the descriptor open where the native side cannot dup it
        self._enabled = enabled
        self._direct_sent = self._direct_errors = 0
        self._native = SocketSender(
            sock.fileno(),
            target_bitrate,
            pacing_factor=pacing_factor,
            burst_us=round(burst * 1e6),
            queue_time_limit_us=round(queue_time_limit * 1e6),
            max_packets=max_packets,
            tolerance_us=round(tolerance * 1e6),
            record=record,
        )

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def target_bitrate(self) -> int:
        """Target bitrate in bits per second; packets leave at this times the pacing factor."""
        return self._native.target_bitrate

    @target_bitrate.setter
    def target_bitrate(self, value: int) -> None:
        self._native.set_target_bitrate(value)

    @property
    def sent_packets(self) -> int:
        """Packets the kernel accepted so far (paced or not)."""
        return self._native.sent_packets + self._direct_sent

    @property
    def send_errors(self) -> int:
        """Packets the kernel refused: lost."""
        return self._native.send_errors + self._direct_errors

    @property
    def wakeups(self) -> int:
        """Times the native thread woke up to send (one ``sendmmsg`` each)."""
        return self._native.wakeups

    def queued_packets(self, packet_class: PacketClass | None = None) -> int:
        return self._native.queued_packets(packet_class)

    def dropped_packets(self, packet_class: PacketClass) -> int:
        """Packets of this class dropped because its queue was full."""
        return self._native.dropped_packets(packet_class)

    def take_releases(self) -> list[tuple[int, int, PacketClass, int]]:
        """(scheduled, sent, class, size) of each packet released since the last call, times in
        microseconds of :func:`rtcroom._native.pacer.monotonic_us` (``time.monotonic()`` on
        Linux); empty unless created with ``record=True``."""
        return [(due, sent, _CLASSES[c], size) for due, sent, c, size in self._native.take_log()]

    def enqueue(self, data: bytes, kind: MediaKind, *, retransmission: bool = False) -> None:
        """Queues a packet (sends it at once when pacing is disabled)."""
        self.enqueue_many((data,), kind, retransmission=retransmission)

    def enqueue_many(self, packets: Iterable[bytes], kind: MediaKind, *,
                     retransmission: bool = False) -> None:
        """Queues packets of one kind at once (a frame's packets: one call into the native side
        for all of them)."""
        cls = packet_class(kind, retransmission)
        if not self._enabled:
            for data in packets:
                try:
                    self._sock.send(data)
                    self._direct_sent += 1
                except OSError:
                    self._direct_errors += 1
            return
        if self._native.enqueue_many(packets, cls):
            logger.debug("pacer queue for %s full: dropped its oldest packets", cls.name)

    def start(self) -> None:
        if self._enabled:
            self._native.start()

    def stop(self) -> None:
        """Ends the thread; packets still queued are discarded."""
        self._native.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
