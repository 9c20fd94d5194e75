"""asv suite for the pacer at 10k packets/s: release accuracy (p99 of |actual - scheduled|, target
<= 1 ms) and CPU per packet against pure-Python asyncio pacers (target >= 10x less), all measured
in one process, one run.

Workload: 3000 packets of 1200 bytes queued at once, target bitrate set so the paced rate is 10k
packets/s (38.4 Mbps x 2.5 = 96 Mbps), default pacer settings otherwise, released by an asyncio
task to a send function that records the time. CPU time (process_time) covers queuing and releasing; the send itself does no I/O, so the
figure is the pacer's own cost. Baselines:

- "python": rtcroom's PacedSender driving the plain-Python twin of the native pacer
  (tests/reference_pacer.py): same algorithm, same driver, no native code;
- "sleeping": a pure-Python asyncio leaky bucket written the obvious way, one ``asyncio.sleep``
  per packet until its slot.

Sending on a socket (``socket_run``): the same 10k packets/s onto a connected UDP socket, so each
side does the real work, kernel send included: rtcroom's PacedSocket (one native thread,
``sendmmsg`` per wake-up, equal-sized packets as UDP GSO datagrams) against the sleeping pacer
calling ``sock.send`` per packet, and
rtcroom's asyncio PacedSender over the native core calling ``sock.send``. ``send_floor`` is the CPU
of sending the same packets unpaced the way each side sends (``sendmmsg`` batches, or a
``sock.send`` loop), so that total minus floor is a pacer's own cost. benchmarks/pacer_cpu.py
prints the whole breakdown.
"""

from __future__ import annotations

import asyncio
import collections
import resource
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rtcroom.pacer import PACING_FACTOR, PacedSender, PacedSocket, Pacer, PacketClass

from .ratio import speedup

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from reference_pacer import ReferencePacer

PACKET = 1200
RATE_PPS = 10_000
TARGET_BITRATE = round(PACKET * 8 * RATE_PPS / PACING_FACTOR)
PACKETS = 3000  # 0.3 s of pacing per run

__all__ = ["PACKET", "PACKETS", "ReferencePacer", "Run", "core_frames_workload", "core_workload", "paced_run", "send_floor",
           "sleeping_run", "socket_run", "udp_sink"]


class Run:
    """One paced run: per-packet (scheduled, actual) times in seconds, and the CPU it took."""

    def __init__(self) -> None:
        self.times: list[tuple[float, float]] = []
        self.cpu = 0.0
        # getrusage's split of the same CPU: sampled at the kernel's tick (4 ms here), so only
        # meaningful summed over many runs.
        self.user = self.sys = 0.0
        self.wakeups = 0  # PacedSocket's sending wake-ups
        self.caller_cpu = 0.0  # PacedSocket: CPU of the calling thread (handing packets over)
        self._start: tuple[float, resource.struct_rusage] | None = None

    def start(self) -> None:
        self._start = time.process_time(), resource.getrusage(resource.RUSAGE_SELF)

    def stop(self) -> None:
        assert self._start is not None
        cpu, usage = self._start
        now = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = time.process_time() - cpu
        self.user = now.ru_utime - usage.ru_utime
        self.sys = now.ru_stime - usage.ru_stime

    def lateness_ms(self) -> list[float]:
        return [abs(actual - scheduled) * 1e3 for scheduled, actual in self.times]

    def p99_ms(self) -> float:
        return statistics.quantiles(self.lateness_ms(), n=100)[98]

    def cpu_per_packet_us(self) -> float:
        return self.cpu / len(self.times) * 1e6


async def _paced(n: int, pacer_type: Callable[..., Any]) -> Run:
    loop = asyncio.get_running_loop()
    run, done = Run(), loop.create_future()
    times = run.times

    def send(data: bytes, cls: PacketClass, due_us: int) -> None:
        times.append((due_us / 1e6, loop.time()))
        if len(times) == n:
            done.set_result(None)

    payload = bytes(PACKET)
    start = time.process_time()
    async with PacedSender(send, TARGET_BITRATE, max_packets=(100, 500, n),
                           pacer_type=pacer_type) as paced:
        for _ in range(n):
            paced.enqueue(payload, "video")
        await done
    run.cpu = time.process_time() - start
    return run


