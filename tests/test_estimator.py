"""Downlink estimator on synthetic subscriber feedback (REMB, receiver report blocks), in
simulated time, and its use with the allocator's ``detected`` switch-off mode."""

from __future__ import annotations

import pytest
from aiortc.rtp import RtcpReceiverInfo
from hypothesis import given, settings
from hypothesis import strategies as st

from rtcroom.bandwidth import SubscribedVideoTrack, Subscription, VideoLayer, allocate
from rtcroom.constants import TrackSwitchOffMode
from rtcroom.options import VideoBandwidthProfileOptions
from rtcroom.server.estimator import (
    MAX_BITRATE,
    MIN_BITRATE,
    START_BITRATE,
    DownlinkEstimate,
    DownlinkEstimator,
    round_trip_time,
)

SSRC = 1234
PACKETS_PER_REPORT = 100


def block(ssrc: int, fraction_lost: int, highest_sequence: int) -> RtcpReceiverInfo:
    return RtcpReceiverInfo(ssrc=ssrc, fraction_lost=fraction_lost, packets_lost=0,
                            highest_sequence=highest_sequence, jitter=0, lsr=0, dlsr=0)


class Subscriber:
    """Sends a receiver report about one stream every ``period`` seconds."""

    def __init__(self, estimator: DownlinkEstimator, start: float = 0.0) -> None:
        self.estimator = estimator
        self.now = start
        self.highest = 1000
        self.estimator.on_receiver_report([block(SSRC, 0, self.highest)], self.now, rtt=0.05)

    def report(self, loss: float, period: float = 1.0,
               packets: int = PACKETS_PER_REPORT) -> DownlinkEstimate:
        self.now += period
        self.highest += packets
        return self.estimator.on_receiver_report(
            [block(SSRC, round(loss * 256), self.highest)], self.now, rtt=0.05)


def past_start_phase(start_bitrate: int = START_BITRATE) -> Subscriber:
    subscriber = Subscriber(DownlinkEstimator(start_bitrate=start_bitrate))
    subscriber.report(0.05)  # held: 2-10 %
    subscriber.report(0.05)
    assert subscriber.estimator.estimate.bitrate == start_bitrate
    return subscriber


def test_starts_at_the_start_bitrate_and_holds_without_feedback() -> None:
    estimator = DownlinkEstimator()
    assert estimator.estimate == DownlinkEstimate(START_BITRATE, False)
    assert estimator.update(10.0).bitrate == START_BITRATE


def test_low_loss_increases_about_8_percent_per_second() -> None:
    subscriber = past_start_phase()
    before = subscriber.estimator.estimate.bitrate
    for _ in range(10):
        estimate = subscriber.report(0.01)
    growth = (estimate.bitrate / before) ** (1 / 10)
    assert 1.075 < growth < 1.09
    assert estimate.fraction_lost == pytest.approx(round(0.01 * 256) / 256)
    assert not estimate.congested


def test_increase_rate_does_not_depend_on_how_often_feedback_comes() -> None:
    slow, fast = past_start_phase(), past_start_phase()
    for _ in range(5):
        slow.report(0.0, period=1.0)
    for _ in range(50):
        fast.report(0.0, period=0.1, packets=20)
    ratio = fast.estimator.estimate.bitrate / slow.estimator.estimate.bitrate
    assert 0.95 < ratio < 1.1


def test_loss_between_2_and_10_percent_holds() -> None:
    subscriber = past_start_phase()
    for loss in (0.03, 0.05, 0.09, 0.05):
        assert subscriber.report(loss).bitrate == START_BITRATE


@pytest.mark.parametrize("loss", [0.15, 0.3, 0.6])
def test_high_loss_decreases_by_half_the_loss(loss: float) -> None:
    subscriber = past_start_phase()
    estimate = subscriber.report(loss)
    q8 = round(loss * 256) / 256
    assert estimate.bitrate == pytest.approx(START_BITRATE * (1 - 0.5 * q8), abs=1)
    assert estimate.congested


def test_one_decrease_per_judgement_and_per_300ms_plus_rtt() -> None:
    subscriber = past_start_phase()
    first = subscriber.report(0.3).bitrate
    # later update calls do not decrease again on the same judgement
    assert subscriber.estimator.update(subscriber.now + 0.5).bitrate == first
    # a new judgement 200 ms later is within 300 ms + RTT (50 ms): no decrease yet
    assert subscriber.report(0.3, period=0.2).bitrate == first
    # ... but the next one, 400 ms after the first decrease, decreases
    assert subscriber.report(0.3, period=0.2).bitrate < first


