"""TwilioConnection framing (version 2): the envelope around every signaling WebSocket frame.

Each text frame is one JSON object with a ``type``: ``hello`` / ``welcome`` open a session and
negotiate the heartbeat timeout, ``msg`` carries a room-protocol body, ``heartbeat`` keeps the
connection alive, ``bye`` ends it, ``bad`` and ``busy`` are the server's refusals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rtcroom.signaling.fields import MessageFormatError, opt, req

__all__ = [
    "CLOSE_BUSY_WAIT",
    "CLOSE_HEARTBEATS_MISSED",
    "CLOSE_HELLO_FAILED",
    "CLOSE_NETWORK_CHANGED",
    "CLOSE_NORMAL",
    "CLOSE_OPEN_TIMEOUT",
    "CLOSE_SEND_FAILED",
    "CLOSE_SERVER_BUSY",
    "CLOSE_WELCOME_TIMEOUT",
    "TCMP_VERSION",
    "Bad",
    "Busy",
    "Bye",
    "Frame",
    "Heartbeat",
    "Hello",
    "Msg",
    "Welcome",
    "encode_frame",
    "parse_frame",
]

TCMP_VERSION = 2

# WebSocket close codes twilio-video.js uses, so both ends read a close the same way.
CLOSE_NORMAL = 1000
CLOSE_WELCOME_TIMEOUT = 3000
CLOSE_HEARTBEATS_MISSED = 3001
CLOSE_HELLO_FAILED = 3002
CLOSE_SEND_FAILED = 3003
CLOSE_NETWORK_CHANGED = 3004
CLOSE_BUSY_WAIT = 3005
CLOSE_SERVER_BUSY = 3006
CLOSE_OPEN_TIMEOUT = 3007

# The largest frame either end accepts: SDP with many m-lines stays far below this.
MAX_FRAME_BYTES = 1 << 20


@dataclass
class Hello:
    id: str
    timeout: int
    version: int = TCMP_VERSION
    body: dict[str, Any] | None = None
    cookie: str | None = None
    type: str = field(default="hello", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Hello:
        version = req(d, "hello", "version", int)
        if version != TCMP_VERSION:
            raise MessageFormatError(f"hello.version {version} is not supported (want 2)")
        timeout = req(d, "hello", "timeout", int)
        if timeout <= 0:
            raise MessageFormatError("hello.timeout must be positive")
        return cls(id=req(d, "hello", "id", str), timeout=timeout, version=version,
                   body=opt(d, "hello", "body", dict), cookie=opt(d, "hello", "cookie", str))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "hello", "id": self.id, "timeout": self.timeout,
                               "version": self.version}
        if self.body is not None:
            out["body"] = self.body
        if self.cookie is not None:
            out["cookie"] = self.cookie
        return out


@dataclass
class Welcome:
    negotiatedTimeout: int
    type: str = field(default="welcome", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Welcome:
        timeout = req(d, "welcome", "negotiatedTimeout", int)
        if timeout <= 0:
            raise MessageFormatError("welcome.negotiatedTimeout must be positive")
        return cls(timeout)

    def to_wire(self) -> dict[str, Any]:
        return {"type": "welcome", "negotiatedTimeout": self.negotiatedTimeout}


@dataclass
class Msg:
    body: dict[str, Any]
    type: str = field(default="msg", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Msg:
        return cls(req(d, "msg", "body", dict))

    def to_wire(self) -> dict[str, Any]:
        return {"type": "msg", "body": self.body}


@dataclass
class Heartbeat:
    type: str = field(default="heartbeat", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Heartbeat:
        return cls()

    def to_wire(self) -> dict[str, Any]:
        return {"type": "heartbeat"}


@dataclass
class Bye:
    type: str = field(default="bye", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Bye:
        return cls()

    def to_wire(self) -> dict[str, Any]:
        return {"type": "bye"}


@dataclass
class Bad:
    reason: str
    type: str = field(default="bad", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Bad:
        return cls(opt(d, "bad", "reason", str, ""))

    def to_wire(self) -> dict[str, Any]:
        return {"type": "bad", "reason": self.reason}


@dataclass
class Busy:
    retryAfter: int
    keepAlive: bool = False
    cookie: str | None = None
    type: str = field(default="busy", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Busy:
        return cls(retryAfter=req(d, "busy", "retryAfter", int),
                   keepAlive=opt(d, "busy", "keepAlive", bool, False),
                   cookie=opt(d, "busy", "cookie", str))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "busy", "retryAfter": self.retryAfter,
                               "keepAlive": self.keepAlive}
        if self.cookie is not None:
            out["cookie"] = self.cookie
        return out


Frame = Hello | Welcome | Msg | Heartbeat | Bye | Bad | Busy

_FRAMES: dict[str, Any] = {
    "hello": Hello, "welcome": Welcome, "msg": Msg, "heartbeat": Heartbeat, "bye": Bye,
    "bad": Bad, "busy": Busy,
}


def parse_frame(text: str | bytes) -> Frame:
    """Decode one WebSocket text frame; raises MessageFormatError saying what was wrong."""
    if len(text) > MAX_FRAME_BYTES:
        raise MessageFormatError(f"frame of {len(text)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageFormatError(f"frame is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageFormatError(f"frame must be a JSON object, got {type(data).__name__}")
    kind = req(data, "frame", "type", str)
    cls = _FRAMES.get(kind)
    if cls is None:
        raise MessageFormatError(f"unknown frame type {kind!r}")
    frame: Frame = cls.from_wire(data)
    return frame


def encode_frame(frame: Frame) -> str:
    """The JSON text of ``frame``."""
    return json.dumps(frame.to_wire(), separators=(",", ":"))
