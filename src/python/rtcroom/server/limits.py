"""What one client may cost the server: the signaling endpoint's per-connection and per-address
limits, so that a hostile or broken client ends its own session and nobody else's.

=========================  =================================================================
limit (ServerConfig)       what a client that crosses it gets
=========================  =================================================================
max_message_bytes          WebSocket close 1009 (message too big), from aiohttp
max_messages_per_second    ``error`` 53006 naming the limit, then close 1008 (policy)
max_connections_per_ip     WebSocket close 3006 (server busy) before the handshake
max_participants           ``error`` 53105 (room full), as before
max_tracks_per_participant ``error`` 53203 naming the limit
max_rooms                  ``error`` 53103 (room create failed), as before
max_outbox_bytes           the connection is aborted (a client that does not read its frames
                           cannot make the server buffer without bound); its session is
                           kept for the reconnect grace period like any lost connection
=========================  =================================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from rtcroom.errors import ParticipantMaxTracksExceededError
from rtcroom.signaling.messages import ParticipantState

__all__ = [
    "CLOSE_POLICY_VIOLATION",
    "CONNECTIONS",
    "ConnectionCounter",
    "RateLimiter",
    "check_tracks",
]

# RFC 6455 7.4.1: the endpoint received a message that violates its policy.
CLOSE_POLICY_VIOLATION = 1008


class RateLimiter:
    """A token bucket: ``rate`` messages a second on average, bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._tokens = burst
        self._last = clock()

    def allow(self) -> bool:
        """Take one token; False when the bucket is empty (the message is over the limit)."""
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class ConnectionCounter:
    """Open signaling connections per remote address."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def acquire(self, address: str) -> bool:
        """Count one more connection from ``address``; False (and not counted) over the
        limit."""
        count = self._open.get(address, 0)
        if count >= self.limit:
            return False
        self._open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)

    def __len__(self) -> int:
        """How many addresses have a connection open."""
        return len(self._open)


def check_tracks(state: ParticipantState | None, limit: int) -> None:
    """Refuse a participant state that publishes more than ``limit`` tracks (53203)."""
    if state is not None and len(state.tracks) > limit:
        raise ParticipantMaxTracksExceededError(
            f"A participant may publish at most {limit} tracks, not {len(state.tracks)}")


CONNECTIONS = web.AppKey("connections", ConnectionCounter)
"""Where the aiohttp application keeps its per-address connection counter."""
