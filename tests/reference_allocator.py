"""Plain-Python oracle of the bandwidth allocator: the rules of rtcroom.bandwidth's docstring,
written for clarity, not speed. Same dataclasses in and out as rtcroom.bandwidth.allocate.

Bad inputs raise ValueError whose message starts with the field's name, like the native one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import cast

from rtcroom.bandwidth import (
    Allocation,
    Reason,
    SubscribedVideoTrack,
    Subscription,
    TrackAllocation,
)
from rtcroom.options import VideoRenderDimensions, VideoTrackDimensions

PRIORITIES = ("low", "standard", "high")
MODES = ("grid", "collaboration", "presentation")
SWITCH_OFF_MODES = ("detected", "predicted", "disabled")
MAX_LAYER_BITRATE = 10**10
MAX_RENDER_SIDE = 16384
MARGIN_DIVISOR = 10  # hysteresis: 10 % of the budget


def validate(sub: Subscription) -> None:
    p = sub.profile
    if p.mode not in MODES:
        raise ValueError(f"profile.mode must be one of {', '.join(MODES)}; got {p.mode!r}")
    if p.track_switch_off_mode not in SWITCH_OFF_MODES:
        raise ValueError(f"profile.track_switch_off_mode must be one of "
                         f"{', '.join(SWITCH_OFF_MODES)}; got {p.track_switch_off_mode!r}")
    cap = p.max_subscription_bitrate
    if cap is not None and cap < 0:
        raise ValueError(f"profile.max_subscription_bitrate must be non-negative, got {cap}")
    if p.dominant_speaker_priority not in PRIORITIES:
        raise ValueError(f"profile.dominant_speaker_priority must be one of low, standard, high; "
                         f"got {p.dominant_speaker_priority!r}")
    for name in PRIORITIES:
        dims: VideoTrackDimensions = getattr(render_dimensions(sub), name)
        for side in ("width", "height"):
            if getattr(dims, side) > MAX_RENDER_SIDE:
                raise ValueError(f"profile.render_dimensions.{name}.{side} must be at most "
                                 f"{MAX_RENDER_SIDE}")
    seen: dict[str, int] = {}
    for j, t in enumerate(sub.tracks):
        f = f"tracks[{j}]"
        if not t.track_id:
            raise ValueError(f"{f}.track_id must not be empty")
        if t.track_id in seen:
            raise ValueError(f"{f}.track_id {t.track_id!r} duplicates tracks[{seen[t.track_id]}]")
        seen[t.track_id] = j
        if t.priority not in PRIORITIES:
            raise ValueError(f"{f}.priority must be one of low, standard, high; got {t.priority!r}")
        if not t.layers:
            raise ValueError(f"{f}.layers must not be empty")
        for k, layer in enumerate(t.layers):
            lf = f"{f}.layers[{k}]"
            if not 1 <= layer.bitrate <= MAX_LAYER_BITRATE:
                raise ValueError(f"{lf}.bitrate must be 1..{MAX_LAYER_BITRATE} bps")
            if layer.width < 1:
                raise ValueError(f"{lf}.width must be positive")
            if layer.height < 1:
                raise ValueError(f"{lf}.height must be positive")
            if k and layer.bitrate <= t.layers[k - 1].bitrate:
                raise ValueError(f"{lf}.bitrate must be greater than the layer below's")
            if k and (layer.width < t.layers[k - 1].width or layer.height < t.layers[k - 1].height):
                raise ValueError(f"{lf} must not be smaller than the layer below")


def effective_priority(sub: Subscription, t: SubscribedVideoTrack) -> int:
    rank = PRIORITIES.index(t.priority)
    if t.dominant_speaker:
        rank = max(rank, PRIORITIES.index(sub.profile.dominant_speaker_priority))
    return rank


DEFAULT_RENDER_DIMENSIONS = VideoRenderDimensions()


def render_dimensions(sub: Subscription) -> VideoRenderDimensions:
    return sub.profile.render_dimensions or DEFAULT_RENDER_DIMENSIONS


def render_box(sub: Subscription, t: SubscribedVideoTrack) -> VideoTrackDimensions:
    box: VideoTrackDimensions = getattr(render_dimensions(sub),
                                        PRIORITIES[effective_priority(sub, t)])
    return box


def target_layer(sub: Subscription, t: SubscribedVideoTrack) -> int:
    box = render_box(sub, t)
    for k, layer in enumerate(t.layers):
        if layer.width >= box.width or layer.height >= box.height:
            return k
    return len(t.layers) - 1


def allocate(sub: Subscription, available_bitrate: int, *, congestion: bool = False,
             previous: Mapping[str, int | None] | None = None) -> Allocation:
    validate(sub)
    if available_bitrate < 0:
        raise ValueError("available_bitrate must be non-negative")
    p = sub.profile
    tracks = list(sub.tracks)
    n = len(tracks)

    def before(j: int) -> int | None | str:
        """Previous layer (clamped to the top), None when off, "new" when not named."""
        if previous is None or tracks[j].track_id not in previous:
            return "new"
        layer = previous[tracks[j].track_id]
        return None if layer is None else min(layer, len(tracks[j].layers) - 1)

    budget, limit = available_bitrate, "bandwidth"
    if p.max_subscription_bitrate is not None and p.max_subscription_bitrate < available_bitrate:
        budget, limit = p.max_subscription_bitrate, "max_subscription_bitrate"
    margin = budget // MARGIN_DIVISOR

    order = sorted(range(n), key=lambda j: (-effective_priority(sub, tracks[j]),
                                            not tracks[j].dominant_speaker, j))
    layer: list[int | None] = [None] * n
    reason: list[str | None] = [None] * n
    candidates: list[int] = []
    for j in order:
        if tracks[j].switched_off:
            reason[j] = "subscriber"
        elif p.max_tracks and p.max_tracks > 0 and len(candidates) >= p.max_tracks:
            reason[j] = "max_tracks"
        else:
            candidates.append(j)

    def rate(j: int, k: int) -> int:
        return tracks[j].layers[k].bitrate

    kept = [j for j in candidates
            if p.track_switch_off_mode == "disabled"
            or (p.track_switch_off_mode == "detected" and not congestion
                and isinstance(before(j), int))]
    for j in kept:
        layer[j] = 0
    used = sum(rate(j, 0) for j in kept)

    if p.mode == "presentation":
        groups = [[j for j in candidates if effective_priority(sub, tracks[j]) == rank]
                  for rank in (2, 1, 0)]
    else:
        groups = [candidates]
    for group in groups:
        for j in group:
            if j in kept:
                continue
            room = budget - used - (margin if before(j) is None else 0)
            if rate(j, 0) <= room:
                layer[j] = 0
                used += rate(j, 0)
            else:
                reason[j] = limit
        used = _fill(sub, tracks, group, layer, before, budget, margin, used)

    out = []
    for j, t in enumerate(tracks):
        k = layer[j]
        if k is not None and k < target_layer(sub, t):
            reason[j] = limit
        out.append(TrackAllocation(t.track_id, k, 0 if k is None else rate(j, k),
                                   cast(Reason | None, reason[j])))
    total = sum(a.bitrate for a in out)
    return Allocation(tuple(out), total, max(total - budget, 0))


def _fill(sub: Subscription, tracks: list[SubscribedVideoTrack], group: list[int],
          layer: list[int | None], before: Callable[[int], int | None | str], budget: int,
          margin: int, used: int) -> int:
    """Water-filling in whole layers: raise the on track with the least bitrate per unit of
    weight whose next step fits, most important first on ties, until no step fits."""
    def weight(j: int) -> int:
        if sub.profile.mode == "grid":
            return 1
        box = render_box(sub, tracks[j])
        return max(box.width, 1) * max(box.height, 1)

    while True:
        best = None
        for j in group:
            k = layer[j]
            if k is None or k >= target_layer(sub, tracks[j]):
                continue
            cost = tracks[j].layers[k + 1].bitrate - tracks[j].layers[k].bitrate
            prev = before(j)
            above = prev is None or (isinstance(prev, int) and k + 1 > prev)
            if cost > budget - used - (margin if above else 0):
                continue
            # Compare bitrate/weight exactly: a/wa < b/wb  <=>  a*wb < b*wa.
            share = (tracks[j].layers[k].bitrate, weight(j))
            if best is None or share[0] * best[2] < best[1] * share[1]:
                best = (j, share[0], share[1], cost)
        if best is None:
            return used
        layer[best[0]] = cast(int, layer[best[0]]) + 1
        used += best[3]

