"""One source track, any number of consumers: each reads every frame through its own tap.

aiortc's tracks can be read by one consumer only. A :class:`Fanout` reads its source in one
task and hands each frame to every :class:`FanoutTrack` tap (a MediaStreamTrack: give it to an
RTCRtpSender, a recorder, or iterate it). Each tap holds at most ``queue_size`` frames; a slow
consumer loses its oldest frames rather than making the source or the other taps wait.

Local tracks use one tap per peer connection that sends them; remote tracks are read all the
time (aiortc's receive queue is unbounded) and feed ``frames()`` and recorders through taps.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["Fanout", "FanoutTrack"]

logger = logging.getLogger("rtcroom.media")

Frame = Any


class FanoutTrack(MediaStreamTrack):
    """A consumer's view of a :class:`Fanout`; stopping it detaches it.

    It has its source's id: the SDP ``a=msid`` of a sender carries the track id, and the
    signaling protocol identifies a published track by that id.
    """

    def __init__(self, fanout: Fanout, queue_size: int) -> None:
        super().__init__()
        self.kind = fanout.kind
        self._id = fanout.source.id
        self._fanout = fanout
        self._frames: collections.deque[Frame] = collections.deque(maxlen=queue_size)
        self._ready = asyncio.Event()
        self._source_ended = False
        self.dropped = 0
        """Frames this tap lost because its consumer fell behind."""

    def _push(self, frame: Frame) -> None:
        if len(self._frames) == self._frames.maxlen:
            self.dropped += 1
        self._frames.append(frame)
        self._ready.set()

    def _end(self) -> None:
        self._source_ended = True
        self._ready.set()

    async def recv(self) -> Frame:
        while not self._frames:
            if self._source_ended or self.readyState != "live":
                self.stop()
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        self._fanout._detach(self)
        self._end()
        super().stop()


class Fanout:
    """Reads ``source`` and copies each frame (after ``process``) to every tap.

    ``process(frame)`` runs once per frame before the taps see it and returns the frame to
    hand out (local tracks swap in silence or black there while disabled, and both sides
    measure audio levels and dimensions there).

    The reading task starts with the first tap. It pauses when the last tap goes (after the
    frame it is waiting for), so an unread source costs nothing and a numpy-fed source keeps
    what was written for the next reader; :meth:`start` makes it read all the time instead
    (remote tracks, whose aiortc queue must be drained).
    """

    def __init__(
        self,
        source: MediaStreamTrack,
        process: Callable[[Frame], Frame] | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.source = source
        self.kind = source.kind
        self._process = process
        self._on_end = on_end
        self._taps: list[FanoutTrack] = []
        self._task: asyncio.Task[None] | None = None
        self._always = False
        self._process_failed = False
        self.ended = False

    def subscribe(self, queue_size: int = 8) -> FanoutTrack:
        """A new tap receiving every frame from now on."""
        tap = FanoutTrack(self, queue_size)
        if self.ended:
            tap._end()
        else:
            self._taps.append(tap)
            self._ensure_task()
        return tap

    async def frames(self, queue_size: int = 8) -> AsyncIterator[Frame]:
        """Every frame from now on through a new tap, until the source ends or the loop breaks."""
        tap = self.subscribe(queue_size)
        try:
            while True:
                try:
                    yield await tap.recv()
                except MediaStreamError:
                    return
        finally:
            tap.stop()

    def start(self) -> None:
        """Read the source from now on, whether or not anyone is listening."""
        self._always = True
        self._ensure_task()

    def _ensure_task(self) -> None:
        if self._task is None and not self.ended:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _detach(self, tap: FanoutTrack) -> None:
        if tap in self._taps:
            self._taps.remove(tap)

    async def _run(self) -> None:
        try:
            while self._taps or self._always:
                frame = self._run_process(await self.source.recv())
                for tap in list(self._taps):
                    tap._push(frame)
        except MediaStreamError:
            self._finish()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("reading %s track %s failed", self.kind, self.source.id)
            self._finish()
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    def _run_process(self, frame: Frame) -> Frame:
        # A frame the hook cannot handle goes out as it came; the stream itself goes on.
        if self._process is None:
            return frame
        try:
            return self._process(frame)
        except Exception:
            if not self._process_failed:
                self._process_failed = True
                logger.exception("processing a %s frame of %s failed", self.kind, self.source.id)
            return frame

    def _finish(self) -> None:
        if self.ended:
            return
        self.ended = True
        for tap in list(self._taps):
            tap._end()
        self._taps.clear()
        if self._on_end is not None:
            self._on_end()

    def close(self) -> None:
        """Stop reading and end every tap now (the source itself is left alone)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        self._finish()
