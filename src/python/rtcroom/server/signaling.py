"""The WebSocket signaling endpoint: TwilioConnection framing around the room protocol.

One :class:`SignalingConnection` per WebSocket. It does the hello / welcome handshake,
heartbeats in both directions (closing with 3001 when the client falls silent for three
negotiated timeouts), and hands room-protocol bodies to the :class:`RoomService`. A malformed
frame is answered with ``bad``; a malformed room message with ``error`` 53004. Neither touches
any other participant's session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from rtcroom.errors import (
    SignalingOutgoingMessageInvalidError,
    SignalingServerBusyError,
    TwilioError,
)
from rtcroom.server.limits import (
    CLOSE_POLICY_VIOLATION,
    CONNECTIONS,
    RateLimiter,
    check_tracks,
)
from rtcroom.server.rooms import Participant
from rtcroom.server.service import SERVICE, RoomService
from rtcroom.signaling.fields import MessageFormatError
from rtcroom.signaling.framing import (
    CLOSE_HEARTBEATS_MISSED,
    CLOSE_HELLO_FAILED,
    CLOSE_NORMAL,
    CLOSE_SERVER_BUSY,
    Bad,
    Bye,
    Frame,
    Heartbeat,
    Hello,
    Msg,
    Welcome,
    encode_frame,
    parse_frame,
)
from rtcroom.signaling.messages import (
    ClientUpdate,
    Connect,
    Disconnect,
    Ice,
    Iced,
    Sync,
    parse_client_message,
)

__all__ = ["SignalingConnection", "signaling_handler"]

log = logging.getLogger(__name__)

# How long a new WebSocket may take to say hello.
HELLO_TIMEOUT = 10.0
# Heartbeats go out this much before the negotiated timeout (as twilio-video.js does).
HEARTBEAT_OFFSET_MS = 200
MISSED_HEARTBEATS = 3


class SignalingConnection:
    def __init__(self, ws: web.WebSocketResponse, service: RoomService,
                 abort: Callable[[], None] | None = None) -> None:
        self.ws = ws
        self.service = service
        self.participant: Participant | None = None
        self.session: str | None = None
        self._left = False
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._timeout_ms = 0
        config = service.config
        self._rate = RateLimiter(config.max_messages_per_second,
                                 2 * config.max_messages_per_second)
        # Bytes queued but not yet written: bounded, or a client that never reads its socket
        # would make the server buffer everything the room says to it.
        self._queued = 0
        self._abort = abort
        self._close_code = CLOSE_NORMAL
        self._failing: set[asyncio.Task[None]] = set()

    # --- Delivery (what the service calls) ---------------------------------------------------

    def send_body(self, body: dict[str, Any]) -> None:
        self._send(Msg(body))

    def end(self) -> None:
        """The session is over (error, disconnected, replaced): close after pending frames."""
        self._left = True
        self._outbox.put_nowait(None)

    def fail(self, error: TwilioError) -> None:
        """The media side cannot go on with this participant: its session ends with ``error``
        as if the signaling had failed."""
        if not self._left:
            task = asyncio.ensure_future(self._fail(error))
            self._failing.add(task)
            task.add_done_callback(self._failing.discard)

    # --- the connection's life -----------------------------------------------------------------

    def _send(self, frame: Frame) -> None:
        text = encode_frame(frame)
        self._queued += len(text)
        if self._queued > self.service.config.max_outbox_bytes and self._abort is not None:
            log.warning("aborting the signaling connection of %s: %d bytes unread",
                        self._who(), self._queued)
            self._abort()
            return
        self._outbox.put_nowait(text)

    async def _writer(self) -> None:
        """Sends queued frames in order; a heartbeat when nothing went out for a while."""
        interval = max(self._timeout_ms - HEARTBEAT_OFFSET_MS, 100) / 1000
        while True:
            # asyncio.wait (not wait_for) so that a frame dequeued as the timer fires is kept.
            get = asyncio.ensure_future(self._outbox.get())
            done, _ = await asyncio.wait({get}, timeout=interval)
            if done:
                text = get.result()
                self._queued -= len(text or "")
            else:
                get.cancel()
                text = encode_frame(Heartbeat())
            if text is None:
                await self.ws.close(code=self._close_code)
                return
            await self.ws.send_str(text)

    async def run(self) -> None:
        hello = await self._handshake()
        if hello is None:
            return
        writer = asyncio.create_task(self._writer())
        try:
            if hello.body is not None:
                await self._handle_body(hello.body)
            await self._read_loop()
        finally:
            if self.participant is not None and not self._left:
                await self.service.dropped(self.participant.sid, self.session or "", self)
            if not writer.done():
                self._outbox.put_nowait(None)
                try:
                    await asyncio.wait_for(writer, 2.0)
                except (asyncio.TimeoutError, ConnectionError):
                    writer.cancel()
            if not self.ws.closed:
                await self.ws.close()

    async def _handshake(self) -> Hello | None:
        try:
            msg = await self.ws.receive(timeout=HELLO_TIMEOUT)
        except asyncio.TimeoutError:
            await self.ws.close(code=CLOSE_HELLO_FAILED, message=b"no hello")
            return None
        if msg.type != WSMsgType.TEXT:
            return None
        try:
            frame = parse_frame(msg.data)
            if not isinstance(frame, Hello):
                raise MessageFormatError(f"expected hello, got {frame.type}")
        except MessageFormatError as exc:
            await self.ws.send_str(encode_frame(Bad(str(exc))))
            await self.ws.close(code=CLOSE_HELLO_FAILED, message=b"bad hello")
            return None
        self._timeout_ms = min(frame.timeout, self.service.config.max_heartbeat_timeout_ms)
        await self.ws.send_str(encode_frame(Welcome(self._timeout_ms)))
        return frame

    async def _read_loop(self) -> None:
        silence = MISSED_HEARTBEATS * self._timeout_ms / 1000
        while not self.ws.closed:
            try:
                msg = await self.ws.receive(timeout=silence)
            except asyncio.TimeoutError:
                log.info("closing a silent signaling connection (%s)", self._who())
                await self.ws.close(code=CLOSE_HEARTBEATS_MISSED, message=b"heartbeats missed")
                return
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                            WSMsgType.ERROR):
                return
            if not self._rate.allow():
                limit = self.service.config.max_messages_per_second
                log.info("closing a flooding signaling connection (%s)", self._who())
                self._close_code = CLOSE_POLICY_VIOLATION
                await self._fail(SignalingServerBusyError(
                    f"Too many signaling messages: the limit is {limit} per second"))
                return
            if msg.type != WSMsgType.TEXT:
                self._send(Bad("binary frames are not part of the protocol"))
                continue
            try:
                frame = parse_frame(msg.data)
            except MessageFormatError as exc:
                self._send(Bad(str(exc)))
                continue
            if isinstance(frame, Msg):
                await self._handle_body(frame.body)
            elif isinstance(frame, Hello):
                # The client gave up waiting for our welcome and said hello again.
                self._send(Welcome(self._timeout_ms))
            elif isinstance(frame, Bye):
                return
            elif not isinstance(frame, Heartbeat):
                self._send(Bad(f"a client may not send {frame.type!r}"))
            if self._left:
                return

    def _who(self) -> str:
        return self.participant.identity if self.participant else "not joined"

    # --- the room protocol ---------------------------------------------------------------------

    async def _handle_body(self, body: dict[str, Any]) -> None:
        try:
            message = parse_client_message(body)
            await self._dispatch(message)
        except MessageFormatError as exc:
            await self._fail(SignalingOutgoingMessageInvalidError(
                f"Client sent an invalid signaling message: {exc}"))
        except TwilioError as exc:
            await self._fail(exc)

    async def _fail(self, error: TwilioError) -> None:
        log.info("signaling error for %s: %s", self._who(), error)
        self.send_body(self.service.error_body(error))
        if self.participant is not None and not self._left:
            # The error ends this client's room session (twilio-video.js disconnects on it),
            # so the server forgets it now rather than after a grace period.
            self._left = True
            await self.service.leave(self.participant.sid, self.session or "")
        self.end()

    async def _dispatch(self, message: Any) -> None:
        if isinstance(message, (Connect, Sync, ClientUpdate)):
            check_tracks(message.participant, self.service.config.max_tracks_per_participant)
        if isinstance(message, Ice):
            claims = self.service.verify(message.token)
            identity = claims["grants"]["identity"]
            self.send_body(Iced(self.service.ice_servers(identity)).to_wire())
        elif isinstance(message, Connect):
            if self.participant is not None:
                raise SignalingOutgoingMessageInvalidError("connect: already connected")
            self.participant = await self.service.connect(message, self)
            self.session = self.participant.session
        elif isinstance(message, Sync):
            if self.participant is not None:
                raise SignalingOutgoingMessageInvalidError("sync: already connected")
            self.participant = await self.service.sync(message, self)
            self.session = self.participant.session
        elif isinstance(message, ClientUpdate):
            if self.participant is None:
                raise SignalingOutgoingMessageInvalidError("update before connect")
            await self.service.update(self.participant.sid, message)
        elif isinstance(message, Disconnect):
            if self.participant is not None and not self._left:
                self._left = True
                await self.service.leave(self.participant.sid, self.session or "")
            self.end()


async def signaling_handler(request: web.Request) -> web.WebSocketResponse:
    service = request.app[SERVICE]
    ws = web.WebSocketResponse(max_msg_size=service.config.max_message_bytes, heartbeat=None)
    await ws.prepare(request)
    connections = request.app[CONNECTIONS]
    address = request.remote or ""
    if not connections.acquire(address):
        log.warning("refusing a signaling connection from %s: %d already open", address,
                    connections.limit)
        await ws.close(code=CLOSE_SERVER_BUSY, message=b"too many connections from this address")
        return ws
    transport = request.transport
    connection = SignalingConnection(ws, service, transport.abort if transport else None)
    try:
        await connection.run()
    except ConnectionError:
        log.debug("signaling connection lost")
    finally:
        connections.release(address)
    return ws
