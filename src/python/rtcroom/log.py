"""Logging per component, set from a ConnectOptions ``log_level``.

Components and their loggers: ``default`` -> ``rtcroom``, ``media`` -> ``rtcroom.media``,
``signaling`` -> ``rtcroom.signaling``, ``webrtc`` -> ``rtcroom.webrtc`` plus aiortc's and
aioice's own loggers. ``off`` silences a component. rtcroom only sets levels; when a level asks
for more than warnings and the application has configured no logging at all, one stderr
handler is added to ``rtcroom`` so the asked-for messages are seen (as the browser SDK prints
to the console).
"""

from __future__ import annotations

import logging
from typing import Any

from rtcroom.constants import LogLevel
from rtcroom.options import LogLevels

__all__ = ["COMPONENT_LOGGERS", "apply_log_levels"]

COMPONENT_LOGGERS: dict[str, tuple[str, ...]] = {
    "default": ("rtcroom",),
    "media": ("rtcroom.media",),
    "signaling": ("rtcroom.signaling",),
    "webrtc": ("rtcroom.webrtc", "aiortc", "aioice"),
}

_LEVELS = {
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARN: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
    LogLevel.OFF: logging.CRITICAL + 1,
}

_handler: logging.Handler | None = None


def apply_log_levels(levels: LogLevels | LogLevel | str | dict[str, Any]) -> None:
    """Set each component's loggers to its level."""
    global _handler
    resolved = LogLevels.of(levels)
    for component, names in COMPONENT_LOGGERS.items():
        level = _LEVELS[getattr(resolved, component)]
        for name in names:
            logging.getLogger(name).setLevel(level)
    verbose = any(_LEVELS[getattr(resolved, c)] < logging.WARNING for c in COMPONENT_LOGGERS)
    package = logging.getLogger("rtcroom")
    if verbose and _handler is None and not logging.getLogger().handlers and not package.handlers:
        _handler = logging.StreamHandler()
        _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        package.addHandler(_handler)
