"""Media signaling (MSP): small JSON messages on data channels the server opens on the
participant's connection, one channel per kind of signal.

The client asks for the channels in ``connect`` (``media_signaling``), the server names the
label of each it provides (in ``connected`` or an ``update``), then opens a data channel with that
label; the client answers ``{"type": "ready"}`` once it is open and from then on receives its
messages. Implemented: ``active_speaker`` (``dominant_speaker: true``), which sets the room's
dominant speaker, and ``track_switch_off`` (asked for with a ``bandwidth_profile``), which
switches remote tracks off and on as the server's bandwidth allocation decides.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aiortc import RTCDataChannel

from rtcroom.options import ConnectOptions

__all__ = ["MediaSignaling"]

logger = logging.getLogger("rtcroom.signaling")


class MediaSignaling:
    def __init__(self, options: ConnectOptions,
                 on_dominant_speaker: Callable[[str | None], None],
                 on_switch: Callable[[str, bool], None]) -> None:
        self._options = options
        self._on_dominant_speaker = on_dominant_speaker
        self._on_switch = on_switch
        self._labels: dict[str, str] = {}
        """Channel label -> the signal it carries, as the server named them."""

    def request(self) -> dict[str, Any] | None:
        """The ``media_signaling`` field of ``connect``."""
        wanted = ["active_speaker"] if self._options.dominant_speaker else []
        if self._options.bandwidth_profile is not None:
            wanted.append("track_switch_off")
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

        channel.on("message", lambda message: self._on_message(name, message))
        if channel.readyState == "open":
            ready()
        else:
            channel.on("open", ready)
        return True

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

    def bandwidth_profile(self) -> dict[str, Any] | None:
        """The ``bandwidth_profile`` field of ``connect``: the video profile, in wire names."""
        profile = self._options.bandwidth_profile
        video = profile.video if profile is not None else None
        if video is None:
            return None
        wire = {"mode": str(video.mode), "max_tracks": video.max_tracks,
                "max_subscription_bandwidth": video.max_subscription_bitrate,
                "active_speaker_priority": str(video.dominant_speaker_priority),
                "track_switch_off": str(video.track_switch_off_mode)}
        return {"video": {k: v for k, v in wire.items() if v is not None}}
