"""Recently received packets of a published track, by SSRC and sequence number, to answer NACKs
from any subscriber's leg without asking the publisher again."""

from __future__ import annotations

DEFAULT_SIZE = 1024
"""Packets kept per SSRC: about a second of 8 Mbit/s video in 1000-byte packets."""


class PacketCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._rings: dict[int, list[tuple[int, bytes] | None]] = {}

    def put(self, ssrc: int, sequence_number: int, data: bytes) -> None:
        ring = self._rings.get(ssrc)
        if ring is None:
            ring = self._rings[ssrc] = [None] * self.size
        ring[sequence_number % self.size] = (sequence_number, data)

    def get(self, ssrc: int, sequence_number: int) -> bytes | None:
        ring = self._rings.get(ssrc)
        if ring is None:
            return None
        entry = ring[sequence_number % self.size]
        if entry is None or entry[0] != sequence_number:
            return None
        return entry[1]

    def clear(self) -> None:
        self._rings.clear()
