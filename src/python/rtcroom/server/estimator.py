"""A subscriber's downlink bandwidth estimate, computed on the server from what the subscriber's
peer connection reports to the SFU, and the congestion signal of the ``detected`` switch-off mode.

The SFU sends; the subscriber's RTCP tells it how that went. Two kinds of feedback are used:

- REMB (``goog-remb``): the receiver's own delay-based estimate of what it can take. It caps the
  estimate, as libwebrtc's sender treats it.
- RTCP receiver report blocks, one per stream the SFU sends: fraction lost (Q8, 0..255), the
  extended highest sequence number (the packets each report covers), and the round-trip time the
  SFU derives from the block's LSR / DLSR (:func:`round_trip_time`). These drive a loss-based
  estimate.

The loss-based control is libwebrtc's ``SendSideBandwidthEstimation``
(``modules/congestion_controller/goog_cc/send_side_bandwidth_estimation.cc``), with its numbers:

- Loss is judged only once the reports since the last judgement cover at least 20 packets
  (``kLimitNumPackets``), weighting each block's fraction by its packets; the blocks of one
  RTCP packet count together.
- Loss up to 2 % (``kDefaultLowLossThreshold``): the estimate rises to 1.08 x the lowest
  estimate of the last second (``kBweIncreaseInterval``) + 1 kbps, i.e. about 8 % per second
  however often feedback arrives.
- Between 2 % and 10 % (``kDefaultHighLossThreshold``): hold.
- Above 10 %: multiply by ``1 - 0.5 x loss``, at most once per loss judgement and per
  300 ms (``kBweDecreaseInterval``) + RTT.
- In the first 2 s after the first feedback (``kStartPhase``), while no loss has been seen, the
  estimate may jump up to the REMB value (the receiver is trusted during start-up).
- A loss judgement older than 1.2 x 5 s (``kMaxRtcpFeedbackInterval``) no longer moves the
  estimate; no feedback at all for 3 x 5 s (``kFeedbackTimeoutIntervals``) while media is being
  sent lowers it by 20 % per second (``kTimeoutInterval``).
- Bounds: 5 kbps (``congestion_controller::GetMinBitrateBps``) to 1 Gbps (``kDefaultMaxBitrate``).

rtcroom's choices, where libwebrtc's sender has parts a forwarding server lacks (probing, a
pacer-driven delay-based estimator, transport-wide feedback, none of which rtcroom's SFU does):

- Start at 1 Mbps (libwebrtc starts at 300 kbps and then probes upwards quickly; without
  probes, 8 % per second from 300 kbps would take some 20 s to reach a single 720p layer).
  Losses above 10 % bring a too-high start down within a few seconds.
- Congestion (the allocator's ``congestion`` flag, which lets ``detected`` mode switch tracks
  off): the last loss judgement is above 10 %, or the receiver's REMB has fallen below 90 % of
  what the SFU is sending it (a receiver that detects over-use sets its REMB to about 85 % of
  the rate it receives), or feedback has timed out while media is being sent. An estimate that
  is merely lower than the allocation is not congestion: that is ``predicted`` mode's business.

Nothing here does I/O, and time is the caller's (seconds, monotonic). One
:class:`DownlinkEstimator` per subscriber peer connection: feed it every REMB and every receiver
report as they arrive, call :meth:`~DownlinkEstimator.update` from a timer (every 100 ms-1 s) with
the bitrate the SFU is sending that subscriber, and run the allocator when ``bitrate`` or
``congested`` of the returned :class:`DownlinkEstimate` changes.

In rtcroom this runs on the server, in the SFU (rtcroom.server.grouproom): every group-room
subscriber has one, fed with the receiver report blocks about the streams the SFU forwards it and
with its REMBs, and updated every second with what the SFU sent it; the estimate, capped by the
subscriber's ``max_subscription_bitrate``, is the budget of its bandwidth allocation, and
``congested`` its congestion flag. REMB counts only from subscribers whose REMB estimates the
whole link (browsers send one REMB naming every stream they receive); aiortc, which rtcroom's
own clients use, sends one REMB per received stream, tracking that stream's own rate (at most
about 1.5 times it), so counting it would cap the budget at what is already sent and switch
tracks off on a clean link. rtcroom clients are therefore estimated from loss alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = [
    "CONGESTION_RATIO",
    "HIGH_LOSS",
    "LOW_LOSS",
    "MAX_BITRATE",
    "MIN_BITRATE",
    "START_BITRATE",
    "DownlinkEstimate",
    "DownlinkEstimator",
    "ReportBlock",
    "round_trip_time",
]

START_BITRATE: Final = 1_000_000
MIN_BITRATE: Final = 5_000
MAX_BITRATE: Final = 1_000_000_000
LOW_LOSS: Final = 0.02
HIGH_LOSS: Final = 0.10
CONGESTION_RATIO: Final = 0.9

_INCREASE_FACTOR: Final = 1.08
_INCREASE_OFFSET: Final = 1000
_INCREASE_INTERVAL: Final = 1.0
_DECREASE_INTERVAL: Final = 0.3
_START_PHASE: Final = 2.0
_MIN_PACKETS: Final = 20
_FEEDBACK_INTERVAL: Final = 5.0
_FEEDBACK_TIMEOUT: Final = 3 * _FEEDBACK_INTERVAL
_TIMEOUT_INTERVAL: Final = 1.0
_TIMEOUT_FACTOR: Final = 0.8


def round_trip_time(lsr: int, dlsr: int, arrival_ntp: int) -> float | None:
    """RFC 3550 section 6.4.1: the RTT (seconds) a report block's ``lsr`` / ``dlsr`` give, with
    ``arrival_ntp`` the 64-bit NTP time the report arrived at the SFU. None when the subscriber
    has had no sender report yet (``lsr`` 0) or the result is negative (clocks stepped)."""
    if lsr == 0:
        return None
    units = (((arrival_ntp >> 16) & 0xFFFFFFFF) - lsr - dlsr) & 0xFFFFFFFF
    if units >= 1 << 31:
        return None
    return units / 65536


class ReportBlock(Protocol):
    """What a receiver report block says about one stream (aiortc's ``RtcpReceiverInfo`` is
    one): the fraction lost as RTCP carries it (0..255 = 0..1) and the extended highest sequence
    number received (so the packets a report covers are the difference from the last one)."""

    @property
    def ssrc(self) -> int: ...

    @property
    def fraction_lost(self) -> int: ...

    @property
    def highest_sequence(self) -> int: ...


@dataclass(frozen=True)
class DownlinkEstimate:
    """``bitrate`` (bps) for the allocator's ``available_bitrate``, ``congested`` for its
    ``congestion``; the loss (0..1, the last judgement), RTT (seconds) and REMB (bps) behind
    them, None until reported."""

    bitrate: int
    congested: bool
    fraction_lost: float | None = None
    rtt: float | None = None
    remb: int | None = None


class DownlinkEstimator:
    """One subscriber's downlink estimate; see the module docstring for the rules."""

    def __init__(self, *, start_bitrate: int = START_BITRATE, min_bitrate: int = MIN_BITRATE,
                 max_bitrate: int = MAX_BITRATE) -> None:
        if not 0 < min_bitrate <= max_bitrate:
            raise ValueError(f"need 0 < min_bitrate <= max_bitrate, got {min_bitrate} and "
                             f"{max_bitrate}")
        self._min = min_bitrate
        self._max = max_bitrate
        self._bitrate = float(min(max(start_bitrate, min_bitrate), max_bitrate))
        self._remb: int | None = None
        self._rtt: float | None = None
        self._sending = 0
        self._highest: dict[int, int] = {}
        self._lost_q8 = 0  # packets x fraction (Q8) since the last judgement
        self._expected = 0
        self._loss: float | None = None  # last judgement
        self._loss_time: float | None = None
        self._decreased_since_loss = False
        self._last_decrease: float | None = None
        self._first_feedback: float | None = None
        self._last_feedback: float | None = None
        self._last_timeout: float | None = None
        self._history: deque[tuple[float, float]] = deque()  # (time, bitrate), increasing
        self._estimate = DownlinkEstimate(int(self._bitrate), False)

    @property
    def estimate(self) -> DownlinkEstimate:
        """The estimate as of the last call."""
        return self._estimate

    def on_remb(self, bitrate: int, now: float) -> DownlinkEstimate:
        """A REMB from the subscriber (bps, the value its packet carries)."""
        if isinstance(bitrate, bool) or not isinstance(bitrate, int) or bitrate < 0:
            raise ValueError(f"REMB bitrate must be an integer >= 0 (bps), got {bitrate!r}")
        self._feedback(now)
        self._remb = bitrate
        return self.update(now)

    def on_receiver_report(self, blocks: Iterable[ReportBlock], now: float,
                           rtt: float | None = None) -> DownlinkEstimate:
        """The report blocks of one RTCP receiver (or sender) report, e.g. aiortc's
        ``RtcpRrPacket.reports``, and the RTT (seconds) the SFU computed from their LSR / DLSR,
        if any. Blocks about streams the SFU does not send to this subscriber are the caller's
        to leave out."""
        if rtt is not None and not rtt >= 0:
            raise ValueError(f"rtt must be >= 0 seconds, got {rtt!r}")
        blocks = list(blocks)
        for block in blocks:  # all checked before any is used: a bad report changes nothing
            fraction = block.fraction_lost
            if isinstance(fraction, bool) or not isinstance(fraction, int) or not (
                    0 <= fraction <= 255):
                raise ValueError(f"report block {block.ssrc}: fraction_lost must be RTCP's 8-bit "
                                 f"fraction 0..255, got {fraction!r}")
        self._feedback(now)
        if rtt is not None:
            self._rtt = rtt
        for block in blocks:
            previous = self._highest.get(block.ssrc)
            if previous is not None and block.highest_sequence > previous:
                packets = block.highest_sequence - previous
                self._lost_q8 += block.fraction_lost * packets
                self._expected += packets
            self._highest[block.ssrc] = block.highest_sequence
        if self._expected >= _MIN_PACKETS:
            self._loss = self._lost_q8 / self._expected / 256
            self._loss_time = now
            self._decreased_since_loss = False
            self._lost_q8 = self._expected = 0
        return self.update(now)

    def update(self, now: float, sending_bitrate: int | None = None) -> DownlinkEstimate:
        """Moves the estimate to ``now``; ``sending_bitrate``: what the SFU currently sends this
        subscriber (bps), kept until the next value."""
        if sending_bitrate is not None:
            if sending_bitrate < 0:
                raise ValueError(f"sending_bitrate must be >= 0, got {sending_bitrate!r}")
            self._sending = sending_bitrate
        bitrate = self._bitrate
        in_start_phase = (self._first_feedback is not None
                          and now - self._first_feedback < _START_PHASE)
        if in_start_phase and not self._loss and self._remb is not None and self._remb > bitrate:
            bitrate = float(self._remb)
            self._history.clear()
        else:
            self._remember(now)
            timed_out = self._timed_out(now)
            if timed_out:
                if self._last_timeout is None or now - self._last_timeout >= _TIMEOUT_INTERVAL:
                    bitrate *= _TIMEOUT_FACTOR
                    self._last_timeout = now
                    self._lost_q8 = self._expected = 0
            elif self._loss_time is not None and (
                    now - self._loss_time < 1.2 * _FEEDBACK_INTERVAL):
                assert self._loss is not None
                if self._loss <= LOW_LOSS:
                    bitrate = max(bitrate, self._history[0][1] * _INCREASE_FACTOR
                                  + _INCREASE_OFFSET)
                elif self._loss > HIGH_LOSS and not self._decreased_since_loss and (
                        self._last_decrease is None
                        or now - self._last_decrease >= _DECREASE_INTERVAL + (self._rtt or 0)):
                    bitrate *= 1 - 0.5 * self._loss
                    self._decreased_since_loss = True
                    self._last_decrease = now
        if self._remb is not None:
            bitrate = min(bitrate, self._remb)
        self._bitrate = min(max(bitrate, self._min), self._max)
        self._estimate = DownlinkEstimate(int(self._bitrate), self._congested(now), self._loss,
                                          self._rtt, self._remb)
        return self._estimate

    def _feedback(self, now: float) -> None:
        if self._first_feedback is None:
            self._first_feedback = now
        self._last_feedback = now
        self._last_timeout = None

    def _remember(self, now: float) -> None:
        """Sliding minimum of the estimate over the last second (the base of an increase)."""
        history = self._history
        while history and now - history[0][0] >= _INCREASE_INTERVAL:
            history.popleft()
        while history and self._bitrate <= history[-1][1]:
            history.pop()
        history.append((now, self._bitrate))

    def _timed_out(self, now: float) -> bool:
        return (self._sending > 0 and self._last_feedback is not None
                and now - self._last_feedback > _FEEDBACK_TIMEOUT)

    def _congested(self, now: float) -> bool:
        if self._timed_out(now):
            return True
        fresh_loss = (self._loss_time is not None
                      and now - self._loss_time < 1.2 * _FEEDBACK_INTERVAL)
        if fresh_loss and self._loss is not None and self._loss > HIGH_LOSS:
            return True
        return self._remb is not None and self._remb < CONGESTION_RATIO * self._sending
