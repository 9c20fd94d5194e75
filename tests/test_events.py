"""The event emitter: registration forms, sync and async handlers, errors, wait_for."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import pytest

from rtcroom.constants import EventListenerGroup, EventListenerLevel
from rtcroom.events import EventEmitter, EventListenerEvent, deliver


class Thing(EventEmitter):
    EVENTS: ClassVar[frozenset[str]] = frozenset({"ping", "pong"})


async def test_handlers_run_in_order_with_arguments() -> None:
    thing, seen = Thing(), []
    thing.on("ping", lambda *a: seen.append(("first", a)))

    @thing.on("ping")
    def second(*args: Any) -> None:
        seen.append(("second", args))

    thing.emit("ping", 1, "two")
    assert seen == [("first", (1, "two")), ("second", (1, "two"))]
    assert second.__name__ == "second"  # the decorator returns the function


async def test_async_handlers_are_tracked_tasks() -> None:
    thing, seen = Thing(), []
    release = asyncio.Event()

    @thing.on("ping")
    async def slow(value: int) -> None:
        await release.wait()
        seen.append(value)

    thing.emit("ping", 7)
    assert seen == [] and len(thing._handler_tasks) == 1
    release.set()
    await thing.drain()
    assert seen == [7] and not thing._handler_tasks


async def test_failing_handlers_are_logged_and_do_not_stop_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    thing, seen = Thing(), []

    def broken(_: Any) -> None:
        raise RuntimeError("sync boom")

    async def broken_async(_: Any) -> None:
        raise RuntimeError("async boom")

    thing.on("ping", broken)
    thing.on("ping", broken_async)
    thing.on("ping", seen.append)
    with caplog.at_level(logging.ERROR, logger="rtcroom"):
        thing.emit("ping", 1)
        await thing.drain()
    assert seen == [1]
    messages = [r.exc_info[1].args[0] for r in caplog.records if r.exc_info and r.exc_info[1]]
    assert sorted(messages) == ["async boom", "sync boom"]


async def test_unknown_event_names_raise_everywhere() -> None:
    thing = Thing()
    for call in (
        lambda: thing.on("pings", print),
        lambda: thing.once("Ping", print),
        lambda: thing.off("x"),
        lambda: thing.emit("participantConnected"),
        lambda: thing.listener_count("nope"),
    ):
        with pytest.raises(ValueError, match="its events are: ping, pong"):
            call()
    with pytest.raises(ValueError):
        await thing.wait_for("nope")


async def test_non_callable_handler_is_refused() -> None:
    with pytest.raises(TypeError, match="not callable"):
        Thing().on("ping", 42)  # type: ignore[arg-type]


async def test_once_and_off() -> None:
    thing, seen = Thing(), []
    thing.once("ping", seen.append)
    thing.on("pong", seen.append)
    thing.emit("ping", 1)
    thing.emit("ping", 2)
    thing.off("pong", seen.append)
    thing.emit("pong", 3)
    assert seen == [1]
    thing.on("pong", seen.append)
    thing.on("pong", print)
    thing.off("pong")
    assert thing.listener_count("pong") == 0


async def test_wait_for_returns_argument_tuple_or_none() -> None:
    thing = Thing()
    loop = asyncio.get_running_loop()
    loop.call_soon(thing.emit, "ping", "a")
    assert await thing.wait_for("ping", timeout=5) == "a"
    loop.call_soon(thing.emit, "ping", "a", "b")
    assert await thing.wait_for("ping", timeout=5) == ("a", "b")
    loop.call_soon(thing.emit, "pong")
    assert await thing.wait_for("pong", timeout=5) is None
    assert thing.listener_count("ping") == 0  # wait_for cleans up


async def test_wait_for_predicate_and_timeout() -> None:
    thing = Thing()
    loop = asyncio.get_running_loop()
    for value in (1, 2, 3):
        loop.call_soon(thing.emit, "ping", value)
    assert await thing.wait_for("ping", timeout=5, predicate=lambda v: v > 1) == 2
    with pytest.raises(asyncio.TimeoutError):
        await thing.wait_for("pong", timeout=0.01)
    assert thing.listener_count("pong") == 0


async def test_event_listener_events() -> None:
    import time

    started = time.monotonic()
    got: list[EventListenerEvent] = []
    event = EventListenerEvent.signaling("waiting", started)
    assert (event.group, event.level, event.name) == (
        EventListenerGroup.SIGNALING,
        EventListenerLevel.WARNING,
        "waiting",
    )
    assert event.elapsed_time >= 0 and event.timestamp > 1e12
    closed = EventListenerEvent.signaling("closed", started, {"reason": "timeout"}, error=True)
    assert closed.level == EventListenerLevel.ERROR and closed.payload == {"reason": "timeout"}
    assert EventListenerEvent.signaling("open", started).level == EventListenerLevel.INFO
    with pytest.raises(ValueError, match="closed, connecting, early, open, waiting"):
        EventListenerEvent.signaling("opened", started)

    deliver(got.append, event)

    class Emitterish:
        def emit(self, name: str, e: EventListenerEvent) -> None:
            got.append(e) if name == "event" else None

    deliver(Emitterish(), closed)

    async def async_listener(e: EventListenerEvent) -> None:
        got.append(e)

    deliver(async_listener, event)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert got == [event, closed, event]


async def test_wait_for_catches_events_fired_before_the_await() -> None:
    thing = Thing()
    waiter = thing.wait_for("ping", timeout=5)
    thing.emit("ping", "early")
    assert await waiter == "early"
    assert thing.listener_count("ping") == 0


async def test_wait_for_predicate_error_goes_to_the_waiter() -> None:
    thing = Thing()
    waiter = thing.wait_for("ping", timeout=5, predicate=lambda v: 1 / v > 0)
    thing.emit("ping", 0)
    with pytest.raises(ZeroDivisionError):
        await waiter


def test_async_handler_without_a_running_loop_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    thing, seen = Thing(), []

    async def handler(value: int) -> None:
        seen.append(value)

    thing.on("ping", handler)
    thing.on("ping", seen.append)
    with caplog.at_level(logging.ERROR, logger="rtcroom"):
        thing.emit("ping", 1)
    assert seen == [1]  # the sync handler still ran; the coroutine was closed, not leaked
    assert "no event loop is running" in caplog.text
