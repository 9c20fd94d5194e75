"""Per-component log levels from ConnectOptions.log_level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from rtcroom import log
from rtcroom.client import LocalParticipant, Room
from rtcroom.options import ConnectOptions, LogLevels

NAMES = [name for names in log.COMPONENT_LOGGERS.values() for name in names]


@pytest.fixture(autouse=True)
def restore_loggers() -> Iterator[None]:
    before = {name: logging.getLogger(name).level for name in NAMES}
    handlers = list(logging.getLogger("rtcroom").handlers)
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger("rtcroom").handlers[:] = handlers
    log._handler = None


def test_one_level_for_every_component() -> None:
    log.apply_log_levels("error")
    assert {logging.getLogger(n).level for n in NAMES} == {logging.ERROR}


def test_levels_per_component_and_off() -> None:
    log.apply_log_levels({"media": "debug", "signaling": "off", "webrtc": "info"})
    assert logging.getLogger("rtcroom.media").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("rtcroom.signaling").level > logging.CRITICAL
    assert logging.getLogger("aiortc").level == logging.INFO
    assert logging.getLogger("aioice").level == logging.INFO
    assert logging.getLogger("rtcroom").level == logging.WARNING


def test_room_applies_connect_options_log_level() -> None:
    Room("RM1", "r", LocalParticipant("PA1", "me"), options=ConnectOptions(log_level="debug"))
    assert logging.getLogger("rtcroom.signaling").level == logging.DEBUG


def test_verbose_levels_get_a_handler_only_without_logging_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    logging.getLogger("rtcroom").handlers[:] = []
    log.apply_log_levels("warn")
    assert logging.getLogger("rtcroom").handlers == []
    log.apply_log_levels(LogLevels(media="debug"))  # type: ignore[arg-type]
    assert len(logging.getLogger("rtcroom").handlers) == 1
    log.apply_log_levels("debug")
    assert len(logging.getLogger("rtcroom").handlers) == 1  # added once


def test_bad_level_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="log_level: 'trace' is not one of debug, info, warn"):
        log.apply_log_levels("trace")