class SleepingPacer:
    """The baseline a Python programmer writes first: a leaky bucket in an asyncio task that
    sleeps until each packet's slot (audio first, then retransmissions, then video). Slots follow
    each other at the pacing rate; a late wake-up sends the packets whose slots have passed
    without sleeping, so the rate holds however coarse the timer."""

    def __init__(self, send: Callable[[bytes, int, float], None], target_bitrate: int) -> None:
        self.send = send
        self.rate = target_bitrate * PACING_FACTOR / 8  # bytes per second
        self.queues: list[collections.deque[bytes]] = [collections.deque() for _ in range(3)]
        self.ready = asyncio.Event()
        self.next_slot = 0.0

    def enqueue(self, data: bytes, cls: int) -> None:
        if not self.ready.is_set():
            # Idle time earns no credit.
            self.next_slot = max(self.next_slot, asyncio.get_running_loop().time())
            self.ready.set()
        self.queues[cls].append(data)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            queue = next((q for q in self.queues if q), None)
            if queue is None:
                self.ready.clear()
                await self.ready.wait()
                continue
            slot, now = self.next_slot, loop.time()
            if slot > now:
                await asyncio.sleep(slot - now)
            data = queue.popleft()
            self.next_slot = slot + len(data) / self.rate
            self.send(data, PacketClass.VIDEO, slot)


async def _sleeping(n: int) -> Run:
    loop = asyncio.get_running_loop()
    run, done = Run(), loop.create_future()
    times = run.times

    def send(data: bytes, cls: int, slot: float) -> None:
        times.append((slot, loop.time()))
        if len(times) == n:
            done.set_result(None)

    payload = bytes(PACKET)
    start = time.process_time()
    pacer = SleepingPacer(send, TARGET_BITRATE)
    task = loop.create_task(pacer.run())
    for _ in range(n):
        pacer.enqueue(payload, PacketClass.VIDEO)
    await done
    task.cancel()
    run.cpu = time.process_time() - start
    return run


