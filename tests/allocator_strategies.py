"""Hypothesis strategies for the allocator tests: valid subscriptions, estimates near the
thresholds where tracks switch, and previous allocations."""

from __future__ import annotations

import reference_allocator as ref
from hypothesis import strategies as st
from rtcroom.bandwidth import SubscribedVideoTrack, Subscription, VideoLayer
from rtcroom.constants import BandwidthProfileMode, TrackPriority, TrackSwitchOffMode
from rtcroom.options import (
    VideoBandwidthProfileOptions,
    VideoRenderDimensions,
    VideoTrackDimensions,
)

PRIORITY = st.sampled_from(list(TrackPriority))
SIDE = st.one_of(st.integers(-10, 0), st.integers(1, 2000), st.just(ref.MAX_RENDER_SIDE))


@st.composite
def layers(draw: st.DrawFn) -> list[VideoLayer]:
    out: list[VideoLayer] = []
    bitrate, width, height = 0, 0, 0
    for _ in range(draw(st.integers(1, 4))):
        bitrate += draw(st.integers(1, 1_500_000))
        width += draw(st.integers(0 if out else 1, 700))
        height += draw(st.integers(0 if out else 1, 400))
        out.append(VideoLayer(bitrate, width, height))
    return out


@st.composite
def subscriptions(draw: st.DrawFn, max_tracks: int = 8) -> Subscription:
    ids = draw(st.lists(st.sampled_from("abcdefghijkl"), max_size=max_tracks, unique=True))
    tracks = [SubscribedVideoTrack(i, draw(layers()), draw(PRIORITY), draw(st.booleans()),
                                   draw(st.sampled_from([False, False, False, True])))
              for i in ids]
    render = VideoRenderDimensions(**{p: VideoTrackDimensions(draw(SIDE), draw(SIDE))
                                      for p in ("low", "standard", "high")})
    profile = VideoBandwidthProfileOptions(
        mode=draw(st.sampled_from(list(BandwidthProfileMode))),
        max_subscription_bitrate=draw(st.none() | st.integers(0, 6_000_000)),
        max_tracks=draw(st.none() | st.integers(-1, 6)),
        dominant_speaker_priority=draw(PRIORITY),
        render_dimensions=draw(st.just(VideoRenderDimensions()) | st.just(render)),
        track_switch_off_mode=draw(st.sampled_from(list(TrackSwitchOffMode))))
    return Subscription(tracks, profile)


BUDGET = st.integers(0, 8_000_000)


@st.composite
def budgets(draw: st.DrawFn, sub: Subscription) -> int:
    """Mostly near a threshold: a sum of some layer bitrates, give or take 15 %, where switching
    on, switching off and the hysteresis margin decide."""
    rates = [layer.bitrate for t in sub.tracks for layer in t.layers]
    if not rates or draw(st.integers(0, 3)) == 0:
        return draw(BUDGET)
    near = sum(draw(st.lists(st.sampled_from(rates), min_size=1, max_size=len(rates))))
    return max(0, near + draw(st.integers(-near * 15 // 100, near * 15 // 100)))


@st.composite
def previous(draw: st.DrawFn, sub: Subscription) -> dict[str, int | None] | None:
    """None, an earlier allocation at another estimate, or any mapping of ids to layers."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return None
    if kind == 1:
        return ref.allocate(sub, draw(budgets(sub)), congestion=draw(st.booleans())).layers
    named = draw(st.lists(st.sampled_from([t.track_id for t in sub.tracks] + ["gone"]),
                          unique=True)) if sub.tracks else []
    return {i: draw(st.none() | st.integers(0, 4)) for i in named}
