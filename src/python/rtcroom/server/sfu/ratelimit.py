"""At most one event per interval (keyframe requests to a publisher: 1 per second, as mediasoup
does, however many subscribers ask)."""

from __future__ import annotations


class RateLimit:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        if self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        return True
