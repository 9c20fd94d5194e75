"""Media signaling (MSP): small JSON messages on data channels the server opens on the
participant's connection, one channel per kind of signal.

The client asks for the channels in ``connect`` (``media_signaling``), the server names the
label of each it provides (in ``connected`` or an ``update``), then opens a data channel with that
label; the client answers ``{"type": "ready"}`` once it is open and from then on exchanges its
messages. Implemented:

- ``active_speaker`` (``dominant_speaker: true``): sets the room's dominant speaker;
- ``network_quality`` (``network_quality``): the client sends its stats about every second
  (:class:`~rtcroom.client.stats.NetworkQualityInputs`) with the verbosities it wants
  (``reportLevel``, ``remoteReportLevel``), the server answers with levels of the local and the
  remote participants;
- ``track_switch_off`` and ``track_priority`` (asked for with a ``bandwidth_profile``, and only
  then, as twilio-video.js 2.36 does: without a profile the server allocates nothing): the server
  switches remote tracks off and on as its bandwidth allocation decides; the client sends the
  priorities it sets on remote tracks (``RemoteTrack.set_priority``), the latest of each again
  whenever the channel is (re)opened.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCDataChannel

from rtcroom.options import ConnectOptions
from rtcroom.signaling.networkquality import NetworkQualityStats

__all__ = ["NETWORK_QUALITY_INTERVAL", "MediaSignaling"]

logger = logging.getLogger("rtcroom.signaling")

NETWORK_QUALITY_INTERVAL = 1.0
"""Seconds between the client's network quality reports (as twilio-video.js)."""

NetworkQualityInputs = Callable[[], Awaitable["dict[str, Any] | None"]]
"""The stats part of the next ``network_quality`` message (None: nothing to report yet)."""


