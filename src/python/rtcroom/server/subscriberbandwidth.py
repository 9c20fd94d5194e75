"""A group-room subscriber's video bandwidth: the allocator (rtcroom.bandwidth) applied to what
the SFU forwards to it.

The subscriber's ``bandwidth_profile`` (sent with ``connect``, and again in an ``update`` when it
changes) gives the mode, the cap (``max_subscription_bandwidth``, bps), ``max_tracks``, the
dominant speaker's least priority, the switch-off mode and the render dimensions. The
budget is the lower of that cap and the subscriber's downlink estimate, which the server computes
from the subscriber's RTCP (rtcroom.server.estimator's DownlinkEstimator, one per subscriber:
loss in its receiver reports, and REMB from subscribers whose REMB covers the whole link); the
estimate's congestion flag is what lets ``detected`` mode switch tracks off. Each track's
priority is the subscriber's own (``track_priority``) if it set one, else the publisher's. Each track
offers the layers the SFU receives of it: its simulcast layers, or its one stream, with the
bitrate measured on arrival; a layer costs the mean of its rates seen in the last ``COST_HOLD``
seconds. At low frame rates a half-second measuring window holds a handful of frames, and one
frame more or less (late, or a keyframe) moves it by a fifth or more: costs that followed each
window would move a subscriber near its budget up and down a layer, or off and on. A track the allocation switches off is paused at the SFU (no packets
forwarded) and the subscriber told ``track_switch_off``; one switched on again resumes at its next
keyframe.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from rtcroom.bandwidth import (
    Allocation,
    SubscribedVideoTrack,
    Subscription,
    VideoLayer,
    allocate,
)
from rtcroom.options import VideoBandwidthProfileOptions
from rtcroom.server.sfu import Subscription as Leg

__all__ = ["SubscribedVideo", "SubscriberBandwidth", "profile_from_wire"]

UNLIMITED = 1 << 40
"""The available bitrate when there is no estimate; the allocator caps it by the profile's
``max_subscription_bitrate``."""

COST_HOLD = 5.0
"""Seconds over which a layer's measured rates are averaged into its cost."""

_WIRE_NAMES = {"mode": "mode", "max_tracks": "max_tracks",
               "max_subscription_bandwidth": "max_subscription_bitrate",
               "active_speaker_priority": "dominant_speaker_priority",
               "track_switch_off": "track_switch_off_mode",
               "render_dimensions": "render_dimensions"}


def profile_from_wire(bandwidth_profile: Any) -> VideoBandwidthProfileOptions | None:
    """The video profile of a ``connect``'s ``bandwidth_profile``; None when it has none.
    Raises ValueError naming a bad field."""
    video = bandwidth_profile.get("video") if isinstance(bandwidth_profile, dict) else None
    if not isinstance(video, dict):
        return None
    return VideoBandwidthProfileOptions.from_dict(
        {_WIRE_NAMES[k]: v for k, v in video.items() if k in _WIRE_NAMES and v is not None},
        "bandwidth_profile.video")


@dataclass
class SubscribedVideo:
    """A video leg of the subscriber, with the track's effective priority."""

    sid: str
    leg: Leg
    priority: str
    dominant_speaker: bool = False
    switched_off: bool = False
    """The subscriber switched it off (a render hint with ``enabled: false``)."""


class SubscriberBandwidth:
    def __init__(self, profile: VideoBandwidthProfileOptions) -> None:
        self.profile = profile
        self.previous: Allocation | None = None
        self.off: set[str] = set()
        self._measured: dict[str, deque[tuple[float, list[float]]]] = {}
        """Per track sid: the layer rates seen in the last COST_HOLD seconds, with when."""

    def run(self, videos: list[SubscribedVideo], available: int = UNLIMITED,
            congestion: bool = False, now: float | None = None) -> tuple[list[str], list[str]]:
        """Allocate ``available`` bps (the downlink estimate; the profile's cap applies on top)
        and apply; the sids switched off and on by this run."""
        now = time.monotonic() if now is None else now
        for sid in set(self._measured) - {v.sid for v in videos}:
            del self._measured[sid]  # unsubscribed
        tracks = []
        for video in videos:
            layers = self._layers(video, now)
            if layers is None:
                continue  # nothing measured yet: it stays as it is
            tracks.append(SubscribedVideoTrack(video.sid, layers, video.priority,
                                               dominant_speaker=video.dominant_speaker,
                                               switched_off=video.switched_off))
        if not tracks:
            return [], []
        allocation = allocate(Subscription(tracks, self.profile), min(available, UNLIMITED),
                              congestion=congestion, previous=self.previous)
        self.previous = allocation
        legs = {v.sid: v.leg for v in videos}
        off, on = [], []
        for t in allocation.tracks:
            leg = legs[t.track_id]
            if t.layer is None:
                leg.pause()
                if t.track_id not in self.off:
                    self.off.add(t.track_id)
                    off.append(t.track_id)
            else:
                leg.layer = t.layer if leg.track.layers else None
                leg.resume()
                if t.track_id in self.off:
                    self.off.discard(t.track_id)
                    on.append(t.track_id)
        return off, on

    def _layers(self, video: SubscribedVideo, now: float) -> list[VideoLayer] | None:
        rates = _rates(video.leg)
        if rates is None:
            return None
        history = self._measured.setdefault(video.sid, deque())
        history.append((now, rates))
        while history[0][0] < now - COST_HOLD:
            history.popleft()
        costs = [statistics.fmean(r[i] for _, r in history if i < len(r))
                 for i in range(len(rates))]
        # The SFU never decodes, so it does not know the pictures' sizes: layers are told
        # apart by bitrate, and each counts as the size of its share of a standard-definition
        # picture.
        top = max(int(c) for c in costs) or 1
        return [VideoLayer(bitrate=int(c), width=max(1, 640 * int(c) // top),
                           height=max(1, 480 * int(c) // top)) for c in costs]


def _rates(leg: Leg) -> list[float] | None:
    """The bitrates of the layers arriving now, lowest first; None before they are known."""
    track = leg.track
    if track.layers:
        rates = track.layer_bitrates()
        # A publisher under a bitrate cap stops its top layers (rtcroom's SimulcastSender,
        # browsers under a low estimate): the layers still arriving are the lower ones.
        if None in rates:
            rates = rates[:rates.index(None)]
    elif track.ssrcs:
        rates = [track.rates.rates.get(track.ssrcs[0])]
    else:
        return None
    if not rates or any(r is None for r in rates):
        return None
    return [float(r or 0) for r in rates]
