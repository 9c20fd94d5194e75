"""A group room's periodic signals (dominant speaker, bandwidth allocation, network quality) run
in tasks the room holds: one failing tick must be logged and must not end the signal for good."""

from __future__ import annotations

import asyncio
import logging

import pytest
from rtcroom.server import grouproom
from serverutil import wait_until


async def test_a_failing_tick_is_logged_and_the_next_ones_run(
        caplog: pytest.LogCaptureFixture) -> None:
    calls: list[float] = []

    def tick() -> None:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) == 2:
            raise RuntimeError("bad report")

    with caplog.at_level(logging.ERROR, logger=grouproom.__name__):
        task = asyncio.ensure_future(grouproom._every(0.01, tick, "test"))
        try:
            await wait_until(lambda: len(calls) >= 5, 10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    [record] = [r for r in caplog.records if r.name == grouproom.__name__]
    assert record.getMessage() == "a room's test tick failed"
    assert record.exc_info is not None and "bad report" in str(record.exc_info[1])
