"""Events: the emitter every room object builds on, and the event listener's event type.

Every Room, participant, track and publication is an :class:`EventEmitter` with a fixed set of
event names (the reference's names in snake_case, listed in each class's ``EVENTS``)::

    @room.on("participant_connected")
    def hello(participant): ...

    room.on("track_subscribed", handle_track)        # handler may be ``async def`` too
    participant = await room.wait_for("participant_connected", timeout=10)

    joined = room.wait_for("participant_connected")   # catching starts here
    ...                                               # do what makes someone join
    participant = await joined

Handlers run in registration order. A sync handler runs inside :meth:`EventEmitter.emit`; an
async one is started as a task that the emitter keeps until it ends (so it is never collected
half-way) and that :meth:`EventEmitter.drain` can await. An exception in any handler is logged
on the ``rtcroom`` logger and does not stop the other handlers or the code that emitted. An
event name the object does not have raises ValueError, in ``on`` as in ``emit``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from rtcroom.constants import EventListenerGroup, EventListenerLevel

__all__ = ["EventEmitter", "EventListenerEvent"]

logger = logging.getLogger("rtcroom")

Handler = Callable[..., Any]
_H = TypeVar("_H", bound=Handler)


class EventEmitter:
    """Named events with sync or async handlers. Subclasses set ``EVENTS``."""

    EVENTS: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self._handlers: dict[str, list[tuple[Handler, bool]]] = {}
        self._handler_tasks: set[asyncio.Task[Any]] = set()

    def _check_event(self, event: str) -> None:
        if event not in self.EVENTS:
            raise ValueError(
                f"{type(self).__name__} has no event {event!r}; "
                f"its events are: {', '.join(sorted(self.EVENTS))}"
            )

    def on(self, event: str, handler: _H | None = None) -> Any:
        """Call ``handler`` on every ``event``; without a handler, return a decorator."""
        return self._register(event, handler, once=False)

    def once(self, event: str, handler: _H | None = None) -> Any:
        """Call ``handler`` on the next ``event`` only; without a handler, return a decorator."""
        return self._register(event, handler, once=True)

    def _register(self, event: str, handler: Handler | None, once: bool) -> Any:
        self._check_event(event)

        def register(fn: _H) -> _H:
            if not callable(fn):
                raise TypeError(f"handler for {event!r} is not callable: {fn!r}")
            self._handlers.setdefault(event, []).append((fn, once))
            return fn

        return register if handler is None else register(handler)

    def off(self, event: str, handler: Handler | None = None) -> None:
        """Remove ``handler`` from ``event``, or every handler of ``event`` when None."""
        self._check_event(event)
        if handler is None:
            self._handlers.pop(event, None)
        else:
            self._handlers[event] = [h for h in self._handlers.get(event, []) if h[0] != handler]

    def remove_all_listeners(self) -> None:
        """Forget every handler (done when an object reaches its final state)."""
        self._handlers.clear()

    def listener_count(self, event: str) -> int:
        """How many handlers ``event`` has."""
        self._check_event(event)
        return len(self._handlers.get(event, []))

    def emit(self, event: str, *args: Any) -> None:
        """Call the handlers of ``event`` with ``args``.

        Called by rtcroom itself (the network layer and the objects' state changes); user code
        has no reason to emit.
        """
        self._check_event(event)
        handlers = self._handlers.get(event)
        if not handlers:
            return
        if any(once for _, once in handlers):
            self._handlers[event] = [h for h in handlers if not h[1]]
        for handler, _ in list(handlers):
            try:
                result = handler(*args)
            except Exception:
                logger.exception("%s %r handler %r failed", type(self).__name__, event, handler)
                continue
            if inspect.isawaitable(result):
                self._start_handler_task(event, handler, result)

    def _start_handler_task(self, event: str, handler: Handler, awaitable: Any) -> None:
        try:
            task = asyncio.ensure_future(awaitable)
        except RuntimeError:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            logger.error("%r handler %r is async but no event loop is running", event, handler)
            return
        self._handler_tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._handler_tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error(
                    "%s %r handler %r failed",
                    type(self).__name__,
                    event,
                    handler,
                    exc_info=t.exception(),
                )

        task.add_done_callback(done)

    async def drain(self) -> None:
        """Wait until every async handler started so far has finished."""
        while self._handler_tasks:
            await asyncio.gather(*self._handler_tasks, return_exceptions=True)

    def wait_for(
        self,
        event: str,
        timeout: float | None = None,
        predicate: Callable[..., bool] | None = None,
    ) -> Coroutine[Any, Any, Any]:
        """Wait for the next ``event`` (for which ``predicate(*args)`` holds, if given).

        ``await obj.wait_for(...)`` returns the event's argument, a tuple when it has several,
        None when it has none, and raises :class:`asyncio.TimeoutError` after ``timeout``
        seconds. The event is caught from the moment of the call, not of the await, so
        ``waiter = obj.wait_for("x")`` followed by the action that fires it cannot miss it.
        """
        self._check_event(event)
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

        def catch(*args: Any) -> None:
            if future.done():
                return
            try:
                if predicate is not None and not predicate(*args):
                    return
            except Exception as exc:  # the predicate's error belongs to the waiter
                future.set_exception(exc)
                return
            future.set_result(args)

        self.on(event, catch)
        return self._wait(event, future, catch, timeout)

    async def _wait(
        self,
        event: str,
        future: asyncio.Future[tuple[Any, ...]],
        catch: Handler,
        timeout: float | None,
    ) -> Any:
        try:
            args = await asyncio.wait_for(future, timeout)
        finally:
            self.off(event, catch)
        if not args:
            return None
        return args[0] if len(args) == 1 else args


@dataclass(frozen=True)
class EventListenerEvent:
    """A fine-grained SDK event for diagnostics, delivered to ``ConnectOptions.event_listener``.

    Signaling events: ``early`` (about to connect), ``connecting``, ``open``, ``waiting`` (server
    busy, will retry; level warning) and ``closed`` (payload: ``{"reason": "busy" | "failed" |
    "local" | "remote" | "timeout"}``; level info when the client closed, error otherwise).
    ``elapsed_time`` is in ms since ``connect()`` was called, ``timestamp`` in ms since the epoch.
    """

    group: EventListenerGroup
    level: EventListenerLevel
    name: str
    elapsed_time: float
    timestamp: float = field(default_factory=lambda: time.time() * 1000.0)
    payload: Any = None

    SIGNALING_NAMES: ClassVar[frozenset[str]] = frozenset(
        {"closed", "connecting", "early", "open", "waiting"}
    )

    @classmethod
    def signaling(
        cls, name: str, started_at: float, payload: Any = None, error: bool = False
    ) -> EventListenerEvent:
        """A signaling event; ``started_at`` is the ``time.monotonic()`` when connect() began."""
        if name not in cls.SIGNALING_NAMES:
            raise ValueError(
                f"signaling event {name!r} is not one of {', '.join(sorted(cls.SIGNALING_NAMES))}"
            )
        if error:
            level = EventListenerLevel.ERROR
        elif name == "waiting":
            level = EventListenerLevel.WARNING
        else:
            level = EventListenerLevel.INFO
        return cls(
            group=EventListenerGroup.SIGNALING,
            level=level,
            name=name,
            elapsed_time=(time.monotonic() - started_at) * 1000.0,
            payload=payload,
        )


_listener_tasks: set[asyncio.Task[Any]] = set()


def deliver(listener: Any, event: EventListenerEvent) -> None:
    """Hand ``event`` to a ConnectOptions.event_listener (a callable, or an object with emit).

    Called by the signaling client at each connection state change; a failing or async
    listener is handled as an event handler would be.
    """
    if listener is None:
        return
    try:
        emit = getattr(listener, "emit", None)
        result = emit("event", event) if callable(emit) else listener(event)
    except Exception:
        logger.exception("event_listener failed on %s", event.name)
        return
    if inspect.isawaitable(result):
        task = asyncio.ensure_future(result)
        _listener_tasks.add(task)
        task.add_done_callback(_listener_done)


def _listener_done(task: asyncio.Task[Any]) -> None:
    _listener_tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("event_listener failed", exc_info=task.exception())
