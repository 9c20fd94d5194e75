"""Bandwidth-profile modes on a real constrained downlink (issue 9), in a network namespace
(tests/netns.py; the scenario runs in tests/netns_profiles_scenario.py): two simulcast
publishers, one with a high-priority video, and a grid and a presentation subscriber whose
downlinks are policed to the top layer of one video plus the lowest of the other. No
``max_subscription_bitrate``: the budget is the server's loss-based downlink estimate, so the
modes are checked on what each subscriber decodes while the estimate moves with the loss the
limit causes. tests/test_group_profiles.py checks the same modes against a fixed cap.

The estimate does not rest: without loss it rises 8 % a second until the next layer goes over the
limit, and falls again on the loss that causes (tests/test_estimator.py), so each subscriber's
layers move over the sampled 15 s. What the modes fix is how the budget is shared whatever it is
at the moment, and that is what is asserted: presentation never gives the standard video more than
the high-priority one and keeps it below most of the time (off, or a lower layer); grid switches
neither off, keeps them within a layer of each other, and often gives the standard video as much
as the high-priority one. (Measured in three runs: presentation kept the standard video below in
23 to 30 of 30 samples, never above; grid gave it as much or more in 18 to 30 of 30.)
Skipped, saying why, where network namespaces cannot be created.
"""

from __future__ import annotations

import pytest
from netns import SCENARIO, namespace, run_scenario, unavailable

REASON = unavailable()
pytestmark = [pytest.mark.skipif(REASON is not None, reason=REASON or ""),
              pytest.mark.timeout(300)]

SCRIPT = SCENARIO.with_name("netns_profiles_scenario.py")


def rank(layer: int | None) -> int:
    """A switched-off video ranks below its lowest layer."""
    return -1 if layer is None else layer


def test_presentation_favours_the_high_priority_video_where_grid_shares_alike() -> None:
    with namespace() as ns:
        result = run_scenario(ns, "1", "15", script=SCRIPT)
    samples = result["samples"]
    presentation = [(rank(high), rank(std)) for high, std in samples["presentation"]]
    grid = [(rank(high), rank(std)) for high, std in samples["grid"]]
    assert len(presentation) >= 20 and len(grid) >= 20, result

    # presentation: the high-priority video is never off, and the standard one never above it.
    assert all(high >= 0 and std <= high for high, std in presentation), result
    assert sum(std < high for high, std in presentation) > len(presentation) / 2, result

    # grid: both stay on, a layer apart at most (the next step goes to the smaller), and the
    # standard video often has as much as the high-priority one or more (when both could step
    # up, importance only decides which goes first).
    assert result["switched_off"]["grid"] == [], result
    assert all(high >= 0 and std >= 0 and abs(high - std) <= 1 for high, std in grid), result
    assert sum(std >= high for high, std in grid) > len(grid) / 3, result