def test_loss_needs_20_packets_before_it_counts() -> None:
    subscriber = past_start_phase()
    for _ in range(3):
        assert subscriber.report(0.5, packets=6).bitrate == START_BITRATE  # 6, 12, 18 packets
    assert subscriber.report(0.5, packets=6).bitrate < START_BITRATE  # 24


def test_loss_is_weighted_by_packets_across_streams() -> None:
    estimator = DownlinkEstimator()
    estimator.on_receiver_report([block(1, 0, 100), block(2, 0, 100)], 0.0)
    # 90 packets none lost, 10 packets all lost, in one RTCP packet
    estimate = estimator.on_receiver_report([block(1, 0, 190), block(2, 255, 110)], 1.0)
    assert estimate.fraction_lost == pytest.approx(255 * 10 / 100 / 256)
    # a stream seen for the first time, or a sequence number going back, counts no packets
    estimate = estimator.on_receiver_report([block(3, 255, 5000), block(1, 255, 150)], 2.0)
    assert estimate.fraction_lost == pytest.approx(255 * 10 / 100 / 256)


def test_remb_caps_and_is_trusted_upwards_during_start_up() -> None:
    estimator = DownlinkEstimator()
    assert estimator.on_remb(400_000, 0.0).bitrate == 400_000  # caps
    assert estimator.on_remb(3_000_000, 1.0).bitrate == 3_000_000  # start phase: jump up
    estimate = estimator.on_remb(6_000_000, 2.5)  # after it: no jump, grows from where it is
    assert 3_000_000 <= estimate.bitrate < 3_500_000
    assert estimate.remb == 6_000_000


def test_remb_below_what_is_sent_is_congestion() -> None:
    estimator = DownlinkEstimator()
    estimator.update(0.0, sending_bitrate=1_000_000)
    assert not estimator.on_remb(1_200_000, 0.0).congested
    assert not estimator.on_remb(950_000, 1.0).congested  # within measurement noise
    over_use = estimator.on_remb(850_000, 2.0)
    assert over_use.congested and over_use.bitrate == 850_000
    assert not estimator.update(2.1, sending_bitrate=800_000).congested  # the SFU backed off


def test_loss_congestion_clears_with_the_next_clean_judgement() -> None:
    subscriber = past_start_phase()
    assert subscriber.report(0.2).congested
    assert not subscriber.report(0.01).congested
    assert subscriber.report(0.2).congested
    # a stale judgement (no report for more than 6 s) no longer counts
    assert not subscriber.estimator.update(subscriber.now + 6.5).congested


def test_feedback_timeout_while_sending_lowers_and_is_congestion() -> None:
    subscriber = past_start_phase()
    estimator = subscriber.estimator
    t = subscriber.now
    estimator.update(t, sending_bitrate=500_000)
    assert not estimator.update(t + 14.0).congested
    first = estimator.update(t + 15.5)
    assert first.congested and first.bitrate == int(START_BITRATE * 0.8)
    assert estimator.update(t + 16.0).bitrate == first.bitrate  # once per second
    assert estimator.update(t + 16.6).bitrate == int(START_BITRATE * 0.8 * 0.8)
    idle = past_start_phase()
    assert not idle.estimator.update(idle.now + 30.0, sending_bitrate=0).congested


def test_bounds() -> None:
    low = past_start_phase(start_bitrate=10_000)
    for _ in range(20):
        estimate = low.report(0.9, period=0.5)
    assert estimate.bitrate == MIN_BITRATE
    high = DownlinkEstimator(start_bitrate=10**12)
    assert high.estimate.bitrate == MAX_BITRATE
    capped = DownlinkEstimator(max_bitrate=2_000_000)
    capped.on_remb(10**9, 0.0)
    assert capped.estimate.bitrate == 2_000_000


def test_a_rejected_report_changes_nothing() -> None:
    estimator = DownlinkEstimator()
    estimator.on_receiver_report([block(1, 0, 100)], 0.0)
    with pytest.raises(ValueError):
        estimator.on_receiver_report([block(1, 0, 200), block(2, 300, 10)], 1.0)
    # the 100 packets up to 200 are still counted, with their loss, by the next good report
    assert estimator.on_receiver_report([block(1, 128, 200)], 1.1).fraction_lost == 0.5


def ntp(seconds: float) -> int:
    return round(seconds * 2**32)


