"""Shared by the hardening tests: a real server and a real peer-to-peer media pair running on
an event loop of their own (so a synchronous hypothesis test can drive hostile clients into
it), and a record of every error the server's process logs."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

import rtcroom
from rtcroom.aiortc_ext.ice import use_host_addresses
from rtcroom.server.app import RunningServer, start_server
from serverutil import CONFIG, token, wait_until

T = TypeVar("T")


class ErrorLog(logging.Handler):
    """Every ERROR-or-worse record, and every exception the event loop was left holding."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}"
                            + (f" [{record.exc_info[1]!r}]" if record.exc_info else ""))

    def loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.records.append(f"event loop: {context.get('message')} "
                            f"{context.get('exception')!r}")


@contextmanager
def captured_errors() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


class MediaPair:
    """alice publishes video to bob in peer-to-peer room ``media``; bob counts frames."""

    def __init__(self, alice: rtcroom.Room, bob: rtcroom.Room) -> None:
        self.alice = alice
        self.bob = bob
        self.frames = 0
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, server: RunningServer) -> MediaPair:
        alice = await rtcroom.connect(token("alice", "media"), server=server.url, name="media",
                                      audio=False, video=True)
        bob = await rtcroom.connect(token("bob", "media"), server=server.url, name="media",
                                    audio=False, video=False)
        pair = cls(alice, bob)

        def track() -> Any:
            for p in bob.participants.values():
                for pub in p.tracks.values():
                    if pub.track is not None:
                        return pub.track
            return None

        await wait_until(lambda: track() is not None, 30)
        pair._reader = asyncio.create_task(pair._read(track()))
        await wait_until(lambda: pair.frames >= 5, 30)
        return pair

    async def _read(self, track: Any) -> None:
        async for _ in track.frames():
            self.frames += 1

    @property
    def connected(self) -> bool:
        return self.alice.state.value == self.bob.state.value == "connected"

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.bob.disconnect()
        await self.alice.disconnect()


class Harness:
    """A server (and optionally the media pair) on a loop in a thread of its own."""

    def __init__(self, errors: ErrorLog, **config: Any) -> None:
        self.errors = errors
        self.config = replace(CONFIG, **config)
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(errors.loop_exception)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: RunningServer | None = None
        self.media: MediaPair | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> Harness:  # noqa: PYI034
        self._thread.start()
        self.server = self.run(start_server(self.config))
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self.media is not None:
                await self.media.stop()
            assert self.server is not None
            await self.server.stop()

        try:
            self.run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    def start_media(self) -> MediaPair:
        assert self.server is not None
        self.media = self.run(MediaPair.start(self.server))
        return self.media


@contextmanager
def harness(media: bool = False, **config: Any) -> Iterator[Harness]:
    with captured_errors() as errors, use_host_addresses(["127.0.0.1"]), \
            Harness(errors, **config) as h:
        if media:
            h.start_media()
        yield h
