"""When one subscriber's leg last retransmitted each of its sequence numbers. A receiver lists
everything still missing in every NACK, so the same packet is asked for again while its first
retransmission is still on the way; like libwebrtc, a leg resends a packet at most once per
round trip, and answers a request after that (the retransmission itself may have been lost)."""

from __future__ import annotations

DEFAULT_INTERVAL = 0.1
"""Seconds between resends of one packet before the leg has a round-trip time."""
MIN_INTERVAL = 0.01
"""The shortest interval, whatever the round-trip time (loopback's is well under 1 ms)."""


class ResendTimes:
    def __init__(self, size: int = 1024) -> None:
        self._last: list[tuple[int, float]] = [(-1, 0.0)] * size

    def allow(self, sequence_number: int, now: float, rtt: float | None) -> bool:
        """Whether to resend ``sequence_number`` now; if so, counts it as resent at ``now``."""
        interval = DEFAULT_INTERVAL if rtt is None else max(rtt, MIN_INTERVAL)
        slot = sequence_number % len(self._last)
        last_sequence_number, last_time = self._last[slot]
        if last_sequence_number == sequence_number and now - last_time < interval:
            return False
        self._last[slot] = (sequence_number, now)
        return True
