"""Nothing starts on a connection that is closing.

aioice and aiortc each finish connecting in a task of their own, and each can finish after
``close()`` has run, starting work that nothing will ever stop. A participant who leaves while
its connections are still being set up hits both; the soak test found them as tasks and aiortc
objects that outlived every cycle:

- ``aioice.Connection.connect()`` starts consent-freshness checks (RFC 7675) when ICE completes;
  if ``close()`` ran meanwhile it found no task to cancel, and the checks loop forever on a
  connection with no pairs, keeping it, its sockets' protocols and the ICE transport alive.
- ``RTCPeerConnection`` connects its transports in a task that calls ``RTCRtpSender.send()``
  once DTLS is up; ``close()`` stops the senders first, so a sender whose DTLS came up while
  ``close()`` was stopping the others starts its RTP and RTCP loops after its own ``stop()``,
  and they never end (with no track, the RTP loop waits for one forever).

:func:`stop_late_starts` makes a consent task that starts on a closing connection return at
once, and ``send()`` on a sender that was stopped do nothing.

The same connecting task also fails on remote descriptions aiortc's parser accepted but its
transports cannot use (the signaling fuzz finds them in group rooms: DTLS parameters missing on
an m-line, or a connection closed while it was connecting). Nothing awaits that task, so its
exception would surface only as asyncio's "Task exception was never retrieved" error; the
connection just never connects, which the room handles as it does any failed connection. The
guard logs it as a warning naming the error instead.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aioice.ice
from aiortc import RTCPeerConnection, RTCRtpSender

__all__ = ["stop_late_starts"]

log = logging.getLogger(__name__)

_PATCHED = "_rtcroom_no_late_start"
_STOPPED = "_rtcroom_stopped"


def _patch(cls: type, name: str,
           make: Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]) -> None:
    original = getattr(cls, name)
    if getattr(original, _PATCHED, False):
        return
    patched = functools.wraps(original)(make(original))
    setattr(patched, _PATCHED, True)
    setattr(cls, name, patched)


def stop_late_starts() -> None:
    """Install the guards (idempotent)."""

    def query_consent(original: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def guarded(self: aioice.ice.Connection) -> None:
            if self._closing:
                self._query_consent_task = None
                return
            await original(self)
        return guarded

    def sender_stop(original: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def guarded(self: RTCRtpSender) -> None:
            setattr(self, _STOPPED, True)
            await original(self)
        return guarded

    def sender_send(original: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def guarded(self: RTCRtpSender, parameters: Any) -> None:
            if getattr(self, _STOPPED, False):
                return
            await original(self, parameters)
        return guarded

    def connect(original: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def guarded(self: RTCPeerConnection) -> None:
            try:
                await original(self)
            except Exception as exc:  # noqa: BLE001 - see the module docstring
                log.warning("a peer connection failed while connecting: %r", exc)
        return guarded

    _patch(RTCPeerConnection, "_RTCPeerConnection__connect", connect)
    _patch(aioice.ice.Connection, "query_consent", query_consent)
    _patch(RTCRtpSender, "stop", sender_stop)
    _patch(RTCRtpSender, "send", sender_send)
