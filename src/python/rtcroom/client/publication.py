"""Track publications: a track as published in a room, whether or not anyone receives it.

A :class:`LocalTrackPublication` is what ``LocalParticipant.publish_track`` returns; a
:class:`RemoteTrackPublication` stands for another participant's track from the moment it is
published, and holds the :class:`~rtcroom.client.remotetrack.RemoteTrack` while subscribed.
The kind-specific subclasses exist so ``isinstance`` checks read like the reference.

The network layer does not touch publications directly: it goes through the participant's
internal methods (see :mod:`rtcroom.client.participant`), which keep publications, tracks,
participant and room events consistent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rtcroom.constants import TrackKind, TrackPriority
from rtcroom.events import EventEmitter

if TYPE_CHECKING:
    from rtcroom.client.localtrack import LocalTrack
    from rtcroom.client.participant import LocalParticipant
    from rtcroom.client.remotetrack import RemoteTrack

__all__ = [
    "LocalAudioTrackPublication",
    "LocalDataTrackPublication",
    "LocalTrackPublication",
    "LocalVideoTrackPublication",
    "RemoteAudioTrackPublication",
    "RemoteDataTrackPublication",
    "RemoteTrackPublication",
    "RemoteVideoTrackPublication",
    "TrackPublication",
]


class TrackPublication(EventEmitter):
    """``track_sid`` (the server's id), ``track_name`` and ``kind`` of a published track."""

    def __init__(self, track_sid: str, track_name: str, kind: TrackKind) -> None:
        super().__init__()
        self.track_sid = track_sid
        self.track_name = track_name
        self.kind = kind

    def __repr__(self) -> str:
        return f"{type(self).__name__}(track_sid={self.track_sid!r}, name={self.track_name!r})"


class LocalTrackPublication(TrackPublication):
    """A local track as published: ``track``, ``priority``, ``is_track_enabled``.

    Events ``warning(name)`` / ``warnings_cleared()`` exist for compatibility; rtcroom has no
    media-quality monitor that raises them.
    """

    EVENTS: ClassVar[frozenset[str]] = frozenset({"warning", "warnings_cleared"})

    def __init__(
        self,
        track_sid: str,
        track: LocalTrack,
        priority: TrackPriority,
        participant: LocalParticipant,
    ) -> None:
        super().__init__(track_sid, track.name, track.kind)
        self.track = track
        self.priority = priority
        self._participant = participant

    @property
    def is_track_enabled(self) -> bool:
        """Whether the track sends real media (not silence/black)."""
        return self.track.is_enabled

    def set_priority(self, priority: TrackPriority | str) -> LocalTrackPublication:
        """Change the publish priority (group rooms share bandwidth by it)."""
        value = TrackPriority.coerce(priority, "priority")
        if value != self.priority:
            self.priority = value
            self._participant._publish_priority_changed(self)
        return self

    async def unpublish(self) -> LocalTrackPublication:
        """Stop publishing the track (the track itself keeps running)."""
        await self._participant.unpublish_track(self.track)
        return self


class LocalAudioTrackPublication(LocalTrackPublication):
    """A published LocalAudioTrack."""


class LocalVideoTrackPublication(LocalTrackPublication):
    """A published LocalVideoTrack."""


class LocalDataTrackPublication(LocalTrackPublication):
    """A published LocalDataTrack."""


class RemoteTrackPublication(TrackPublication):
    """Another participant's published track.

    ``is_subscribed`` / ``track`` (None until subscribed), ``is_track_enabled``,
    ``is_track_switched_off``, ``publish_priority``.

    Events: ``subscribed(track)``, ``subscription_failed(error)``, ``unsubscribed(track)``,
    ``track_enabled()``, ``track_disabled()``, ``track_switched_off(track)``,
    ``track_switched_on(track)``, ``publish_priority_changed(priority)``.
    """

    EVENTS: ClassVar[frozenset[str]] = frozenset(
        {
            "publish_priority_changed",
            "subscribed",
            "subscription_failed",
            "track_disabled",
            "track_enabled",
            "track_switched_off",
            "track_switched_on",
            "unsubscribed",
        }
    )

    def __init__(
        self,
        track_sid: str,
        track_name: str,
        kind: TrackKind,
        is_track_enabled: bool = True,
        publish_priority: TrackPriority = TrackPriority.STANDARD,
    ) -> None:
        super().__init__(track_sid, track_name, kind)
        self.is_track_enabled = is_track_enabled
        self.is_track_switched_off = False
        self.publish_priority = publish_priority
        self.track: RemoteTrack | None = None

    @property
    def is_subscribed(self) -> bool:
        """Whether this participant receives the track."""
        return self.track is not None


class RemoteAudioTrackPublication(RemoteTrackPublication):
    """A remote participant's published audio track."""


class RemoteVideoTrackPublication(RemoteTrackPublication):
    """A remote participant's published video track."""


class RemoteDataTrackPublication(RemoteTrackPublication):
    """A remote participant's published data track."""
