"""The allocator's C++ core built alone with the system compiler (no Python headers, no
pybind11) and driven through tests/native/allocator_main.cpp, against the Python oracle."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import reference_allocator as ref
from allocator_strategies import budgets, previous, subscriptions
from hypothesis import given, settings
from hypothesis import strategies as st
from rtcroom.bandwidth import (
    Allocation,
    SubscribedVideoTrack,
    Subscription,
    TrackAllocation,
    VideoLayer,
)

ROOT = Path(__file__).resolve().parents[1]
UNKNOWN, OFF = -2, -1


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler on PATH")
    exe = tmp_path_factory.mktemp("allocator") / "allocator_main"
    sources = [ROOT / "src/native/allocator/allocator.cpp",
               ROOT / "tests/native/allocator_main.cpp"]
    subprocess.run([cxx, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror",
                    "-I", str(ROOT / "src/native"), *map(str, sources), "-o", str(exe)],
                   check=True, timeout=120)
    return exe


def run(exe: Path, sub: Subscription, budget: int, congestion: bool,
        prev: dict[str, int | None] | None) -> Allocation | str:
    p = sub.profile
    r = ref.render_dimensions(sub)
    cap = -1 if p.max_subscription_bitrate is None else p.max_subscription_bitrate
    profile = (f"{p.mode} {p.track_switch_off_mode} {cap} {p.max_tracks or 0} "
               f"{p.dominant_speaker_priority} {r.low.width} {r.low.height} {r.standard.width} "
               f"{r.standard.height} {r.high.width} {r.high.height}")
    lines = [profile, f"{budget} {int(congestion)} {len(sub.tracks)}"]
    for t in sub.tracks:
        before = UNKNOWN if prev is None or t.track_id not in prev else prev[t.track_id]
        lines.append(" ".join(map(str, [
            t.track_id, t.priority, int(t.dominant_speaker), int(t.switched_off),
            OFF if before is None else before, len(t.layers),
            *(v for layer in t.layers for v in (layer.bitrate, layer.width, layer.height))])))
    out = subprocess.run([str(exe)], input="\n".join(lines), capture_output=True, text=True,
                         check=True, timeout=30).stdout.splitlines()
    if out and out[0].startswith("error "):
        return out[0][len("error "):]
    tracks = []
    for t, line in zip(sub.tracks, out):
        layer, bitrate, reason = line.split()
        tracks.append(TrackAllocation(t.track_id, None if int(layer) < 0 else int(layer),
                                      int(bitrate), None if reason == "-" else reason))  # type: ignore[arg-type]
    total, overshoot = map(int, out[-1].split())
    return Allocation(tuple(tracks), total, overshoot)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_core_alone_matches_reference(driver: Path, data: st.DataObject) -> None:
    sub = data.draw(subscriptions())
    budget, congestion = data.draw(budgets(sub)), data.draw(st.booleans())
    prev = data.draw(previous(sub))
    if prev is not None:  # the driver takes previous per track; ids of gone tracks do not matter
        prev.pop("gone", None)
    assert run(driver, sub, budget, congestion, prev) == ref.allocate(
        sub, budget, congestion=congestion, previous=prev)


def test_core_alone_rejects_bad_input(driver: Path) -> None:
    sub = Subscription([SubscribedVideoTrack("a", [VideoLayer(500, 320, 180),
                                                   VideoLayer(400, 640, 360)])])
    assert run(driver, sub, 1000, False, None) == (
        "tracks[0].layers[1].bitrate must be greater than the layer below's (500): layers go "
        "from lowest to highest, got 400")