@pytest.mark.parametrize(("sent", "held", "arrived", "expected"), [
    (1000.0, 0.25, 1000.3, 0.05),
    (2**32 - 0.1, 0.05, 2**32 + 0.05, 0.1),  # across the NTP era wrap
])
def test_round_trip_time_from_lsr_and_dlsr(sent: float, held: float, arrived: float,
                                           expected: float) -> None:
    lsr = (ntp(sent) >> 16) & 0xFFFFFFFF
    dlsr = round(held * 65536)
    rtt = round_trip_time(lsr, dlsr, ntp(arrived) & (2**64 - 1))
    assert rtt == pytest.approx(expected, abs=1 / 65536)


def test_round_trip_time_unknown() -> None:
    assert round_trip_time(0, 0, ntp(5.0)) is None  # no sender report seen yet
    lsr = (ntp(10.0) >> 16) & 0xFFFFFFFF
    assert round_trip_time(lsr, round(0.5 * 65536), ntp(10.2)) is None  # negative


@pytest.mark.parametrize(("call", "message"), [
    (lambda e: e.on_receiver_report([block(7, 256, 10)], 0.0),
     "report block 7: fraction_lost must be RTCP's 8-bit"),
    (lambda e: e.on_receiver_report([block(7, 0.5, 10)], 0.0),  # type: ignore[arg-type]
     "fraction_lost must be RTCP's 8-bit"),
    (lambda e: e.on_receiver_report([], 0.0, rtt=-1.0), "rtt must be >= 0"),
    (lambda e: e.on_remb(-5, 0.0), "REMB bitrate must be an integer >= 0"),
    (lambda e: e.update(0.0, sending_bitrate=-1), "sending_bitrate must be >= 0"),
    (lambda e: DownlinkEstimator(min_bitrate=0), "need 0 < min_bitrate <= max_bitrate"),
])
def test_bad_feedback_is_rejected(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(DownlinkEstimator())  # type: ignore[operator]


def test_detected_mode_switches_off_only_under_congestion() -> None:
    """The estimator's output drives the allocator: in ``detected`` mode a falling estimate alone
    keeps tracks on (overshooting), congestion switches the ones that do not fit off."""
    layers = [VideoLayer(150_000, 320, 180), VideoLayer(500_000, 640, 360)]
    subscription = Subscription(
        [SubscribedVideoTrack("MT1", layers), SubscribedVideoTrack("MT2", layers)],
        VideoBandwidthProfileOptions(track_switch_off_mode=TrackSwitchOffMode.DETECTED))
    estimator = DownlinkEstimator()
    estimate = estimator.on_remb(1_000_000, 0.0)
    first = allocate(subscription, estimate.bitrate, congestion=estimate.congested)
    assert all(t.layer is not None for t in first.tracks)
    estimator.update(0.5, sending_bitrate=first.total_bitrate)
    # the receiver lowers its REMB a little, no over-use: tracks stay on
    estimator.update(3.0, sending_bitrate=260_000)
    calm = estimator.on_remb(280_000, 3.0)
    assert not calm.congested and calm.bitrate == 280_000
    kept = allocate(subscription, calm.bitrate, congestion=calm.congested, previous=first)
    assert all(t.layer == 0 for t in kept.tracks) and kept.overshoot_bitrate > 0
    # over-use: REMB well below what is being sent
    congested = estimator.on_remb(200_000, 4.0)
    assert congested.congested
    cut = allocate(subscription, congested.bitrate, congestion=congested.congested,
                   previous=kept)
    assert [t.layer for t in cut.tracks] == [0, None]
    assert cut["MT2"].reason == "bandwidth"


# (time since the previous event, what, a, b): a REMB of a bps; a receiver report covering b
# packets with fraction lost a % 256; an update while sending a bps.
events = st.lists(st.tuples(st.floats(0.0, 3.0), st.sampled_from(["remb", "rr", "update"]),
                            st.integers(0, 10**10), st.integers(0, 300)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(events, st.integers(1, 10**10))
def test_estimate_stays_within_bounds_and_under_remb(
        sequence: list[tuple[float, str, int, int]], start: int) -> None:
    estimator = DownlinkEstimator(start_bitrate=start)
    now, highest, remb = 0.0, 0, None
    for delay, kind, a, b in sequence:
        now += delay
        if kind == "remb":
            remb = a
            estimate = estimator.on_remb(remb, now)
        elif kind == "rr":
            highest += b
            estimate = estimator.on_receiver_report([block(SSRC, a % 256, highest)], now)
        else:
            estimate = estimator.update(now, sending_bitrate=a)
        assert MIN_BITRATE <= estimate.bitrate <= MAX_BITRATE
        if remb is not None:
            assert estimate.bitrate <= max(remb, MIN_BITRATE)
        assert estimate == estimator.estimate
