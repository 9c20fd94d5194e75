"""The client end of TwilioConnection: one signaling WebSocket, framed and kept alive.

:class:`SignalingTransport` opens the socket, says ``hello`` (carrying the first room message),
waits for ``welcome``, then sends a heartbeat whenever it has been quiet for the negotiated
timeout minus 200 ms and closes with 3001 when the server has been silent for three timeouts.
Room-protocol bodies go to ``on_message``; the end of the connection (for whatever reason) to
``on_close`` with one of twilio-video.js's close reasons. Connection states are reported to the
ConnectOptions ``event_listener`` as early / connecting / open / waiting / closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from rtcroom.errors import SignalingConnectionError, SignalingServerBusyError, TwilioError
from rtcroom.events import EventListenerEvent, deliver
from rtcroom.signaling.fields import MessageFormatError
from rtcroom.signaling.framing import (
    CLOSE_HEARTBEATS_MISSED,
    CLOSE_HELLO_FAILED,
    CLOSE_NORMAL,
    CLOSE_WELCOME_TIMEOUT,
    MAX_FRAME_BYTES,
    Bad,
    Busy,
    Bye,
    Frame,
    Heartbeat,
    Hello,
    Msg,
    Welcome,
    encode_frame,
    parse_frame,
)

__all__ = ["CloseReason", "SignalingTransport"]

logger = logging.getLogger("rtcroom.signaling")

REQUESTED_HEARTBEAT_TIMEOUT_MS = 5000
HEARTBEAT_OFFSET_MS = 200
MISSED_HEARTBEATS = 3
WELCOME_TIMEOUT = 5.0
MAX_HELLOS = 3
OPEN_TIMEOUT = 15.0


class CloseReason:
    """Why a TwilioConnection closed (twilio-video.js's names)."""

    BUSY = "busy"
    FAILED = "failed"
    LOCAL = "local"
    REMOTE = "remote"
    TIMEOUT = "timeout"


class SignalingTransport:
    def __init__(
        self,
        url: str,
        on_message: Callable[[dict[str, Any]], None],
        on_close: Callable[[str, TwilioError | None], None],
        event_listener: Any = None,
        started_at: float = 0.0,
    ) -> None:
        self.url = url
        self._on_message = on_message
        self._on_close = on_close
        self._listener = event_listener
        self._started_at = started_at
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        # Loop time of the last frame sent: any frame counts as a heartbeat.
        self._last_sent = 0.0
        self._closed = False
        self.timeout_ms = 0

    def _event(self, name: str, payload: Any = None, error: bool = False) -> None:
        deliver(self._listener, EventListenerEvent.signaling(name, self._started_at, payload,
                                                             error))

    async def open(self, hello_body: dict[str, Any]) -> None:
        """Connect and complete the handshake; raises SignalingConnectionError (53000) when the
        server cannot be reached or refuses, SignalingServerBusyError when it is busy."""
        self._event("early")
        self._http = aiohttp.ClientSession()
        self._event("connecting")
        try:
            self._ws = await asyncio.wait_for(self._http.ws_connect(
                self.url, timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                max_msg_size=MAX_FRAME_BYTES, autoping=True, heartbeat=None), OPEN_TIMEOUT)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as exc:
            await self._http.close()
            timed_out = isinstance(exc, asyncio.TimeoutError)
            self._event("closed", {"reason": CloseReason.TIMEOUT if timed_out
                                   else CloseReason.FAILED}, error=True)
            raise SignalingConnectionError(
                f"Signaling connection error: cannot open {self.url}: {exc}") from exc
        try:
            welcome = await self._handshake(hello_body)
        except TwilioError:
            await self._teardown()
            raise
        self.timeout_ms = welcome.negotiatedTimeout
        self._last_sent = asyncio.get_running_loop().time()
        self._event("open")
        self._reader = asyncio.create_task(self._read_loop())
        self._heartbeat = asyncio.create_task(self._heartbeat_loop())

    async def _handshake(self, hello_body: dict[str, Any]) -> Welcome:
        assert self._ws is not None
        hello = Hello(id=str(uuid.uuid4()), timeout=REQUESTED_HEARTBEAT_TIMEOUT_MS,
                      body=hello_body)
        for _ in range(MAX_HELLOS):
            await self._ws.send_str(encode_frame(hello))
            try:
                while True:
                    frame = await self._receive(WELCOME_TIMEOUT)
                    if isinstance(frame, Welcome):
                        return frame
                    if isinstance(frame, Bad):
                        await self._ws.close(code=CLOSE_HELLO_FAILED)
                        raise SignalingConnectionError(
                            f"Signaling connection error: server refused hello: {frame.reason}")
                    if isinstance(frame, Busy):
                        self._event("waiting", {"retryAfter": frame.retryAfter})
                        raise SignalingServerBusyError()
            except asyncio.TimeoutError:
                continue
        await self._ws.close(code=CLOSE_WELCOME_TIMEOUT)
        raise SignalingConnectionError("Signaling connection error: no welcome from the server")

    async def _receive(self, timeout: float | None) -> Frame | None:
        """The next frame; None for one that could not be parsed. Raises when the socket
        ended."""
        assert self._ws is not None
        message = await self._ws.receive(timeout=timeout)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise SignalingConnectionError(
                f"Signaling connection error: connection ended ({message.type.name})")
        try:
            return parse_frame(message.data)
        except MessageFormatError as exc:
            logger.warning("ignoring a malformed signaling frame: %s", exc)
            return None

    async def _read_loop(self) -> None:
        silence = MISSED_HEARTBEATS * self.timeout_ms / 1000
        reason, error = CloseReason.REMOTE, None
        try:
            while True:
                try:
                    frame = await self._receive(silence)
                except asyncio.TimeoutError:
                    reason = CloseReason.TIMEOUT
                    assert self._ws is not None
                    await self._ws.close(code=CLOSE_HEARTBEATS_MISSED)
                    break
                if isinstance(frame, Msg):
                    self._on_message(frame.body)
                elif isinstance(frame, Bad):
                    logger.warning("the server rejected a frame: %s", frame.reason)
        except SignalingConnectionError as exc:
            error = exc
        except (ConnectionError, aiohttp.ClientError) as exc:
            error = SignalingConnectionError(f"Signaling connection error: {exc}")
        if not self._closed:
            self._closed = True
            await self._teardown(reader=False)
            self._event("closed", {"reason": reason}, error=True)
            self._on_close(reason, error)

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = max(self.timeout_ms - HEARTBEAT_OFFSET_MS, 100) / 1000
        while True:
            due = self._last_sent + interval
            if loop.time() >= due:
                await self._send(Heartbeat())
                continue
            await asyncio.sleep(due - loop.time())

    async def _send(self, frame: Frame) -> None:
        if self._ws is None or self._ws.closed:
            return
        try:
            await self._ws.send_str(encode_frame(frame))
        except (ConnectionError, RuntimeError) as exc:
            logger.info("signaling send failed: %s", exc)
            return
        self._last_sent = asyncio.get_running_loop().time()

    async def send(self, body: dict[str, Any]) -> None:
        """Send one room-protocol message."""
        await self._send(Msg(body))

    async def close(self, final_body: dict[str, Any] | None = None) -> None:
        """Leave cleanly: the last message (``disconnect``), ``bye``, then close 1000."""
        if self._closed:
            return
        self._closed = True
        if final_body is not None:
            await self._send(Msg(final_body))
        await self._send(Bye())
        if self._ws is not None:
            await self._ws.close(code=CLOSE_NORMAL)
        await self._teardown()
        self._event("closed", {"reason": CloseReason.LOCAL})

    async def _teardown(self, reader: bool = True) -> None:
        current = asyncio.current_task()
        for task in (self._heartbeat, self._reader if reader else None):
            if task is not None and task is not current and not task.done():
                task.cancel()
                # Whatever it died of was already reported through on_close.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
