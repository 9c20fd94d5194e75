"""aioice starts consent-freshness checks (RFC 7675) at the end of ``Connection.connect()``. When
the peer connection is closed while ICE is still connecting (a participant who leaves right after
joining), ``close()`` finds no consent task to cancel and ``connect()`` then starts one on the
closed connection: a task that never ends and keeps the connection, its sockets' protocols and
the ICE transport alive. One per such connection, for the life of the process; the soak test
found it. This makes a consent task that starts on a closing connection end at once.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import aioice.ice

__all__ = ["stop_consent_after_close"]

_PATCHED = "_rtcroom_consent_after_close"


def stop_consent_after_close() -> None:
    """Install the fix on ``aioice.ice.Connection`` (idempotent)."""
    connection = aioice.ice.Connection
    if getattr(connection.query_consent, _PATCHED, False):
        return
    original: Callable[[Any], Awaitable[None]] = connection.query_consent

    @functools.wraps(original)
    async def query_consent(self: aioice.ice.Connection) -> None:
        if self._closing:
            self._query_consent_task = None
            return
        await original(self)

    setattr(query_consent, _PATCHED, True)
    connection.query_consent = query_consent  # type: ignore[method-assign]
