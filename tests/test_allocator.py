"""The native bandwidth allocator against its plain-Python oracle (tests/reference_allocator.py),
the rules of rtcroom.bandwidth as named scenarios, and bad inputs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import reference_allocator as ref
from allocator_strategies import BUDGET, budgets, previous, subscriptions
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from rtcroom._native import allocator as _native
from rtcroom.bandwidth import (
    Allocation,
    AllocationPlan,
    SubscribedVideoTrack,
    Subscription,
    VideoLayer,
    allocate,
)
from rtcroom.options import (
    VideoBandwidthProfileOptions,
    VideoRenderDimensions,
    VideoTrackDimensions,
)

KBPS = 1000

@settings(max_examples=600, deadline=None)
@given(st.data())
def test_native_matches_reference(data: st.DataObject) -> None:
    sub = data.draw(subscriptions())
    budget = data.draw(budgets(sub))
    congestion = data.draw(st.booleans())
    prev = data.draw(previous(sub))
    expected = ref.allocate(sub, budget, congestion=congestion, previous=prev)
    assert allocate(sub, budget, congestion=congestion, previous=prev) == expected


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_budget_is_kept_unless_a_mode_keeps_tracks_on(data: st.DataObject) -> None:
    sub = data.draw(subscriptions())
    budget, congestion = data.draw(budgets(sub)), data.draw(st.booleans())
    result = allocate(sub, budget, congestion=congestion, previous=data.draw(previous(sub)))
    cap = sub.profile.max_subscription_bitrate
    limit = budget if cap is None else min(cap, budget)
    assert result.total_bitrate == sum(t.bitrate for t in result.tracks)
    assert result.overshoot_bitrate == max(result.total_bitrate - limit, 0)
    mode = sub.profile.track_switch_off_mode
    if mode == "predicted" or (mode == "detected" and congestion):
        assert result.overshoot_bitrate == 0
    if result.overshoot_bitrate:  # only the lowest layers of kept tracks can overshoot
        assert all(t.layer in (None, 0) for t in result.tracks)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_no_layer_above_the_render_target(data: st.DataObject) -> None:
    sub = data.draw(subscriptions())
    result = allocate(sub, data.draw(budgets(sub)))
    for track, got in zip(sub.tracks, result.tracks):
        if got.layer is not None:
            assert got.layer <= ref.target_layer(sub, track)
            assert (got.reason is None) == (got.layer == ref.target_layer(sub, track))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_allocating_again_with_the_same_estimate_changes_nothing(data: st.DataObject) -> None:
    sub = data.draw(subscriptions())
    budget, congestion = data.draw(budgets(sub)), data.draw(st.booleans())
    first = allocate(sub, budget, congestion=congestion, previous=data.draw(previous(sub)))
    assert allocate(sub, budget, congestion=congestion, previous=first) == first


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_a_rise_within_the_margin_switches_nothing_back_on(data: st.DataObject) -> None:
    """Hysteresis: after a drop, a rise that leaves less than 10 % of the new estimate spare
    above the old one never switches back on a track the drop switched off."""
    sub = data.draw(subscriptions())
    high = data.draw(budgets(sub))
    low = data.draw(st.integers(high * 8 // 10, high))
    settled = allocate(sub, high)
    dropped = allocate(sub, low, previous=settled)
    rise = data.draw(st.integers(low, low + low // 9 + 1))
    assume(rise - rise // 10 <= low)
    again = allocate(sub, rise, previous=dropped)
    # Only tracks the drop itself switched off: one that was already off may sit right at the
    # margin's edge, where any rise at all rightly switches it on.
    for was, before, after in zip(settled.tracks, dropped.tracks, again.tracks):
        if was.layer is not None and before.layer is None and before.reason in (
                "bandwidth", "max_subscription_bitrate"):
            assert after.layer is None


@settings(max_examples=100, deadline=None)
@given(st.lists(subscriptions(max_tracks=5), min_size=1, max_size=6), st.data())
def test_a_plan_of_many_allocates_each_subscriber_alone(subs: list[Subscription],
                                                        data: st.DataObject) -> None:
    budgets = data.draw(st.lists(BUDGET, min_size=len(subs), max_size=len(subs)))
    flags = data.draw(st.lists(st.booleans(), min_size=len(subs), max_size=len(subs)))
    plan = AllocationPlan(subs)
    first = plan.allocate(np.array(budgets), congestion=flags)
    assert [first[i] for i in range(len(subs))] == [
        ref.allocate(s, b, congestion=c) for s, b, c in zip(subs, budgets, flags)]
    lower = [b * 3 // 4 for b in budgets]
    second = plan.allocate(lower, congestion=flags, previous=first)
    by_mapping = plan.allocate(lower, congestion=flags,
                               previous=[first[i].layers for i in range(len(subs))])
    expected = [ref.allocate(s, b, congestion=c, previous=first[i].layers)
                for i, (s, b, c) in enumerate(zip(subs, lower, flags))]
    assert [second[i] for i in range(len(subs))] == expected
    assert [by_mapping[i] for i in range(len(subs))] == expected


def test_threads_share_a_plan() -> None:
    """The native call releases the GIL and keeps no state between calls, so threads
    allocating on one plan at once get what a single thread gets."""
    subs = [Subscription([camera(f"t{j}", ("low", "standard", "high")[j % 3])
                          for j in range(10)], profile(mode=mode))
            for mode in ("grid", "collaboration", "presentation")] * 20
    plan = AllocationPlan(subs)
    estimates = [[(k * 37 + i * 101) % 40 * 100 * KBPS for i in range(len(subs))]
                 for k in range(32)]
    alone = [plan.allocate(e) for e in estimates]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(plan.allocate, estimates))
    for a, b in zip(alone, together):
        assert [a[i] for i in range(len(a))] == [b[i] for i in range(len(b))]
    assert alone[-1][-1] == alone[-1][len(subs) - 1]
    with pytest.raises(IndexError):
        alone[0][len(subs)]


# --- named scenarios --------------------------------------------------------------------------

CAMERA = (VideoLayer(150 * KBPS, 320, 180), VideoLayer(500 * KBPS, 640, 360),
          VideoLayer(1500 * KBPS, 1280, 720))
SCREEN = (VideoLayer(250 * KBPS, 640, 360), VideoLayer(550 * KBPS, 1280, 720))


def camera(track_id: str, priority: str = "standard", **kw: Any) -> SubscribedVideoTrack:
    return SubscribedVideoTrack(track_id, CAMERA, priority, **kw)  # type: ignore[arg-type]


def profile(**kw: Any) -> VideoBandwidthProfileOptions:
    return VideoBandwidthProfileOptions(**kw)


def both(sub: Subscription, budget: int, **kw: Any) -> Allocation:
    """The native result, after checking the oracle agrees on this scenario too."""
    result = allocate(sub, budget, **kw)
    prev = kw.pop("previous", None)
    if isinstance(prev, Allocation):
        prev = prev.layers
    assert ref.allocate(sub, budget, previous=prev, **kw) == result
    return result


HD = VideoTrackDimensions(1280, 720)
HD_EVERYWHERE = VideoRenderDimensions(high=HD, standard=HD, low=HD)


def test_grid_shares_equally_whatever_the_priority() -> None:
    sub = Subscription([camera("high", "high"), camera("low", "low")],
                       profile(render_dimensions=HD_EVERYWHERE))
    assert both(sub, 1000 * KBPS).layers == {"high": 1, "low": 1}


def test_grid_switches_the_lowest_priority_off_first_when_short() -> None:
    sub = Subscription([camera("low", "low"), camera("std"), camera("high", "high")])
    result = both(sub, 350 * KBPS)
    assert result.layers == {"low": None, "std": 0, "high": 0}
    assert result["low"].reason == "bandwidth"


STEPS = tuple(VideoLayer(100 * KBPS * k, 80 * k, 45 * k) for k in range(1, 9))


def test_collaboration_shares_in_proportion_to_render_dimensions() -> None:
    """1280x720 is three times the area of 640x480, so the high track gets three times the
    standard one's bitrate, where grid gives both the same."""
    tracks = [SubscribedVideoTrack("std", STEPS, "standard"),
              SubscribedVideoTrack("high", STEPS, "high")]
    collab = both(Subscription(tracks, profile(mode="collaboration")), 800 * KBPS)
    assert (collab["high"].bitrate, collab["std"].bitrate) == (600 * KBPS, 200 * KBPS)
    grid = both(Subscription(tracks), 800 * KBPS)
    assert (grid["high"].bitrate, grid["std"].bitrate) == (400 * KBPS, 400 * KBPS)


