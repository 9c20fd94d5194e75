"""Server-side network quality: formula, thresholds, smoothing and the verbosity reports."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rtcroom.constants import NetworkQualityVerbosity as V
from rtcroom.options import NetworkQualityConfiguration
from rtcroom.server.networkquality import (
    INTERVAL,
    NetworkQualityScorer,
    bandwidth_score,
    build_report,
    fraction_lost_score,
    latency_score,
    measurements,
    score_level,
    trim,
)
from rtcroom.signaling.networkquality import (
    NetworkQualityAudioStats,
    NetworkQualityMediaStats,
    NetworkQualityStats,
    NetworkQualityVideoStats,
)

CLEAN = measurements(actual=1_000_000, available=1_000_000, fraction_lost=0.0, jitter=0.002,
                     rtt=0.001)


def media(send: object = None, recv: object = None) -> NetworkQualityMediaStats:
    return NetworkQualityMediaStats(send_stats=send, recv_stats=recv)  # type: ignore[arg-type]


Inputs = dict[str, Any]  # keyword arguments of NetworkQualityScorer.update


def clean_both() -> Inputs:
    return {"audio": media(CLEAN, CLEAN), "video": media(CLEAN, CLEAN)}


@pytest.mark.parametrize(("jitter", "rtt", "expected"), [
    (0.0, 0.0, 100.0),
    (0.002, 0.001, 100 - 4.5 / 40),  # loopback: d = 0.5 + 4 ms
    (0.0, 0.32, 100 - 160 / 40),  # the knee: d = 160 ms
    (0.05, 0.4, 100 - (300 - 120) / 10),  # d = 200 + 100 ms
    (None, 1.0, 100 - (500 - 120) / 10),
    (0.0, 5.0, 1.0),  # never below 1: media still flows
])
def test_latency_score(jitter: float | None, rtt: float | None, expected: float) -> None:
    assert latency_score(jitter, rtt) == pytest.approx(expected)


@pytest.mark.parametrize(("loss", "kind", "expected"), [
    (0.0, "audio", 100.0), (0.02, "audio", 84.0), (0.05, "audio", 60.0),
    (0.02, "video", 80.0), (0.05, "video", 50.0), (0.5, "video", 1.0), (1.0, "audio", 0.0),
])
def test_fraction_lost_score(loss: float, kind: str, expected: float) -> None:
    assert fraction_lost_score(loss, kind) == pytest.approx(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(("actual", "available", "expected"), [
    (1000, 1000, 100.0), (2000, 1000, 100.0), (1000, None, 100.0), (0, None, 100.0),
    (500, 1000, 100 - 20 * math.log(2)), (100, 1000, 100 - 20 * math.log(10)),
    (0, 1000, 0.0), (1, 10**9, 1.0),
])
def test_bandwidth_score(actual: float, available: float | None, expected: float) -> None:
    assert bandwidth_score(actual, available) == pytest.approx(expected)


@pytest.mark.parametrize(("score", "level"), [
    (100, 5), (85, 5), (84.9, 4), (70, 4), (69.9, 3), (55, 3), (54.9, 2), (40, 2), (39.9, 1),
    (0.1, 1), (0, 0),
])
def test_score_level_thresholds(score: float, level: int) -> None:
    assert score_level(score) == level


def test_clean_loopback_link_is_5_and_stays_5() -> None:
    scorer = NetworkQualityScorer()
    assert scorer.stats is None and scorer.level is None
    for t in range(10):
        stats = scorer.update(float(t), **clean_both())
        assert stats.level == 5
    assert stats.audio is not None and stats.video is not None
    assert (stats.audio.send, stats.audio.recv, stats.video.send, stats.video.recv) == (5, 5, 5, 5)
    assert stats.audio.send_stats is not None and stats.audio.send_stats.latency is not None
    assert stats.audio.send_stats.latency.level == 5
    assert scorer.stats == stats and scorer.level == 5


def test_nothing_published_or_subscribed_is_5() -> None:
    stats = NetworkQualityScorer().update(0.0)
    assert stats.level == 5
    assert stats.audio == NetworkQualityAudioStats(send=5, recv=5)
    assert stats.video == NetworkQualityVideoStats(send=5, recv=5)


@pytest.mark.parametrize("kind", ["audio", "video"])
@pytest.mark.parametrize("direction", ["send", "recv"])
def test_five_percent_loss_lowers_the_level(kind: str, direction: str) -> None:
    lossy = measurements(actual=1_000_000, available=1_000_000, fraction_lost=0.05,
                         jitter=0.002, rtt=0.001)
    inputs = clean_both()
    inputs[kind] = media(**{direction: lossy, ("recv" if direction == "send" else "send"): CLEAN})
    scorer = NetworkQualityScorer()
    first = scorer.update(0.0, **inputs)
    assert first.level < 5
    for t in range(1, 6):
        stats = scorer.update(t * INTERVAL, **inputs)
    assert stats.level == (3 if kind == "audio" else 2)  # settles at the raw score's level
    lowered = getattr(stats, kind)
    assert getattr(lowered, direction) == stats.level
    detail = getattr(lowered, f"{direction}_stats")
    assert detail.fraction_lost.level == stats.level
    assert detail.latency.level == 5 and detail.bandwidth.level == 5


def test_falls_fast_and_rises_slowly() -> None:
    bad: Inputs = {"video": media(send=measurements(fraction_lost=0.5))}  # raw score 1
    good: Inputs = {"video": media(send=measurements(fraction_lost=0.0))}
    scorer = NetworkQualityScorer()
    assert scorer.update(0.0, **good).level == 5
    assert scorer.update(INTERVAL, **bad).level == 1  # one update: 0.8 of the way down
    levels = [scorer.update(INTERVAL * (2 + i), **good).level for i in range(5)]
    assert levels == sorted(levels) and levels[0] < 5  # no jump back
    assert levels[0] <= 3 and levels[-1] == 5
    assert levels.index(5) >= 2  # at least three updates to read 5 again


def test_smoothing_follows_time_not_update_count() -> None:
    bad: Inputs = {"audio": media(recv=measurements(fraction_lost=0.08))}
    good: Inputs = {"audio": media(recv=measurements(fraction_lost=0.0))}
    fast, slow = NetworkQualityScorer(), NetworkQualityScorer()
    fast.update(0.0, **bad)
    slow.update(0.0, **bad)
    for t in range(1, 16):
        fast_level = fast.update(float(t), **good).level
        if t % 5 == 0:
            slow_level = slow.update(float(t), **good).level
            assert fast_level == slow_level


def test_media_that_does_not_arrive_is_0_at_once_and_climbs_back() -> None:
    scorer = NetworkQualityScorer()
    scorer.update(0.0, video=media(recv=measurements(actual=1e6, available=1e6)))
    broken = scorer.update(1.0, video=media(recv=measurements(actual=0, available=1e6)))
    assert broken.level == 0 and broken.video is not None and broken.video.recv == 0
    back = scorer.update(1.0 + INTERVAL, video=media(recv=measurements(actual=1e6,
                                                                       available=1e6)))
    assert back.level == 2  # 40 % of the way up from 0


def test_reconnecting_is_0_everywhere() -> None:
    scorer = NetworkQualityScorer()
    scorer.update(0.0, **clean_both())
    stats = scorer.update(1.0, reconnecting=True, **clean_both())
    assert stats.level == 0
    assert stats.audio is not None and stats.video is not None
    assert {stats.audio.send, stats.audio.recv, stats.video.send, stats.video.recv} == {0}
    assert 0 < scorer.update(1.0 + INTERVAL, **clean_both()).level < 5  # climbs back slowly


def test_a_direction_that_disappears_starts_afresh() -> None:
    lossy: Inputs = {"audio": media(send=measurements(fraction_lost=0.08))}
    scorer = NetworkQualityScorer()
    for t in range(3):
        scorer.update(t * INTERVAL, **lossy)
    assert scorer.update(3 * INTERVAL).level == 5  # unpublished
    clean = scorer.update(4 * INTERVAL, audio=media(send=measurements(fraction_lost=0.0)))
    assert clean.level == 5  # not dragged down by the old track's history


def test_unmeasured_parts_are_not_judged() -> None:
    stats = NetworkQualityScorer().update(0.0, video=media(
        send=measurements(available=1e6), recv=measurements(rtt=0.002)))
    assert stats.level == 5 and stats.video is not None
    assert stats.video.send_stats is not None and stats.video.send_stats.bandwidth is not None
    assert stats.video.send_stats.bandwidth.level is None
    assert stats.video.send_stats.fraction_lost is None


@pytest.mark.parametrize(("send", "message"), [
    (measurements(fraction_lost=1.5), "video.send_stats.fraction_lost: expected a number 0..1"),
    (measurements(rtt=-0.1), "video.send_stats.latency.rtt: expected a number >= 0"),
    (measurements(actual=-5, available=10), "video.send_stats.bandwidth.actual"),
])
def test_bad_measurements_name_the_field(send: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NetworkQualityScorer().update(0.0, video=media(send=send))


def full_stats() -> dict[str, NetworkQualityStats]:
    lossy = measurements(actual=8e5, available=1e6, fraction_lost=0.05, jitter=0.01, rtt=0.05)
    out = {}
    for sid, video_send in (("PA", CLEAN), ("PB", lossy)):
        scorer = NetworkQualityScorer()
        out[sid] = scorer.update(0.0, audio=media(CLEAN, CLEAN), video=media(video_send, CLEAN))
    return out


def test_trim_per_verbosity() -> None:
    stats = full_stats()["PB"]
    assert trim(stats, V.NONE) is None
    assert trim(stats, V.MINIMAL) == NetworkQualityStats(stats.level)
    moderate = trim(stats, V.MODERATE)
    assert moderate is not None and moderate.video is not None and stats.video is not None
    assert isinstance(moderate.video, NetworkQualityVideoStats)
    assert (moderate.video.send, moderate.video.recv) == (stats.video.send, stats.video.recv)
    assert moderate.video.send_stats is None and moderate.video.recv_stats is None
    assert trim(stats, V.DETAILED) == stats


def test_report_local_none_acts_as_minimal_and_remote_none_says_nothing() -> None:
    stats = full_stats()
    report = build_report("PA", NetworkQualityConfiguration(local=V.NONE, remote=V.NONE), stats)
    assert report is not None
    assert report.local == NetworkQualityStats(5) and report.remotes == {}
    assert report.to_message() == {"type": "network_quality", "local": 5, "remotes": []}


def test_report_defaults_minimal_local_no_remotes() -> None:
    report = build_report("PB", NetworkQualityConfiguration(), full_stats())
    assert report is not None
    message = report.to_message()
    assert message["local"] == report.local.level < 5 and message["remotes"] == []


@pytest.mark.parametrize("verbosity", [V.MINIMAL, V.MODERATE, V.DETAILED])
def test_report_messages_read_back_with_the_client_parser(verbosity: V) -> None:
    stats = full_stats()
    report = build_report("PA", NetworkQualityConfiguration(local=verbosity, remote=verbosity),
                          stats)
    assert report is not None
    message = report.to_message()
    assert [r["sid"] for r in message["remotes"]] == ["PB"]
    remote = message["remotes"][0]
    assert NetworkQualityStats.from_dict(remote) == trim(stats["PB"], verbosity)
    if verbosity is V.MINIMAL:
        assert message["local"] == stats["PA"].level
        assert remote == {"sid": "PB", "level": stats["PB"].level}
    else:
        assert NetworkQualityStats.from_dict(message["local"]) == trim(stats["PA"], verbosity)
        assert set(remote["video"]) == ({"send", "recv"} if verbosity is V.MODERATE
                                        else {"send", "recv", "sendStats", "recvStats"})
    if verbosity is V.DETAILED:
        assert remote["video"]["sendStats"]["fractionLost"] == {
            "fractionLost": 0.05, "level": stats["PB"].video.send}  # type: ignore[union-attr]
        assert stats["PB"].level < 5


def test_report_waits_for_the_recipients_own_level() -> None:
    assert build_report("PC", NetworkQualityConfiguration(), full_stats()) is None


loss = st.floats(0.0, 1.0)
seconds = st.one_of(st.none(), st.floats(0.0, 10.0))


@settings(max_examples=300, deadline=None)
@given(loss, loss, seconds, seconds, st.floats(0.0, 1e7), st.floats(1.0, 1e7),
       st.sampled_from(["audio", "video"]))
def test_worse_measurements_never_give_a_higher_level(
        loss_a: float, loss_b: float, jitter: float | None, rtt: float | None,
        actual: float, available: float, kind: str) -> None:
    low, high = sorted((loss_a, loss_b))

    def level(fraction_lost: float) -> int:
        direction = measurements(actual=actual, available=available,
                                 fraction_lost=fraction_lost, jitter=jitter, rtt=rtt)
        inputs: Inputs = {kind: media(send=direction)}
        stats = NetworkQualityScorer().update(0.0, **inputs)
        sent = getattr(stats, kind)
        parts = (sent.send_stats.bandwidth, sent.send_stats.fraction_lost, sent.send_stats.latency)
        assert stats.level == sent.send == min(p.level for p in parts if p is not None)
        return stats.level

    assert 0 <= level(high) <= level(low) <= 5
