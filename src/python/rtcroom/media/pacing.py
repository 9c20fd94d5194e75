"""Real-time pacing of generated frames: frame n is released at start + n * period."""

from __future__ import annotations

import asyncio

# Once a consumer has fallen this far behind, catching up would send a burst of frames;
# start counting again from now instead.
_MAX_LAG = 0.5


class Pacer:
    """Awaits the release time of each frame of a fixed-rate stream, on the event loop clock."""

    def __init__(self, period: float) -> None:
        if period <= 0:
            raise ValueError(f"period must be positive, got {period}")
        self.period = period
        self._start: float | None = None
        self._index = 0

    async def wait(self) -> int:
        """Sleep until the next frame is due; return that frame's index (0, 1, 2, ...)."""
        now = asyncio.get_running_loop().time()
        if self._start is None:
            self._start = now
        due = self._start + self._index * self.period
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > _MAX_LAG:
            self._start = now - self._index * self.period
        index = self._index
        self._index += 1
        return index