def test_collaboration_degrades_the_high_camera_before_switching_the_low_one_off() -> None:
    sub = Subscription([camera("high", "high"), camera("low", "low")],
                       profile(mode="collaboration"))
    result = both(sub, 600 * KBPS)
    assert result.layers == {"high": 0, "low": 0}
    assert result["high"].reason == "bandwidth"


def test_presentation_keeps_the_high_camera_and_switches_the_low_one_off() -> None:
    sub = Subscription([camera("high", "high"), camera("low", "low")],
                       profile(mode="presentation"))
    assert both(sub, 600 * KBPS).layers == {"high": 1, "low": None}


def test_presentation_screen_share_at_high_keeps_720p_while_two_low_cameras_switch_off() -> None:
    tracks = [camera("cam1", "low"), SubscribedVideoTrack("screen", SCREEN, "high"),
              camera("cam2", "low")]
    result = both(Subscription(tracks, profile(mode="presentation")), 600 * KBPS)
    assert result.layers == {"cam1": None, "screen": 1, "cam2": None}
    assert result["screen"].reason is None
    # Grid at the same estimate keeps everyone on, the screen share at 360p.
    assert both(Subscription(tracks), 600 * KBPS).layers == {"cam1": 0, "screen": 0,
                                                                 "cam2": 0}


