"""Downlink bandwidth allocation for a subscriber's video tracks (the reference's BandwidthProfile).

For one subscriber, given its ``VideoBandwidthProfileOptions`` (rtcroom.options), its
subscribed video tracks with their simulcast layers, the downlink estimate and the previous
allocation, the allocator decides for every track: the layer to forward (or off), its bitrate,
and the reason when it is off or below the layer its render dimensions ask for. The SFU calls
it whenever an estimate or a subscription changes; the native core (src/native/allocator/) runs
many subscribers in one call with the GIL released.

The rules, in order:

1. Budget: the estimate, capped by ``max_subscription_bitrate`` (None: no cap). A track held
   back by the budget has reason ``"bandwidth"``, or ``"max_subscription_bitrate"`` when the cap
   is what binds.
2. Effective priority: the track's priority (the subscriber's override, else the publisher's),
   raised to ``dominant_speaker_priority`` for the dominant speaker's tracks (never lowered).
   Importance order: effective priority, then the dominant speaker, then subscription order;
   every tie is broken by that order.
3. Target layer: the smallest layer that fills the render dimensions of the track's effective
   priority without upscaling when fitted into them keeping its aspect ratio, i.e. whose width
   or height reaches the box (640x360 fills 640x480); the top layer when none does. Render
   dimensions of 0 or less ask for the lowest layer. No layer above the target is ever chosen.
4. Off by choice: tracks ``switched_off`` by the subscriber (reason ``"subscriber"``), then every
   track past the first ``max_tracks`` in importance order (``"max_tracks"``; None, 0 or less: no
   limit). These count for nothing below.
5. Tracks the switch-off mode keeps on are on at their lowest layer before anything else:
   ``disabled`` keeps every track on (degrading to the lowest layer, never switching off);
   ``detected`` without ``congestion`` keeps on the tracks that were on in the previous
   allocation (the estimate alone is not a reason to switch off); ``predicted``, and
   ``detected`` with congestion, keep nothing, so tracks go off as soon as the estimate says
   they cannot fit. Only these kept tracks can take the total past the budget; the allocation
   then reports the excess as ``overshoot_bitrate``. Otherwise the total never exceeds the budget.
6. Switching on and sharing, by mode:

   - grid: in importance order, each track is switched on at its lowest layer if that fits what
     is left (so lower-priority tracks are the ones switched off); then layers are raised one
     step at a time, always for the on track with the smallest bitrate whose next step fits:
     an equal share, irrespective of priority.
   - collaboration: the same, but layers are raised for the smallest bitrate per pixel of the
     render dimensions of the track's priority, so shares follow the render dimensions; every
     track gets its lowest layer before any track gets more, so higher-priority tracks are
     degraded before a lower-priority one is switched off.
   - presentation: one priority at a time, from high to low: its tracks are switched on and
     raised up to their target layers (equal shares among them) before the next priority sees
     any bandwidth, so lower-priority tracks are switched off to preserve the higher ones.

   A track that does not fit is off even when a less important, smaller track after it fits:
   that one is still switched on, since leaving bandwidth unused helps nobody.
7. Hysteresis (``HYSTERESIS`` = 10 % of the budget): switching on a track that was off in the
   previous allocation (for whatever reason), or raising a track above its previous layer, must
   leave 10 % of the budget unused; keeping a track on, or returning it to its previous layer,
   only has to fit. So after a track goes off (or down), the estimate has to rise about 11 %
   before it comes back: an estimate wobbling by less than that switches a track off at most
   once, never on and off again. Tracks the previous allocation does not name (new
   subscriptions, the first allocation) are judged without the margin; ids it names that are no
   longer subscribed are ignored, and a previous layer the publisher no longer sends counts as
   the track's top layer.
8. Reasons: an on track below its target layer has the budget's reason; at its target, None.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, cast

import numpy as np
import numpy.typing as npt

from rtcroom._native import allocator as _native
from rtcroom.constants import TrackPriority
from rtcroom.options import VideoBandwidthProfileOptions, VideoRenderDimensions

__all__ = [
    "HYSTERESIS",
    "Allocation",
    "AllocationPlan",
    "BatchAllocation",
    "Reason",
    "SubscribedVideoTrack",
    "Subscription",
    "TrackAllocation",
    "VideoLayer",
    "allocate",
]

Reason = Literal["subscriber", "max_tracks", "bandwidth", "max_subscription_bitrate"]

HYSTERESIS: Final = 1 / _native.HYSTERESIS_DIVISOR
_REASONS: Final[tuple[Reason | None, ...]] = tuple(
    cast(Reason, name) if name else None for name in _native.REASONS)


@dataclass(frozen=True)
class VideoLayer:
    """One simulcast layer as the publisher sends it: bps and pixels."""

    bitrate: int
    width: int
    height: int


@dataclass(frozen=True)
class SubscribedVideoTrack:
    """A subscribed video track: layers lowest first (one when not simulcast); ``priority`` is
    the subscriber's override, else the publisher's; ``dominant_speaker`` when it is the dominant
    speaker's and the subscriber asked for dominant speaker events; ``switched_off`` by the
    subscriber."""

    track_id: str
    layers: Sequence[VideoLayer]
    priority: TrackPriority | str = TrackPriority.STANDARD
    dominant_speaker: bool = False
    switched_off: bool = False


@dataclass(frozen=True)
class Subscription:
    """What one subscriber receives: its profile and its video tracks in subscription order."""

    tracks: Sequence[SubscribedVideoTrack]
    profile: VideoBandwidthProfileOptions = field(default_factory=VideoBandwidthProfileOptions)


@dataclass(frozen=True)
class TrackAllocation:
    """``layer`` is an index into the track's layers, None when off; ``reason`` says why it is
    off or below its target layer (None when it gets what its render dimensions ask for)."""

    track_id: str
    layer: int | None
    bitrate: int
    reason: Reason | None


@dataclass(frozen=True)
class Allocation:
    """One subscriber's allocation, tracks in subscription order."""

    tracks: tuple[TrackAllocation, ...]
    total_bitrate: int
    overshoot_bitrate: int  # total above the budget; only kept-on tracks cause one (rule 5)

    @property
    def layers(self) -> dict[str, int | None]:
        """Track id -> layer or None: what the next allocation takes as ``previous``."""
        return {t.track_id: t.layer for t in self.tracks}

    def __getitem__(self, track_id: str) -> TrackAllocation:
        for t in self.tracks:
            if t.track_id == track_id:
                return t
        raise KeyError(track_id)


