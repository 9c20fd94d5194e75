"""Twilio-shaped resource SIDs: a two-letter prefix and 32 hex digits."""

from __future__ import annotations

import secrets

ROOM = "RM"
PARTICIPANT = "PA"
TRACK = "MT"
SESSION = "SS"


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)
