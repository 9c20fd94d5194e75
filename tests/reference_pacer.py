"""Plain-Python twin of the native leaky-bucket pacer (src/native/pacer/pacer.h): the oracle the
native class is compared against, and the pure-Python core the benchmarks time.

Same interface as rtcroom.pacer.Pacer and the same integer arithmetic: the debt is in micro-bits
(a packet of n bytes adds n * 8_000_000) and drains at `rate` micro-bits per microsecond.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

MICRO_BITS_PER_BYTE = 8_000_000
MAX_RATE = 10**12
MIN_TIME_LEFT_US = 1_000
CLASSES = 3


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _check_size(size: int) -> None:
    if not 0 <= size <= 65_535:
        raise ValueError(f"packet size must be 0 to 65535 bytes, got {size}")


def _check_class(packet_class: int) -> None:
    if not 0 <= packet_class < CLASSES:
        raise ValueError(f"packet class must be 0 (audio), 1 (retransmission) or 2 (video), "
                         f"got {packet_class}")


class ReferencePacer:
    def __init__(self, target_bitrate: int, now_us: int, *, pacing_factor: float = 2.5,
                 burst_us: int = 0, queue_time_limit_us: int = 2_000_000,
                 max_packets: tuple[int, int, int] = (100, 500, 3000)) -> None:
        if not 0 <= burst_us <= 1_000_000:
            raise ValueError(f"burst interval must be 0 to 1 s, got {burst_us} us")
        if queue_time_limit_us < 0:
            raise ValueError("queue time limit must not be negative")
        if min(max_packets) < 1:
            raise ValueError("queue limits must be at least 1 packet")
        self.factor = pacing_factor
        self.burst_us = burst_us
        self.limit_us = queue_time_limit_us
        self.max_packets = tuple(max_packets)
        # (data, size, enqueued_us) per class; data is None for a packet queued by size
        self.queues: list[deque[tuple[bytes | None, int, int]]] = [deque() for _ in range(CLASSES)]
        self.dropped = [0] * CLASSES
        self.clock = now_us
        self.debt = 0
        self.queued_bytes = 0
        self.pacing_rate = 0
        self.set_target_bitrate(target_bitrate, now_us)

    def set_target_bitrate(self, target_bitrate: int, now_us: int) -> None:
        if target_bitrate < 1:
            raise ValueError(f"target bitrate must be at least 1 bps, got {target_bitrate}")
        rate = float(target_bitrate) * self.factor
        if not 1.0 <= rate <= MAX_RATE:
            raise ValueError(f"pacing rate (target bitrate x pacing factor) must be 1 bps to "
                             f"1 Tbps, got {rate}")
        self.advance(now_us)
        self.target_bitrate = target_bitrate
        self.paced = int(rate)
        self.update_rate()

    def update_rate(self) -> None:
        """The rate held until the next change: enough to drain the debt and the queue before the
        oldest queued packet's deadline."""
        self.pacing_rate = self.paced
        if self.limit_us and any(self.queues):
            oldest = min(q[0][2] for q in self.queues if q)
            time_left = oldest + self.limit_us - self.clock
            if time_left <= 0:
                time_left = MIN_TIME_LEFT_US
            backlog = self.queued_bytes * MICRO_BITS_PER_BYTE + self.debt
            self.pacing_rate = min(max(self.paced, ceil_div(backlog, time_left)), MAX_RATE)

    def queued_packets(self, packet_class: int | None = None) -> int:
        if packet_class is None:
            return sum(len(q) for q in self.queues)
        return len(self.queues[packet_class])

    def dropped_packets(self, packet_class: int) -> int:
        return self.dropped[packet_class]

    def advance(self, now_us: int) -> None:
        if now_us > self.clock:
            self.debt = max(0, self.debt - self.pacing_rate * (now_us - self.clock))
            self.clock = now_us

    def enqueue(self, data: bytes, packet_class: int, now_us: int) -> bool:
        return self._admit(bytes(data), len(data), packet_class, now_us)

    def enqueue_size(self, size: int, packet_class: int, now_us: int) -> bool:
        _check_size(size)
        return self._admit(None, size, packet_class, now_us)

    def enqueue_sizes(self, sizes: Iterable[int], packet_class: int, now_us: int) -> int:
        """enqueue_size for each size in turn, all at now_us; returns how many were dropped.
        One advance and one rate update for the lot, as the native pacer does: the clock stands
        still in between, so the rates set on the way would never be used."""
        _check_class(packet_class)
        sizes = list(sizes)
        for size in sizes:
            _check_size(size)
        self.advance(now_us)
        queue, limit, clock = self.queues[packet_class], self.max_packets[packet_class], self.clock
        dropped = 0
        for size in sizes:
            if len(queue) >= limit:
                self.queued_bytes -= queue.popleft()[1]
                dropped += 1
            queue.append((None, size, clock))
            self.queued_bytes += size
        self.dropped[packet_class] += dropped
        self.update_rate()
        return dropped

    def _admit(self, data: bytes | None, size: int, packet_class: int, now_us: int) -> bool:
        _check_class(packet_class)
        self.advance(now_us)
        queue = self.queues[packet_class]
        full = len(queue) >= self.max_packets[packet_class]
        if full:
            self.queued_bytes -= queue.popleft()[1]
            self.dropped[packet_class] += 1
        queue.append((data, size, self.clock))
        self.queued_bytes += size
        self.update_rate()
        return full

    def send_now(self, size: int, now_us: int) -> bool:
        """Nothing queued and the debt within the burst allowance: the packet counts as sent
        now (True); else nothing is counted (False) and the caller queues it."""
        _check_size(size)
        if any(self.queues):
            return False
        self.advance(now_us)
        if self.debt > self.pacing_rate * self.burst_us:
            return False
        self.debt += size * MICRO_BITS_PER_BYTE
        return True

    def next_send_time(self) -> int | None:
        if not any(self.queues):
            return None
        rate = self.pacing_rate
        excess = self.debt - rate * self.burst_us
        return self.clock if excess <= 0 else self.clock + ceil_div(excess, rate)

    def _pop(self, now_us: int) -> tuple[bytes | None, int, int] | None:
        due = self.next_send_time()
        if due is None or due > max(now_us, self.clock):
            return None
        self.advance(due)
        for cls, queue in enumerate(self.queues):
            if queue:
                data, size, _ = queue.popleft()
                self.queued_bytes -= size
                self.debt += size * MICRO_BITS_PER_BYTE
                self.update_rate()
                return data, cls, due
        raise AssertionError("next_send_time said a packet is queued")

    def pop(self, now_us: int) -> tuple[bytes, int, int] | None:
        packet = self._pop(now_us)
        if packet is None:
            return None
        data, cls, due = packet
        return data or b"", cls, due  # the native pacer hands out b"" for a size-only packet

    def pop_due(self, now_us: int) -> list[tuple[bytes, int, int]]:
        out = []
        while (packet := self.pop(now_us)) is not None:
            out.append(packet)
        return out

    def pop_due_classes(self, now_us: int) -> list[tuple[int, int]]:
        out = []
        while (packet := self._pop(now_us)) is not None:
            out.append(packet[1:])
        return out