def test_render_dimensions_cap_the_layer_however_much_bandwidth_there_is() -> None:
    """640x360 fills the standard 640x480 box (fitted, keeping the aspect ratio), so 720p is
    never sent to it; a low track stops at 180p."""
    result = both(Subscription([camera("std"), camera("low", "low")]), 50_000 * KBPS)
    assert result.layers == {"std": 1, "low": 0}
    assert result["std"].reason is None and result["low"].reason is None


def test_render_dimensions_of_zero_ask_for_the_lowest_layer() -> None:
    render = VideoRenderDimensions(high=VideoTrackDimensions(0, 0))
    result = both(Subscription([camera("high", "high")], profile(render_dimensions=render)),
                  50_000 * KBPS)
    assert result["high"].layer == 0 and result["high"].reason is None


def test_equal_tracks_are_served_in_subscription_order() -> None:
    result = both(Subscription([camera("first"), camera("second")]), 650 * KBPS)
    assert result.layers == {"first": 1, "second": 0}
    result = both(Subscription([camera("second"), camera("first")]), 650 * KBPS)
    assert result.layers == {"second": 1, "first": 0}


def test_max_tracks_keeps_the_most_important_and_the_dominant_speaker_first() -> None:
    tracks = [camera("a"), camera("b"), camera("talker", dominant_speaker=True),
              camera("low", "low")]
    result = both(Subscription(tracks, profile(max_tracks=2)), 50_000 * KBPS)
    assert result.layers == {"a": 1, "b": None, "talker": 1, "low": None}
    assert result["b"].reason == result["low"].reason == "max_tracks"
    # 0 and negative values mean no limit, as in the reference.
    for unlimited in (0, -1, None):
        result = both(Subscription(tracks, profile(max_tracks=unlimited)), 50_000 * KBPS)
        assert None not in result.layers.values()


def test_dominant_speaker_priority_raises_but_never_lowers() -> None:
    raised = both(Subscription([camera("talker", "low", dominant_speaker=True)],
                               profile(dominant_speaker_priority="high")), 50_000 * KBPS)
    assert raised["talker"].layer == 2  # rendered at the high 1280x720
    kept = both(Subscription([camera("talker", "high", dominant_speaker=True)],
                             profile(dominant_speaker_priority="low")), 50_000 * KBPS)
    assert kept["talker"].layer == 2


def test_tracks_the_subscriber_switched_off_get_nothing_and_take_no_slot() -> None:
    tracks = [camera("hidden", "high", switched_off=True), camera("shown")]
    result = both(Subscription(tracks, profile(max_tracks=1)), 50_000 * KBPS)
    assert result["hidden"] == replace(result["hidden"], layer=None, bitrate=0,
                                       reason="subscriber")
    assert result["shown"].layer == 1


def test_max_subscription_bitrate_caps_and_is_named_as_the_reason() -> None:
    sub = Subscription([camera("high", "high")], profile(max_subscription_bitrate=600 * KBPS))
    capped = both(sub, 5000 * KBPS)
    assert (capped["high"].layer, capped["high"].reason) == (1, "max_subscription_bitrate")
    # When the estimate is lower than the cap, the estimate is the reason.
    assert both(sub, 400 * KBPS)["high"].reason == "bandwidth"


