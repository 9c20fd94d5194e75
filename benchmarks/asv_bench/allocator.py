"""asv suite for the bandwidth allocator: the native plan against the plain-Python oracle of
tests/reference_allocator.py, on one subscriber with 50 tracks x 3 layers and on a batch of
1000 subscribers x 10 tracks (times, and ratios measured within one run as track_*).

The workloads live here; benchmarks/test_allocator.py times the same ones with pytest-benchmark.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rtcroom.bandwidth import (
    AllocationPlan,
    BatchAllocation,
    SubscribedVideoTrack,
    Subscription,
    VideoLayer,
    allocate,
)
from rtcroom.constants import BandwidthProfileMode, TrackPriority
from rtcroom.options import VideoBandwidthProfileOptions

from .ratio import speedup

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
import reference_allocator as ref

MODES = list(BandwidthProfileMode)


def _subscription(rng: random.Random, tracks: int, mode: BandwidthProfileMode) -> Subscription:
    out = []
    for j in range(tracks):
        scale = rng.choice((1, 1, 2))  # some publishers send twice the usual bitrates
        layers = [VideoLayer(150_000 * scale, 320, 180), VideoLayer(500_000 * scale, 640, 360),
                  VideoLayer(1_500_000 * scale, 1280, 720)]
        out.append(SubscribedVideoTrack(f"track{j}", layers,
                                        rng.choice(list(TrackPriority)),
                                        dominant_speaker=j == 3, switched_off=rng.random() < 0.05))
    return Subscription(out, VideoBandwidthProfileOptions(mode=mode))


@dataclass
class Workload:
    """Subscriptions with estimates, and the previous allocation of each (at an estimate 5 %
    higher), so the hysteresis paths run as they do in an SFU's steady state."""

    subscriptions: list[Subscription]
    estimates: list[int]
    plan: AllocationPlan
    previous: BatchAllocation
    previous_layers: list[dict[str, int | None]]

    def native(self) -> BatchAllocation:
        """The SFU's hot path: a plan built when subscriptions changed, estimates in an array."""
        return self.plan.allocate(np.array(self.estimates, dtype=np.int64),
                                  previous=self.previous)

    def native_one_shot(self) -> list[Any]:
        """Everything from dataclasses to dataclasses: packing, allocation, unpacking."""
        if len(self.subscriptions) == 1:
            return [allocate(self.subscriptions[0], self.estimates[0],
                             previous=self.previous_layers[0])]
        result = AllocationPlan(self.subscriptions).allocate(self.estimates,
                                                             previous=self.previous_layers)
        return [result[i] for i in range(len(result))]

    def python(self) -> list[Any]:
        return [ref.allocate(s, e, previous=p)
                for s, e, p in zip(self.subscriptions, self.estimates, self.previous_layers)]


def workload(subscribers: int, tracks: int) -> Workload:
    rng = random.Random(5)
    subs = [_subscription(rng, tracks, MODES[i % 3]) for i in range(subscribers)]
    if subscribers == 1:
        estimates = [12_000_000]  # short of 50 tracks' wants: some off, layers mixed
    else:
        estimates = [rng.randrange(500_000, 6_000_000) for _ in subs]
    plan = AllocationPlan(subs)
    previous = plan.allocate([e * 105 // 100 for e in estimates])
    return Workload(subs, estimates, plan, previous, [previous[i].layers for i in range(len(subs))])


SIZES = {"one 50x3": (1, 50), "batch 1000x10": (1000, 10)}


class Allocator:
    params = list(SIZES)
    param_names = ["workload"]

    def setup(self, size: str) -> None:
        self.w = workload(*SIZES[size])

    def time_native(self, size: str) -> None:
        self.w.native()

    def time_native_one_shot(self, size: str) -> None:
        self.w.native_one_shot()

    def time_python(self, size: str) -> None:
        self.w.python()


def _ratio(size: str, one_shot: bool = False) -> float:
    w = workload(*SIZES[size])
    number = 200 if size.startswith("one") else 2
    return speedup(w.python, w.native_one_shot if one_shot else w.native, number=number, repeat=5)


def track_native_vs_python_50_tracks() -> float:
    """Times faster than the Python oracle, one subscriber with 50 tracks x 3 layers (target 50)."""
    return _ratio("one 50x3")


def track_native_vs_python_batch_1000x10() -> float:
    """Times faster than the Python oracle, 1000 subscribers x 10 tracks in one call (target 50)."""
    return _ratio("batch 1000x10")


def track_one_shot_vs_python_50_tracks() -> float:
    """Same, counting the dataclass packing and unpacking of rtcroom.bandwidth.allocate."""
    return _ratio("one 50x3", one_shot=True)


def track_one_shot_vs_python_batch_1000x10() -> float:
    """Same, counting building the plan from dataclasses and unpacking every allocation."""
    return _ratio("batch 1000x10", one_shot=True)


for _f in (track_native_vs_python_50_tracks, track_native_vs_python_batch_1000x10,
           track_one_shot_vs_python_50_tracks, track_one_shot_vs_python_batch_1000x10):
    _f.unit = "x"  # type: ignore[attr-defined]