class MediaSignaling:
    def __init__(self, options: ConnectOptions,
                 on_dominant_speaker: Callable[[str | None], None],
                 on_switch: Callable[[str, bool], None],
                 on_network_quality: Callable[[str | None, int, NetworkQualityStats | None],
                                              None] | None = None,
                 network_quality_inputs: NetworkQualityInputs | None = None,
                 report_levels: Callable[[], tuple[int, int]] | None = None) -> None:
        self._options = options
        self._on_dominant_speaker = on_dominant_speaker
        self._on_switch = on_switch
        self._on_network_quality = on_network_quality
        self._network_quality_inputs = network_quality_inputs
        self._report_levels = report_levels
        self._labels: dict[str, str] = {}
        """Channel label -> the signal it carries, as the server named them."""
        self._ready: dict[str, RTCDataChannel] = {}
        self._priorities: dict[str, str | None] = {}
        self._reporter: asyncio.Task[None] | None = None

    def request(self) -> dict[str, Any] | None:
        """The ``media_signaling`` field of ``connect``."""
        wanted = ["active_speaker"] if self._options.dominant_speaker else []
        if self._options.network_quality is not None and self._network_quality_inputs:
            wanted.append("network_quality")
        if self._options.bandwidth_profile is not None:
            wanted += ["track_priority", "track_switch_off"]
        if not wanted:
            return None
        return {name: {"transports": [{"type": "data-channel"}]} for name in wanted}

    def offered(self, media_signaling: dict[str, Any]) -> None:
        """The server's ``media_signaling`` (from ``connected`` or an ``update``)."""
        for name, value in media_signaling.items():
            transport = value.get("transport") if isinstance(value, dict) else None
            label = transport.get("label") if isinstance(transport, dict) else None
            if isinstance(label, str):
                self._labels[label] = name

    def adopt(self, channel: RTCDataChannel) -> bool:
        """Take ``channel`` if it is a media signaling channel (not a data track's)."""
        name = self._labels.get(channel.label)
        if name is None:
            return False

        def ready() -> None:
            channel.send(json.dumps({"type": "ready"}))
            self._ready[name] = channel
            if name == "track_priority":
                for track, priority in self._priorities.items():
                    self._send("track_priority", _priority_message(track, priority))
            elif name == "network_quality" and self._reporter is None:
                self._reporter = asyncio.ensure_future(self._report_network_quality())

        def closed() -> None:
            if self._ready.get(name) is channel:
                del self._ready[name]

        channel.on("message", lambda message: self._on_message(name, message))
        channel.on("close", closed)
        if channel.readyState == "open":
            ready()
        else:
            channel.on("open", ready)
        return True

    def set_track_priority(self, track_sid: str, priority: str | None) -> None:
        """The subscriber's priority for a remote track (None: the publisher's)."""
        self._priorities[track_sid] = priority
        self._send("track_priority", _priority_message(track_sid, priority))

    def close(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
            self._reporter = None

    def _send(self, name: str, body: dict[str, Any]) -> None:
        channel = self._ready.get(name)
        if channel is not None and channel.readyState == "open":
            channel.send(json.dumps(body))

    async def _report_network_quality(self) -> None:
        assert self._network_quality_inputs is not None
        while True:
            await asyncio.sleep(NETWORK_QUALITY_INTERVAL)
            try:
                inputs = await self._network_quality_inputs()
            except Exception:
                logger.exception("collecting network quality stats failed")
                continue
            if inputs is None:
                continue
            local, remote = self._report_levels() if self._report_levels else (1, 0)
            self._send("network_quality", {"type": "network_quality", **inputs,
                                           "reportLevel": local, "remoteReportLevel": remote})

    def _on_message(self, name: str, message: str | bytes) -> None:
        try:
            body = json.loads(message)
        except ValueError:
            logger.warning("ignoring a malformed %s message from the server", name)
            return
        if not isinstance(body, dict):
            return
        if body.get("type") == "active_speaker":
            participant = body.get("participant")
            self._on_dominant_speaker(participant if isinstance(participant, str) else None)
        elif body.get("type") == "track_switch_off":
            for key, off in (("off", True), ("on", False)):
                sids = body.get(key)
                for sid in sids if isinstance(sids, list) else []:
                    if isinstance(sid, str):
                        self._on_switch(sid, off)
        elif body.get("type") == "network_quality":
            try:
                self._network_quality(body)
            except ValueError as exc:
                logger.warning("ignoring a malformed network_quality message: %s", exc)

    def _network_quality(self, body: dict[str, Any]) -> None:
        """twilio-video.js's reading: ``local`` is a bare level (minimal) or an object with
        levels; each of ``remotes`` is ``{sid, level, audio?, video?}``. Stats come with a
        level only when they say more than the level (moderate or detailed)."""
        if self._on_network_quality is None:
            return
        updates: list[tuple[str | None, NetworkQualityStats]] = []
        local = body.get("local")
        if isinstance(local, (int, float)) and not isinstance(local, bool):
            updates.append((None, NetworkQualityStats.from_dict({"level": local}, "local")))
        elif isinstance(local, dict):
            updates.append((None, NetworkQualityStats.from_dict(local, "local")))
        remotes = body.get("remotes")
        for i, remote in enumerate(remotes if isinstance(remotes, list) else []):
            sid = remote.get("sid") if isinstance(remote, dict) else None
            if isinstance(sid, str):
                updates.append((sid, NetworkQualityStats.from_dict(remote, f"remotes[{i}]")))
        for sid, stats in updates:
            detailed = stats.audio is not None or stats.video is not None
            self._on_network_quality(sid, stats.level, stats if detailed else None)

    def bandwidth_profile(self) -> dict[str, Any] | None:
        """The ``bandwidth_profile`` field of ``connect``: the video profile, in wire names."""
        return bandwidth_profile_wire(self._options.bandwidth_profile)


def bandwidth_profile_wire(profile: Any) -> dict[str, Any] | None:
    """A BandwidthProfileOptions in wire names (``connect`` and ``update``)."""
    video = profile.video if profile is not None else None
    if video is None:
        return None
    dimensions = video.render_dimensions
    wire = {"mode": str(video.mode), "max_tracks": video.max_tracks,
            "max_subscription_bandwidth": video.max_subscription_bitrate,
            "active_speaker_priority": str(video.dominant_speaker_priority),
            "track_switch_off": str(video.track_switch_off_mode),
            "render_dimensions": None if dimensions is None else {
                priority: {"width": size.width, "height": size.height}
                for priority, size in (("high", dimensions.high), ("standard", dimensions.standard),
                                       ("low", dimensions.low))}}
    return {"video": {k: v for k, v in wire.items() if v is not None}}


def _priority_message(track_sid: str, priority: str | None) -> dict[str, Any]:
    return {"type": "track_priority", "track": track_sid, "subscribe": priority}