def drop_from(mode: str, budget: int, **kw: Any) -> tuple[Subscription, Allocation]:
    sub = Subscription([camera("a"), camera("b")], profile(track_switch_off_mode=mode))
    return sub, both(sub, budget, **kw)


def test_predicted_switches_off_as_soon_as_the_estimate_drops() -> None:
    sub, before = drop_from("predicted", 1000 * KBPS)
    after = both(sub, 200 * KBPS, previous=before)
    assert after.layers == {"a": 0, "b": None}
    assert after.overshoot_bitrate == 0


def test_detected_keeps_tracks_on_until_congestion_is_detected() -> None:
    sub, before = drop_from("detected", 1000 * KBPS)
    calm = both(sub, 200 * KBPS, previous=before)
    assert calm.layers == {"a": 0, "b": 0}
    assert calm.overshoot_bitrate == 100 * KBPS
    congested = both(sub, 200 * KBPS, previous=before, congestion=True)
    assert congested.layers == {"a": 0, "b": None}
    assert congested.overshoot_bitrate == 0
    # Without congestion it does not switch on what was off either when it does not fit.
    assert both(sub, 200 * KBPS, previous=congested).layers == {"a": 0, "b": None}


def test_disabled_never_switches_off_and_reports_the_overshoot() -> None:
    sub, _ = drop_from("disabled", 1000 * KBPS)
    result = both(sub, 100 * KBPS, congestion=True)
    assert result.layers == {"a": 0, "b": 0}
    assert (result.total_bitrate, result.overshoot_bitrate) == (300 * KBPS, 200 * KBPS)
    assert result["a"].reason == "bandwidth"


def test_an_estimate_wobbling_under_ten_percent_does_not_flip_tracks() -> None:
    sub = Subscription([camera("a"), camera("b"), camera("c")])
    on = both(sub, 450 * KBPS)  # exactly three lowest layers
    assert None not in on.layers.values()
    off = both(sub, 440 * KBPS, previous=on)
    assert off.layers["c"] is None
    state = off
    for estimate in (460, 480, 445, 490, 470):  # up to 11 % above the drop
        state = both(sub, estimate * KBPS, previous=state)
        assert state.layers["c"] is None, estimate
    # 450 kbps of lowest layers with 10 % spare needs 500 kbps.
    assert both(sub, 500 * KBPS, previous=state).layers["c"] == 0


def test_a_new_track_is_judged_without_the_margin() -> None:
    sub = Subscription([camera("a"), camera("b")])
    before = both(sub, 300 * KBPS)
    grown = Subscription([camera("a"), camera("b"), camera("new")])
    assert both(grown, 450 * KBPS, previous=before).layers["new"] == 0


def test_layers_do_not_flip_either() -> None:
    sub = Subscription([camera("a", "high")])
    at_720p = both(sub, 1500 * KBPS)
    at_360p = both(sub, 1400 * KBPS, previous=at_720p)
    assert at_360p["a"].layer == 1
    assert both(sub, 1600 * KBPS, previous=at_360p)["a"].layer == 1
    assert both(sub, 1700 * KBPS, previous=at_360p)["a"].layer == 2


# --- bad inputs -------------------------------------------------------------------------------

def _bad(**changes: Any) -> Subscription:
    tracks = changes.pop("tracks", [camera("a"), camera("b")])
    return Subscription(tracks, profile(**changes))