_DEFAULT_RENDER_DIMENSIONS: Final = VideoRenderDimensions()

Previous = Allocation | Mapping[str, "int | None"]


def _pack(subscription: Subscription) -> tuple[Any, ...]:
    p = subscription.profile
    r = p.render_dimensions or _DEFAULT_RENDER_DIMENSIONS
    return (p.mode, p.track_switch_off_mode, p.max_subscription_bitrate, p.max_tracks or 0,
            p.dominant_speaker_priority,
            (r.low.width, r.low.height, r.standard.width, r.standard.height,
             r.high.width, r.high.height),
            [(t.track_id, t.priority, t.dominant_speaker, t.switched_off,
              [(layer.bitrate, layer.width, layer.height) for layer in t.layers])
             for t in subscription.tracks])


def _ints(values: int | Sequence[int] | npt.NDArray[np.integer[Any]], n: int,
          name: str) -> npt.NDArray[np.int64]:
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integers (bps), got dtype {values.dtype}")
        return values.astype(np.int64, copy=False)
    try:
        items = [operator.index(values)] * n if not isinstance(values, Sequence) else [
            operator.index(v) for v in values]
        return np.array(items, dtype=np.int64)
    except (TypeError, OverflowError) as exc:
        raise ValueError(f"{name} must be integers (bps) below 2**63: {exc}") from None


