"""Shared by the server and connect tests: a real rtcroom server on 127.0.0.1, tokens for it,
and a raw signaling WebSocket that speaks the wire protocol by hand."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from rtcroom.accesstoken import AccessToken, VideoGrant
from rtcroom.aiortc_ext.ice import use_host_addresses
from rtcroom.server.app import RunningServer, start_server
from rtcroom.server.config import ServerConfig

ACCOUNT_SID = "AC" + "0" * 32
API_KEY_SID = "SK" + "1" * 32
API_KEY_SECRET = "test-secret-not-for-production-0123456789"

# Tests name the room type they need: peer-to-peer unless they ask for group (the server's
# own default).
CONFIG = ServerConfig(host="127.0.0.1", port=0, account_sid=ACCOUNT_SID, api_key_sid=API_KEY_SID,
                      api_key_secret=API_KEY_SECRET, room_type="peer-to-peer")


def token(identity: str, room: str | None = "room", secret: str = API_KEY_SECRET,
          ttl: int = 600) -> str:
    t = AccessToken(ACCOUNT_SID, API_KEY_SID, secret, identity=identity, ttl=ttl)
    t.add_grant(VideoGrant(room=room))
    return t.to_jwt()


@asynccontextmanager
async def running_server(**changes: Any) -> AsyncIterator[RunningServer]:
    server = await start_server(replace(CONFIG, **changes))
    try:
        yield server
    finally:
        await server.stop()


class RawClient:
    """A signaling client written against the wire format, to test the server byte by byte."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.session: str | None = None
        self.heartbeats = True

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))

    async def hello(self, body: dict[str, Any] | None = None, timeout: int = 5000) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "hello", "id": str(uuid.uuid4()), "timeout": timeout,
                                 "version": 2}
        if body is not None:
            frame["body"] = body
        await self.send(frame)
        return await self.frame("welcome")

    async def msg(self, body: dict[str, Any]) -> None:
        if self.session and "session" not in body and body.get("type") != "connect":
            body = {**body, "session": self.session}
        await self.send({"type": "msg", "body": body})

    async def frame(self, *types: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next frame of one of ``types`` (heartbeats skipped unless asked for)."""
        while True:
            m = await self.ws.receive(timeout=timeout)
            if m.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"connection ended ({m.type}, {m.data!r}) waiting for {types}")
            data = json.loads(m.data)
            if data["type"] == "heartbeat" and "heartbeat" not in types:
                continue
            if not types or data["type"] in types:
                return data
            raise AssertionError(f"wanted {types}, got {data}")

    async def body(self, *types: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next ``msg`` body of one of ``types``."""
        while True:
            frame = await self.frame("msg", timeout=timeout)
            if not types or frame["body"]["type"] in types:
                return frame["body"]

    async def closed(self, timeout: float = 10.0) -> int | None:
        """Wait for the server to close; its close code."""
        while True:
            m = await self.ws.receive(timeout=timeout)
            if m.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                          aiohttp.WSMsgType.CLOSING):
                return self.ws.close_code


def connect_body(tok: str, name: str | None = "room",
                 tracks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "connect", "version": 2, "token": tok,
                            "participant": {"revision": 1, "tracks": tracks or []},
                            "peer_connections": [], "ice_servers": "overrode",
                            "format": "unified"}
    if name is not None:
        body["name"] = name
    return body


@asynccontextmanager
async def raw_client(server: RunningServer) -> AsyncIterator[RawClient]:
    async with aiohttp.ClientSession() as http, http.ws_connect(server.url) as ws:
        client = RawClient(ws)

        async def keepalive() -> None:
            # Like any client, keep the server's heartbeat timeout from firing.
            while not ws.closed:
                await asyncio.sleep(1.0)
                if client.heartbeats:
                    await ws.send_str('{"type":"heartbeat"}')

        task = asyncio.create_task(keepalive())
        try:
            yield client
        finally:
            task.cancel()


async def joined(server: RunningServer, identity: str, room: str = "room",
                 tracks: list[dict[str, Any]] | None = None) -> tuple[RawClient, dict[str, Any],
                                                                      Any]:
    """Open a raw client, join, and return it with its ``connected`` body (the caller must
    close it: the third item is the context manager to exit)."""
    cm = raw_client(server)
    client = await cm.__aenter__()
    await client.hello(connect_body(token(identity, room), room, tracks))
    connected = await client.body("connected")
    client.session = connected["session"]
    return client, connected, cm


async def wait_until(predicate: Any, timeout: float = 10.0,
                     describe: Any = None) -> None:
    """Poll ``predicate()`` until true; fail after ``timeout`` seconds, with ``describe()`` (the
    state worth seeing when it fails) in the message when given."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not met in time"
                                 + (f": {describe()}" if describe is not None else ""))
        await asyncio.sleep(0.02)


async def settled_video_rates(group: Any, count: int) -> list[float]:
    """The bitrates of the ``count`` videos published in the SFU ``group`` once they stop moving
    (encoders start with a burst of keyframes), lowest first: tests set caps from them."""

    def videos() -> list[Any]:
        return [t for t in group.router.tracks.values() if t.kind == "video"]

    await wait_until(lambda: sum(bool(t.rates.rates) for t in videos()) == count, 30)
    rates: list[float] = []
    for _ in range(60):
        await asyncio.sleep(0.5)
        now = sorted(max(t.rates.rates.values()) for t in videos())
        if rates and all(abs(a - b) < 0.1 * b for a, b in zip(now, rates)):
            break
        rates = now
    return rates


class TcpProxy:
    """A loopback TCP relay in front of the server, so a test can cut a client's connection
    the way a network failure would, and refuse new ones for a while."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.refusing = False
        self._server: asyncio.AbstractServer | None = None
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/signaling"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._pairs.append((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self) -> None:
        """Abort every relayed connection, both ways, without a WebSocket close."""
        for client, upstream in self._pairs:
            client.transport.abort()
            upstream.transport.abort()
        self._pairs.clear()

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
def loopback_ice() -> Any:
    """Peer connections gather host candidates on 127.0.0.1 only, for the whole test."""
    with use_host_addresses(["127.0.0.1"]):
        yield
