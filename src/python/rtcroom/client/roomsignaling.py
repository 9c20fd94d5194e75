"""What the room objects ask of the network: the one interface between client/ and signaling.

:class:`~rtcroom.client.room.Room` and :class:`~rtcroom.client.participant.LocalParticipant`
hold an object implementing :class:`RoomSignaling` and call it whenever the user changes
something the server must learn about. Calls in the other direction (the server told us
something) go to the objects' underscore methods, listed in the docstrings of
:mod:`rtcroom.client.room` and :mod:`rtcroom.client.participant`.

Sync methods are notifications: they must not block; an implementation queues the change and
sends it in its own task (for instance one RSP ``update`` carrying the new participant revision).
Async methods complete when the server has answered, and raise :class:`rtcroom.TwilioError`
subclasses on failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from rtcroom.constants import TrackPriority
from rtcroom.options import (
    BandwidthProfileOptions,
    EncodingParameters,
    NetworkQualityConfiguration,
    VideoTrackDimensions,
)

if TYPE_CHECKING:
    from rtcroom.client.localtrack import LocalTrack
    from rtcroom.client.stats import StatsReport

__all__ = ["RoomSignaling"]


class RoomSignaling(Protocol):
    """The network side of one connected room."""

    async def publish_track(self, track: LocalTrack, priority: TrackPriority) -> str:
        """Publish ``track`` and return the sid the server gave it.

        For media tracks, send ``track._sender_track()`` on the peer connection(s); for a
        LocalDataTrack, open data channels and pass them to ``track._add_data_channel``.
        Raise the server's error (e.g. TrackNameIsDuplicatedError) if it refuses.
        """
        ...

    async def unpublish_track(self, track: LocalTrack) -> None:
        """Stop sending ``track`` and tell the server."""
        ...

    def local_track_changed(self, track: LocalTrack) -> None:
        """A published track was enabled, disabled or stopped (see ``track.is_enabled``)."""
        ...

    def publish_priority_changed(self, track_sid: str, priority: TrackPriority) -> None:
        """The publish priority of a local track changed."""
        ...

    def subscribe_priority_changed(self, track_sid: str, priority: TrackPriority | None) -> None:
        """The subscriber-side priority of a remote track changed (None: the publisher's)."""
        ...

    def render_hint(
        self,
        track_sid: str,
        enabled: bool | None = None,
        render_dimensions: VideoTrackDimensions | None = None,
    ) -> None:
        """The application switched a remote video on/off or gave its shown size (the
        ``render_hints`` media-signaling channel); only the given fields changed."""
        ...

    def set_encoding_parameters(self, parameters: EncodingParameters) -> None:
        """New outgoing bitrate caps (``options.KEEP``: unchanged, 0: no cap)."""
        ...

    def set_bandwidth_profile(self, profile: BandwidthProfileOptions) -> None:
        """A new bandwidth profile (an ``update`` carrying it)."""
        ...

    def set_network_quality_configuration(self, configuration: NetworkQualityConfiguration) -> None:
        """New network quality verbosity for the local and remote participants."""
        ...

    async def disconnect(self) -> None:
        """Leave the room cleanly and close the connections."""
        ...

    async def get_stats(self) -> list[StatsReport]:
        """One StatsReport per peer connection (``rtcroom.client.stats.collect_stats_report``)."""
        ...