def udp_sink() -> tuple[socket.socket, socket.socket]:
    """(sender, sink): a connected non-blocking UDP socket to a bound one nobody reads, so every
    pacer pays the same kernel path; packets past the sink's receive buffer are dropped there."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setblocking(False)
    sender.connect(sink.getsockname())
    return sender, sink


def _native_socket(n: int, record: bool, tolerance: float) -> Run:
    run = Run()
    sender, sink = udp_sink()
    with sender, sink:
        paced = PacedSocket(sender, TARGET_BITRATE, max_packets=(100, 500, n), record=record,
                            tolerance=tolerance)
        packets = [bytes(PACKET)] * n
        run.start()
        caller = time.thread_time()
        with paced:
            paced.enqueue_many(packets, "video")
            # The caller has nothing else to do: sleep through the run, then look once a ms.
            time.sleep(n / RATE_PPS)
            while paced.sent_packets + paced.send_errors < n:
                time.sleep(0.001)
        run.caller_cpu = time.thread_time() - caller
        run.stop()
        run.wakeups = paced.wakeups
        run.times = [(due / 1e6, sent / 1e6) for due, sent, _, _ in paced.take_releases()]
    return run


async def _python_socket(n: int, record: bool, driver: bool) -> Run:
    loop = asyncio.get_running_loop()
    run, done, count = Run(), loop.create_future(), 0
    times = run.times
    sender, sink = udp_sink()

    def send(data: bytes, cls: int, slot: float) -> None:
        nonlocal count
        if record:
            times.append((slot, loop.time()))
        try:
            sender.send(data)
        except OSError:
            pass  # lost, as the native sender's refused packets
        count += 1
        if count == n:
            done.set_result(None)

    payload = bytes(PACKET)
    with sender, sink:
        run.start()
        if driver:
            async with PacedSender(lambda d, c, due_us: send(d, c, due_us / 1e6), TARGET_BITRATE,
                                   max_packets=(100, 500, n)) as paced:
                for _ in range(n):
                    paced.enqueue(payload, "video")
                await done
        else:
            pacer = SleepingPacer(send, TARGET_BITRATE)
            task = loop.create_task(pacer.run())
            for _ in range(n):
                pacer.enqueue(payload, PacketClass.VIDEO)
            await done
            task.cancel()
        run.stop()
    return run


def socket_run(role: str, n: int = PACKETS, record: bool = False,
               tolerance: float = 0.0005) -> Run:
    """Paced sending onto a UDP socket. role: "native" (PacedSocket, with this tolerance),
    "python" (the sleeping pacer), "driver" (PacedSender's asyncio task over the native core).
    ``record`` keeps the release times (off for CPU figures: the Python sides would pay for it
    per packet)."""
    if role == "native":
        return _native_socket(n, record, tolerance)
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_python_socket(n, record, role == "driver"))
    finally:
        loop.close()


def send_floor(role: str, n: int = PACKETS) -> float:
    """CPU seconds to send the same n packets unpaced, the way that side sends: PacedSocket at a
    rate that never waits (``sendmmsg`` of up to 256, in GSO runs of 54), or a ``sock.send``
    loop ("python", "driver")."""
    sender, sink = udp_sink()
    packets = [bytes(PACKET)] * n
    with sender, sink:
        start = time.process_time()
        if role == "native":
            with PacedSocket(sender, 10**11, max_packets=(100, 500, n)) as paced:
                paced.enqueue_many(packets, "video")
                while paced.sent_packets + paced.send_errors < n:
                    time.sleep(0.001)
        else:
            for data in packets:
                try:
                    sender.send(data)
                except OSError:
                    pass
        return time.process_time() - start


def paced_run(loop: asyncio.AbstractEventLoop, role: str, n: int = PACKETS) -> Run:
    """role: "native" (rtcroom's pacer) or "python" (the same driver over the Python twin)."""
    pacer_type = {"native": Pacer, "python": ReferencePacer}[role]
    return loop.run_until_complete(_paced(n, pacer_type))


def sleeping_run(loop: asyncio.AbstractEventLoop, n: int = PACKETS) -> Run:
    return loop.run_until_complete(_sleeping(n))


def core_workload(pacer_type: Callable[..., Any]) -> None:
    """The decision core alone, on a simulated clock, as PacedSender drives it (sizes in,
    classes out; the packets stay with the caller): 1000 packets, 1 in 10 audio, arriving every
    100 us, released every millisecond."""
    p = pacer_type(TARGET_BITRATE, 0, max_packets=(100, 500, 2000))
    # Enum members looked up once, as PacedSender does (each lookup costs 70 ns on Python 3.11,
    # the native pacer's whole decision per packet would be lost in it).
    video, audio = PacketClass.VIDEO, PacketClass.AUDIO
    now = 0
    for i in range(1000):
        p.enqueue_size(PACKET, video if i % 10 else audio, now)
        now += 100
        if i % 10 == 9:
            p.pop_due_classes(now)
    p.pop_due_classes(10**12)


def core_frames_workload(pacer_type: Callable[..., Any]) -> None:
    """The same decisions for a sender that hands over a video frame's packets in one call
    (``enqueue_sizes``, PacedSender.enqueue_many): 3 frames of 330 packets 33 ms apart and an
    audio packet every 20 ms, released every millisecond until all 995 are out."""
    p = pacer_type(TARGET_BITRATE, 0, max_packets=(100, 500, 2000))
    frame = [PACKET] * 330
    video, audio = PacketClass.VIDEO, PacketClass.AUDIO
    for ms in range(100):
        now = ms * 1000
        if ms % 33 == 0 and ms < 99:
            p.enqueue_sizes(frame, video, now)
        if ms % 20 == 0:
            p.enqueue_size(PACKET, audio, now)
        p.pop_due_classes(now)
    p.pop_due_classes(10**12)


def track_core_native_vs_python() -> float:
    """Decision work per packet: times less CPU than the plain-Python twin."""
    return speedup(lambda: core_workload(ReferencePacer), lambda: core_workload(Pacer), number=20)


def track_core_frames_native_vs_python() -> float:
    """The same with a frame's packets per call."""
    return speedup(lambda: core_frames_workload(ReferencePacer),
                   lambda: core_frames_workload(Pacer), number=20)


track_core_native_vs_python.unit = "x"  # type: ignore[attr-defined]
track_core_frames_native_vs_python.unit = "x"  # type: ignore[attr-defined]


def _best(runs: Callable[[], Run], repeat: int = 3) -> Run:
    return min((runs() for _ in range(repeat)), key=lambda r: r.cpu)


class _Loop:
    def setup(self) -> None:
        self.loop = asyncio.new_event_loop()

    def teardown(self) -> None:
        self.loop.close()


class ReleaseAccuracy(_Loop):
    """p99 of |actual - scheduled| release time at 10k packets/s, in ms (target <= 1); the
    median of 5 runs, since one run on a shared machine can catch another process's burst."""

    def track_p99_native(self) -> float:
        return statistics.median(paced_run(self.loop, "native").p99_ms() for _ in range(5))

    def track_p99_python(self) -> float:
        return statistics.median(paced_run(self.loop, "python").p99_ms() for _ in range(5))

    def track_p99_sleeping(self) -> float:
        return statistics.median(sleeping_run(self.loop).p99_ms() for _ in range(5))

    track_p99_native.unit = track_p99_python.unit = track_p99_sleeping.unit = "ms"  # type: ignore


class CpuPerPacket(_Loop):
    """CPU per paced packet at 10k packets/s: microseconds, and ratios to the baselines measured
    in this run (target >= 10x less than a pure-Python asyncio pacer)."""

    def track_us_native(self) -> float:
        return _best(lambda: paced_run(self.loop, "native")).cpu_per_packet_us()

    def track_native_vs_python(self) -> float:
        native = _best(lambda: paced_run(self.loop, "native"))
        python = _best(lambda: paced_run(self.loop, "python"))
        return python.cpu / native.cpu

    def track_native_vs_sleeping(self) -> float:
        native = _best(lambda: paced_run(self.loop, "native"))
        sleeping = _best(lambda: sleeping_run(self.loop))
        return sleeping.cpu / native.cpu

    track_us_native.unit = "us"  # type: ignore[attr-defined]
    track_native_vs_python.unit = track_native_vs_sleeping.unit = "x"  # type: ignore


def _best_cpu(role: str, repeat: int = 3) -> float:
    return min(socket_run(role).cpu for _ in range(repeat))


class SocketCpuPerPacket:
    """Paced sending onto loopback UDP at 10k packets/s: PacedSocket (native thread, sendmmsg)
    against the sleeping pure-Python pacer calling sock.send (benchmarks/pacer_cpu.py prints the
    breakdown)."""

    def track_native_vs_sleeping(self) -> float:
        """Times less CPU per packet, kernel send path included on both sides."""
        return _best_cpu("python") / _best_cpu("native")

    def track_own_native_vs_sleeping(self) -> float:
        """Times less CPU per packet beyond each side's unpaced send of the same packets."""
        native = _best_cpu("native") - min(send_floor("native") for _ in range(3))
        python = _best_cpu("python") - min(send_floor("python") for _ in range(3))
        return python / native

    def track_p99_native(self) -> float:
        return statistics.median(socket_run("native", record=True).p99_ms() for _ in range(5))

    def track_p99_sleeping(self) -> float:
        return statistics.median(socket_run("python", record=True).p99_ms() for _ in range(5))

    track_native_vs_sleeping.unit = track_own_native_vs_sleeping.unit = "x"  # type: ignore
    track_p99_native.unit = track_p99_sleeping.unit = "ms"  # type: ignore