class AllocationPlan:
    """Subscriptions packed once for repeated allocation: build it when subscriptions change,
    then call ``allocate`` whenever estimates change. Holds plain native data only."""

    def __init__(self, subscriptions: Sequence[Subscription]) -> None:
        self._build(subscriptions, name_subscribers=True)

    @classmethod
    def _single(cls, subscription: Subscription) -> AllocationPlan:
        plan = cls.__new__(cls)
        plan._build([subscription], name_subscribers=False)  # errors say "tracks[2]..."
        return plan

    def _build(self, subscriptions: Sequence[Subscription], name_subscribers: bool) -> None:
        self._native = _native.Plan([_pack(s) for s in subscriptions], name_subscribers)
        self._first = [int(i) for i in self._native.first_tracks]
        self._ids = [t.track_id for s in subscriptions for t in s.tracks]
        # Read-only inputs for the common case of one congestion flag for all.
        self._calm = np.zeros(len(self), np.bool_)
        self._congested = np.ones(len(self), np.bool_)

    def __len__(self) -> int:
        return len(self._first) - 1

    def allocate(self, available_bitrate: int | Sequence[int] | npt.NDArray[np.integer[Any]], *,
                 congestion: bool | Sequence[bool] | npt.NDArray[np.bool_] = False,
                 previous: BatchAllocation | Sequence[Previous | None] | None = None,
                 ) -> BatchAllocation:
        """Allocates for every subscriber; scalars apply to all of them. ``previous`` is this
        plan's last BatchAllocation (fast), or one Allocation / mapping / None per subscriber."""
        n = len(self)
        bps = _ints(available_bitrate, n, "available_bitrate")
        if isinstance(congestion, bool):
            flags = self._congested if congestion else self._calm
        else:
            flags = np.asarray(congestion, dtype=np.bool_)
        return BatchAllocation(self, *self._native.allocate(bps, flags, self._previous(previous)))

    def _previous(self, previous: BatchAllocation | Sequence[Previous | None] | None,
                  ) -> npt.NDArray[np.int32] | None:
        if previous is None:
            return None
        if isinstance(previous, BatchAllocation):
            if previous.plan is not self:
                raise ValueError("previous must come from this plan; pass one Allocation or "
                                 "mapping per subscriber after the plan changed")
            return previous.layer
        if len(previous) != len(self):
            raise ValueError(f"previous must hold one entry per subscriber ({len(self)})")
        out = np.full(len(self._ids), _native.UNKNOWN, dtype=np.int32)
        for s, prev in enumerate(previous):
            if prev is not None:
                begin, end = self._first[s], self._first[s + 1]
                out[begin:end] = _previous_layers(self._ids[begin:end], prev)
        return out


def _previous_layers(ids: Sequence[str], previous: Previous) -> list[int]:
    layers = previous.layers if isinstance(previous, Allocation) else previous
    out = []
    for track_id in ids:
        if track_id not in layers:
            out.append(_native.UNKNOWN)
            continue
        layer = layers[track_id]
        if layer is None:
            out.append(_native.OFF)
        elif isinstance(layer, (int, np.integer)) and 0 <= layer < 2**31:
            out.append(int(layer))
        else:
            raise ValueError(f"previous[{track_id!r}] must be a layer index or None, got {layer!r}")
    return out


@dataclass(eq=False, slots=True)
class BatchAllocation:
    """Allocations of every subscriber of a plan, as arrays (one entry per track, subscribers one
    after the other; ``layer`` -1 when off, ``reason`` codes index ``REASONS``)."""

    plan: AllocationPlan
    layer: npt.NDArray[np.int32]
    bitrate: npt.NDArray[np.int64]
    reason: npt.NDArray[np.uint8]
    total_bitrate: npt.NDArray[np.int64]
    overshoot_bitrate: npt.NDArray[np.int64]

    REASONS: ClassVar[tuple[Reason | None, ...]] = _REASONS

    def __len__(self) -> int:
        return len(self.total_bitrate)

    def __getitem__(self, subscriber: int) -> Allocation:
        subscriber = range(len(self))[subscriber]  # negative indices, IndexError past the end
        begin, end = self.plan._first[subscriber], self.plan._first[subscriber + 1]
        tracks = tuple(
            TrackAllocation(track_id, layer if layer >= 0 else None, bitrate, _REASONS[reason])
            for track_id, layer, bitrate, reason in zip(
                self.plan._ids[begin:end], self.layer[begin:end].tolist(),
                self.bitrate[begin:end].tolist(), self.reason[begin:end].tolist()))
        return Allocation(tracks, int(self.total_bitrate[subscriber]),
                          int(self.overshoot_bitrate[subscriber]))


def allocate(subscription: Subscription, available_bitrate: int, *, congestion: bool = False,
             previous: Previous | None = None) -> Allocation:
    """One subscriber's allocation (see the module's rules). ``previous``: the last Allocation,
    or track id -> layer or None; ids it does not name are new tracks. Raises ValueError naming
    the field for any bad input."""
    return AllocationPlan._single(subscription).allocate(
        available_bitrate, congestion=congestion, previous=[previous])[0]
