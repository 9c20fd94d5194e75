"""Simulcast on the receiving side: which SSRCs are a track's layers, how fast each layer is
arriving, and which layer a subscriber with a given bitrate budget gets until the bandwidth
allocator decides instead."""

from __future__ import annotations

from collections.abc import Sequence

from aiortc.sdp import SessionDescription

RATE_WINDOW = 0.5
"""Seconds over which each stream's bitrate is measured."""


def simulcast_ssrcs(sdp: str, mid: str) -> list[int]:
    """The SSRCs of media section `mid`'s SIM group, lowest layer first; [] without one."""
    groups = _ssrc_groups(sdp, mid, "SIM")
    return groups[0] if groups else []


def rtx_ssrcs(sdp: str, mid: str) -> dict[int, int]:
    """RTX SSRC -> the SSRC it repairs, from media section `mid`'s FID groups (one per stream,
    so one per simulcast layer)."""
    return {group[1]: group[0] for group in _ssrc_groups(sdp, mid, "FID") if len(group) == 2}


def _ssrc_groups(sdp: str, mid: str, semantic: str) -> list[list[int]]:
    for media in SessionDescription.parse(sdp).media:
        if media.rtp.muxId == mid:
            return [[int(s) for s in group.items] for group in media.ssrc_group
                    if group.semantic == semantic]
    return []


def choose_layer(bitrates: Sequence[float | None], budget: float) -> int:
    """The highest layer whose measured bitrate fits in `budget` (bits/s); the lowest layer when
    none does. Layers not measured yet (None) are not chosen."""
    best = 0
    for layer, rate in enumerate(bitrates):
        if rate is not None and rate <= budget:
            best = layer
    return best


class StreamRates:
    """Bits per second of each stream (SSRC), over consecutive windows of RATE_WINDOW seconds."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self.rates: dict[int, float] = {}
        self._bytes: dict[int, int] = {}
        self._start: float | None = None

    def add(self, ssrc: int, size: int, now: float) -> bool:
        """Count a packet of `size` bytes; True when this closed a window (rates changed)."""
        if self._start is None:
            self._start = now
        self._bytes[ssrc] = self._bytes.get(ssrc, 0) + size
        elapsed = now - self._start
        if elapsed < self.window:
            return False
        self.rates = {s: 8 * n / elapsed for s, n in self._bytes.items()}
        self._bytes = {}
        self._start = now
        return True