BAD: dict[str, tuple[Subscription, str]] = {
    "negative bitrate": (_bad(tracks=[SubscribedVideoTrack("a", [VideoLayer(-1, 320, 180)])]),
                         "tracks[0].layers[0].bitrate"),
    "unknown priority": (_bad(tracks=[camera("a"), camera("b", "urgent")]), "tracks[1].priority"),
    "duplicate ids": (_bad(tracks=[camera("a"), camera("b"), camera("a")]), "tracks[2].track_id"),
    "empty id": (_bad(tracks=[camera("")]), "tracks[0].track_id"),
    "no layers": (_bad(tracks=[SubscribedVideoTrack("a", [])]), "tracks[0].layers"),
    "bitrates not increasing": (
        _bad(tracks=[SubscribedVideoTrack("a", [VideoLayer(500, 320, 180),
                                                VideoLayer(500, 640, 360)])]),
        "tracks[0].layers[1].bitrate"),
    "sizes shrinking": (
        _bad(tracks=[SubscribedVideoTrack("a", [VideoLayer(500, 640, 360),
                                                VideoLayer(900, 320, 180)])]),
        "tracks[0].layers[1]"),
    "zero width": (_bad(tracks=[SubscribedVideoTrack("a", [VideoLayer(500, 0, 360)])]),
                   "tracks[0].layers[0].width"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_names_the_field(case: str) -> None:
    sub, field = BAD[case]
    with pytest.raises(ValueError, match="^" + re.escape(field + " ")):
        allocate(sub, 1000 * KBPS)
    with pytest.raises(ValueError, match="^" + re.escape(field + " ")):
        ref.allocate(sub, 1000 * KBPS)


PACKED_PROFILE = ("grid", "predicted", None, 0, "standard", (176, 144, 640, 480, 1280, 720))


@pytest.mark.parametrize(("index", "value", "field"), [
    (0, "gallery", "profile.mode"),
    (1, "never", "profile.track_switch_off_mode"),
    (2, -5, "profile.max_subscription_bitrate"),
    (4, "top", "profile.dominant_speaker_priority"),
])
def test_bad_profile_fields_are_named(index: int, value: Any, field: str) -> None:
    """VideoBandwidthProfileOptions refuses these when built; the native API takes plain data
    from anyone, so it checks them too."""
    option = field.removeprefix("profile.")
    with pytest.raises(ValueError, match=option):
        VideoBandwidthProfileOptions(**{option: value})
    packed: list[Any] = list(PACKED_PROFILE)
    packed[index] = value
    with pytest.raises(ValueError, match="^" + re.escape(field + " ")):
        _native.Plan([(*packed, [("a", "low", False, False, [(1, 1, 1)])])], False)


def test_a_render_box_larger_than_any_video_is_refused() -> None:
    """The options refuse it when built; plain data given to the native plan is checked too."""
    with pytest.raises(ValueError, match="^width: 20000 is more than 16384"):
        VideoTrackDimensions(20000, 480)
    packed: list[Any] = list(PACKED_PROFILE)
    packed[5] = (176, 144, 20000, 480, 1280, 720)
    with pytest.raises(ValueError,
                       match="^" + re.escape("profile.render_dimensions.standard.width ")):
        _native.Plan([(*packed, [("a", "low", False, False, [(1, 1, 1)])])], False)


def test_bad_input_in_a_plan_names_the_subscriber() -> None:
    sub, _ = BAD["duplicate ids"]
    with pytest.raises(ValueError, match=r"^subscriptions\[1\]\.tracks\[2\]\.track_id 'a' dupl"):
        AllocationPlan([Subscription([camera("x")]), sub])


@pytest.mark.parametrize("value", [1.5, "1", None])
def test_a_value_of_the_wrong_type_names_the_field(value: object) -> None:
    sub = Subscription([SubscribedVideoTrack("a", [VideoLayer(value, 320, 180)])])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^tracks\[0\]\.layers\[0\]\.bitrate has the wrong type"):
        allocate(sub, 1000)


def test_bad_conditions() -> None:
    sub = Subscription([camera("a")])
    with pytest.raises(ValueError, match="^available_bitrate must be non-negative"):
        allocate(sub, -1)
    with pytest.raises(ValueError, match="^available_bitrate must be integers"):
        allocate(sub, 2**64)
    with pytest.raises(ValueError, match=r"^previous\['a'\] must be a layer index or None"):
        allocate(sub, 1000, previous={"a": -1})
    plan = AllocationPlan([sub, sub])
    with pytest.raises(ValueError, match="^available_bitrate must hold one value per subscriber"):
        plan.allocate([1, 2, 3])
    with pytest.raises(ValueError, match=r"^available_bitrate\[1\] must be non-negative"):
        plan.allocate([1, -2])
    with pytest.raises(ValueError, match="^previous must come from this plan"):
        plan.allocate(1000, previous=AllocationPlan([sub, sub]).allocate(1000))


def test_previous_naming_gone_tracks_or_missing_layers_is_accepted() -> None:
    """Ids no longer subscribed are ignored; a previous layer the publisher no longer sends
    counts as the track's top layer."""
    sub = Subscription([SubscribedVideoTrack("a", CAMERA[:1])])
    prev: Mapping[str, int | None] = {"gone": 1, "a": 2}
    assert both(sub, 1000 * KBPS, previous=prev)["a"].layer == 0
