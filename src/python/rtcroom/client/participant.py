"""Participants: the local one (publishes tracks) and the remote ones (whose tracks we receive).

Common properties: ``sid``, ``identity``, ``state`` (a ParticipantState),
``network_quality_level`` (0-5 or None), ``network_quality_stats``, and the publications:
``tracks`` (by track sid), ``audio_tracks``, ``video_tracks``, ``data_tracks``.

Interface for the network layer (package-internal), on :class:`RemoteParticipant`; each call
updates the objects and fires the events of publication, track, participant and room in the
reference's order and with the reference's arguments:

- ``_add_publication(track_sid, name, kind, enabled=True, priority="standard")``:
  ``track_published``.
- ``_remove_publication(track_sid)``: unsubscribes first if needed, then ``track_unpublished``.
- ``_subscribe(track_sid, media_stream_track=None, channel=None)`` -> RemoteTrack: the aiortc
  track of the receiver for audio/video (required); for data the RTCDataChannel it arrives on,
  whose reliability settings the track reports (then feed messages with
  ``track._receive(data)``); ``subscribed`` / ``track_subscribed``.
- ``_subscription_failed(track_sid, error)``: ``subscription_failed`` /
  ``track_subscription_failed``.
- ``_unsubscribe(track_sid)``: ``unsubscribed`` / ``track_unsubscribed``.
- ``_set_track_enabled(track_sid, enabled)``: ``track_enabled`` / ``track_disabled``.
- ``_set_publish_priority(track_sid, priority)``: ``publish_priority_changed`` /
  ``track_publish_priority_changed``.
- ``_set_track_switched_off(track_sid, off)``: ``track_switched_off`` / ``track_switched_on``.
- ``_set_state(state)`` and ``_set_network_quality(level, stats)`` (both participant kinds;
  ``stats`` is a :class:`~rtcroom.signaling.networkquality.NetworkQualityStats` or None, see
  ``NetworkQualityStats.from_dict``).

On :class:`LocalParticipant`: ``_published(track, sid, priority)`` records a track the server
accepted (tracks given to ``connect()`` are published this way) and ``_publication_failed(track,
error)`` one it refused; ``_set_signaling(signaling)`` connects the participant to the network
(see :class:`~rtcroom.client.roomsignaling.RoomSignaling`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from aiortc import RTCDataChannel
from aiortc.mediastreams import MediaStreamTrack

from rtcroom.client.localtrack import (
    LocalAudioTrack,
    LocalTrack,
    LocalVideoTrack,
)
from rtcroom.client.publication import (
    LocalAudioTrackPublication,
    LocalDataTrackPublication,
    LocalTrackPublication,
    LocalVideoTrackPublication,
    RemoteAudioTrackPublication,
    RemoteDataTrackPublication,
    RemoteTrackPublication,
    RemoteVideoTrackPublication,
    TrackPublication,
)
from rtcroom.client.remotetrack import (
    RemoteAudioTrack,
    RemoteDataTrack,
    RemoteMediaTrack,
    RemoteTrack,
    RemoteVideoTrack,
)
from rtcroom.constants import NetworkQualityLevel, ParticipantState, TrackKind, TrackPriority
from rtcroom.errors import TrackInvalidError, TwilioError
from rtcroom.events import EventEmitter
from rtcroom.options import (
    EncodingParameters,
    LocalTrackPublishOptions,
    NetworkQualityConfiguration,
)
from rtcroom.signaling.networkquality import NetworkQualityStats

if TYPE_CHECKING:
    from rtcroom.client.room import Room
    from rtcroom.client.roomsignaling import RoomSignaling

__all__ = ["LocalParticipant", "Participant", "RemoteParticipant"]

logger = logging.getLogger("rtcroom")


_REMOTE_PUBLICATIONS: dict[TrackKind, type[RemoteTrackPublication]] = {
    TrackKind.AUDIO: RemoteAudioTrackPublication,
    TrackKind.VIDEO: RemoteVideoTrackPublication,
    TrackKind.DATA: RemoteDataTrackPublication,
}
_REMOTE_TRACKS: dict[TrackKind, type[RemoteTrack]] = {
    TrackKind.AUDIO: RemoteAudioTrack,
    TrackKind.VIDEO: RemoteVideoTrack,
    TrackKind.DATA: RemoteDataTrack,
}
_LOCAL_PUBLICATIONS: dict[TrackKind, type[LocalTrackPublication]] = {
    TrackKind.AUDIO: LocalAudioTrackPublication,
    TrackKind.VIDEO: LocalVideoTrackPublication,
    TrackKind.DATA: LocalDataTrackPublication,
}


class Participant(EventEmitter):
    """What local and remote participants share.

    Events: ``disconnected(participant)``, ``reconnecting(participant)``,
    ``reconnected(participant)``, ``network_quality_level_changed(level, stats)``,
    ``track_started(track)``, ``track_dimensions_changed(track)``.
    """

    EVENTS: ClassVar[frozenset[str]] = frozenset(
        {
            "disconnected",
            "network_quality_level_changed",
            "reconnected",
            "reconnecting",
            "track_dimensions_changed",
            "track_started",
        }
    )

    def __init__(self, sid: str, identity: str) -> None:
        super().__init__()
        self.sid = sid
        self.identity = identity
        self.state = ParticipantState.CONNECTED
        self.network_quality_level: NetworkQualityLevel | None = None
        self.network_quality_stats: NetworkQualityStats | None = None
        self.tracks: dict[str, TrackPublication] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sid={self.sid!r}, identity={self.identity!r})"

    def _of_kind(self, kind: TrackKind) -> dict[str, Any]:
        return {sid: pub for sid, pub in self.tracks.items() if pub.kind == kind}

    @property
    def audio_tracks(self) -> dict[str, Any]:
        """Audio publications by track sid."""
        return self._of_kind(TrackKind.AUDIO)

    @property
    def video_tracks(self) -> dict[str, Any]:
        """Video publications by track sid."""
        return self._of_kind(TrackKind.VIDEO)

    @property
    def data_tracks(self) -> dict[str, Any]:
        """Data publications by track sid."""
        return self._of_kind(TrackKind.DATA)

    def _set_state(self, state: ParticipantState | str) -> None:
        new = ParticipantState.coerce(state, "state")
        if new == self.state or self.state == ParticipantState.DISCONNECTED:
            return
        self.state = new
        if new == ParticipantState.RECONNECTING:
            self._emit("reconnecting", self)
        elif new == ParticipantState.CONNECTED:
            self._emit("reconnected", self)
        elif new == ParticipantState.DISCONNECTED:
            self._emit("disconnected", self)

    def _set_network_quality(self, level: int, stats: NetworkQualityStats | None = None) -> None:
        new = NetworkQualityLevel.coerce(level, "network_quality_level")
        changed = new != self.network_quality_level
        self.network_quality_level = new
        self.network_quality_stats = stats
        if changed:
            self._emit("network_quality_level_changed", new, stats)

    def _emit(self, event: str, *args: Any) -> None:
        self.emit(event, *args)


class RemoteParticipant(Participant):
    """Another participant in the room.

    Besides :class:`Participant`'s: ``track_published(publication)``,
    ``track_unpublished(publication)``, ``track_subscribed(track, publication)``,
    ``track_unsubscribed(track, publication)``, ``track_subscription_failed(error,
    publication)``, ``track_enabled(publication)``, ``track_disabled(publication)``,
    ``track_switched_off(track, publication)``, ``track_switched_on(track, publication)``,
    ``track_publish_priority_changed(priority, publication)``, ``track_message(data, track)``.
    Each is also fired on the room with this participant as the last argument.
    """

    EVENTS = Participant.EVENTS | {
        "track_disabled",
        "track_enabled",
        "track_message",
        "track_publish_priority_changed",
        "track_published",
        "track_subscribed",
        "track_subscription_failed",
        "track_switched_off",
        "track_switched_on",
        "track_unpublished",
        "track_unsubscribed",
    }
    # Participant events that the room does not repeat (it has its own participant_* events).
    _NOT_ON_ROOM: ClassVar[frozenset[str]] = frozenset(
        {"disconnected", "reconnecting", "reconnected", "network_quality_level_changed"}
    )

    tracks: dict[str, RemoteTrackPublication]  # type: ignore[assignment]

    def __init__(self, sid: str, identity: str, room: Room | None = None) -> None:
        super().__init__(sid, identity)
        self._room = room

    def _emit(self, event: str, *args: Any) -> None:
        self.emit(event, *args)
        if self._room is not None and event not in self._NOT_ON_ROOM:
            self._room.emit(event, *args, self)

    def _publication(self, track_sid: str) -> RemoteTrackPublication:
        try:
            return self.tracks[track_sid]
        except KeyError:
            raise KeyError(f"{self!r} publishes no track {track_sid!r}") from None

    def _add_publication(
        self,
        track_sid: str,
        name: str,
        kind: TrackKind | str,
        enabled: bool = True,
        priority: TrackPriority | str = TrackPriority.STANDARD,
    ) -> RemoteTrackPublication:
        if track_sid in self.tracks:
            return self.tracks[track_sid]
        track_kind = TrackKind.coerce(kind, "kind")
        cls = _REMOTE_PUBLICATIONS[track_kind]
        publication = cls(
            track_sid, name, track_kind, enabled, TrackPriority.coerce(priority, "priority")
        )
        self.tracks[track_sid] = publication
        self._emit("track_published", publication)
        return publication

    def _remove_publication(self, track_sid: str) -> None:
        publication = self.tracks.get(track_sid)
        if publication is None:
            return
        if publication.track is not None:
            self._unsubscribe(track_sid)
        del self.tracks[track_sid]
        self._emit("track_unpublished", publication)

    def _subscribe(
        self, track_sid: str, media_stream_track: MediaStreamTrack | None = None,
        channel: RTCDataChannel | None = None,
    ) -> RemoteTrack:
        publication = self._publication(track_sid)
        if publication.track is not None:
            return publication.track
        track = _REMOTE_TRACKS[publication.kind](track_sid, publication.track_name, self)
        track.is_enabled = publication.is_track_enabled
        track.is_switched_off = publication.is_track_switched_off
        if isinstance(track, RemoteMediaTrack):
            if media_stream_track is None:
                raise ValueError(f"subscribing to {publication!r} needs its MediaStreamTrack")
            track._attach(media_stream_track)
        elif isinstance(track, RemoteDataTrack) and channel is not None:
            track._describe(channel)
        publication.track = track
        publication.emit("subscribed", track)
        self._emit("track_subscribed", track, publication)
        return track

    def _subscription_failed(self, track_sid: str, error: TwilioError) -> None:
        publication = self._publication(track_sid)
        publication.emit("subscription_failed", error)
        self._emit("track_subscription_failed", error, publication)

    def _unsubscribe(self, track_sid: str) -> None:
        publication = self.tracks.get(track_sid)
        if publication is None or publication.track is None:
            return
        track, publication.track = publication.track, None
        track._end()
        publication.emit("unsubscribed", track)
        self._emit("track_unsubscribed", track, publication)

    def _set_track_enabled(self, track_sid: str, enabled: bool) -> None:
        publication = self._publication(track_sid)
        if publication.is_track_enabled == enabled:
            return
        publication.is_track_enabled = enabled
        if publication.track is not None:
            publication.track._set_enabled(enabled)
        publication.emit("track_enabled" if enabled else "track_disabled")
        self._emit("track_enabled" if enabled else "track_disabled", publication)

    def _set_publish_priority(self, track_sid: str, priority: TrackPriority | str) -> None:
        publication = self._publication(track_sid)
        value = TrackPriority.coerce(priority, "priority")
        if publication.publish_priority == value:
            return
        publication.publish_priority = value
        publication.emit("publish_priority_changed", value)
        self._emit("track_publish_priority_changed", value, publication)

    def _set_track_switched_off(self, track_sid: str, off: bool) -> None:
        publication = self._publication(track_sid)
        if publication.is_track_switched_off == off:
            return
        publication.is_track_switched_off = off
        track = publication.track
        if track is not None:
            track._set_switched_off(off)
        event = "track_switched_off" if off else "track_switched_on"
        publication.emit(event, track)
        self._emit(event, track, publication)

    def _track_event(self, event: str, track: RemoteTrack, *args: Any) -> None:
        """An event a subscribed track raised itself (started, dimensions, message)."""
        if event == "track_message":
            self._emit(event, *args, track)
        else:
            self._emit(event, track)

    def _subscribe_priority_changed(
        self, track: RemoteTrack, priority: TrackPriority | None
    ) -> None:
        signaling = self._room._signaling if self._room is not None else None
        if signaling is not None:
            signaling.subscribe_priority_changed(track.sid, priority)


class LocalParticipant(Participant):
    """This process in the room: publishes and unpublishes tracks.

    Besides :class:`Participant`'s events: ``track_published(publication)``,
    ``track_publication_failed(error, track)``, ``track_enabled(track)``,
    ``track_disabled(track)``, ``track_stopped(track)``, and ``track_warning`` /
    ``track_warnings_cleared`` (never raised: no media-quality monitor).
    """

    EVENTS = Participant.EVENTS | {
        "track_disabled",
        "track_enabled",
        "track_publication_failed",
        "track_published",
        "track_stopped",
        "track_warning",
        "track_warnings_cleared",
    }

    tracks: dict[str, LocalTrackPublication]  # type: ignore[assignment]

    def __init__(self, sid: str, identity: str, signaling: RoomSignaling | None = None) -> None:
        super().__init__(sid, identity)
        self._signaling = signaling
        self.signaling_region: str | None = None
        self._publishing: set[LocalTrack] = set()

    def _set_signaling(self, signaling: RoomSignaling | None) -> None:
        self._signaling = signaling

    def _require_signaling(self) -> RoomSignaling:
        if self._signaling is None or self.state == ParticipantState.DISCONNECTED:
            raise RuntimeError(f"{self!r} is not connected to a room")
        return self._signaling

    def _publication_of(self, track: LocalTrack | MediaStreamTrack) -> LocalTrackPublication | None:
        """The publication of ``track``, given as a LocalTrack or as the MediaStreamTrack in it."""
        for publication in self.tracks.values():
            if track is publication.track or track is getattr(
                publication.track, "media_stream_track", None
            ):
                return publication
        return None

    async def publish_track(
        self,
        track: LocalTrack | MediaStreamTrack,
        options: LocalTrackPublishOptions | dict[str, Any] | None = None,
        *,
        priority: TrackPriority | str | None = None,
    ) -> LocalTrackPublication:
        """Publish ``track`` (a LocalTrack, or an aiortc MediaStreamTrack to wrap in one).

        ``priority`` (or ``options.priority``) defaults to ``standard``. Publishing a track
        that is already published returns its publication. Raises the server's TwilioError
        when it refuses the track.
        """
        opts = LocalTrackPublishOptions.from_dict(options or {}, "options")
        if priority is not None:
            opts = LocalTrackPublishOptions(priority=priority, name=opts.name)  # type: ignore[arg-type]
        local = self._as_local_track(track, opts.name)
        existing = self._publication_of(local)
        if existing is not None:
            return existing
        if local.is_stopped:
            raise TrackInvalidError(f"Track is invalid: {local!r} is stopped")
        signaling = self._require_signaling()
        if local in self._publishing:
            raise RuntimeError(f"{local!r} is already being published")
        self._publishing.add(local)
        try:
            sid = await signaling.publish_track(local, opts.priority)
        except TwilioError as error:
            self._publication_failed(local, error)
            raise
        finally:
            self._publishing.discard(local)
        return self._published(local, sid, opts.priority)

    async def publish_tracks(
        self, tracks: Iterable[LocalTrack | MediaStreamTrack]
    ) -> list[LocalTrackPublication]:
        """Publish several tracks, one after the other."""
        return [await self.publish_track(track) for track in tracks]

    async def unpublish_track(
        self, track: LocalTrack | MediaStreamTrack
    ) -> LocalTrackPublication | None:
        """Stop publishing ``track``; returns its former publication (None if unpublished)."""
        publication = self._publication_of(track)
        if publication is None:
            return None
        signaling = self._require_signaling()
        del self.tracks[publication.track_sid]
        publication.track._remove_watcher(self._local_track_changed)
        await signaling.unpublish_track(publication.track)
        return publication

    async def unpublish_tracks(
        self, tracks: Iterable[LocalTrack | MediaStreamTrack]
    ) -> list[LocalTrackPublication]:
        """Unpublish several tracks; returns the publications that existed."""
        result = []
        for track in tracks:
            publication = await self.unpublish_track(track)
            if publication is not None:
                result.append(publication)
        return result

    def set_parameters(
        self, encoding_parameters: EncodingParameters | dict[str, Any] | None = None
    ) -> LocalParticipant:
        """Change outgoing bitrate caps: a cap left out stays, None or 0 removes it."""
        params = EncodingParameters.from_dict(encoding_parameters or {}, "encoding_parameters")
        self._require_signaling().set_encoding_parameters(params)
        return self

    def set_network_quality_configuration(
        self, configuration: NetworkQualityConfiguration | dict[str, Any]
    ) -> LocalParticipant:
        """Change how much network quality information is reported."""
        config = NetworkQualityConfiguration.from_dict(configuration, "configuration")
        self._require_signaling().set_network_quality_configuration(config)
        return self

    def _as_local_track(self, track: LocalTrack | MediaStreamTrack, name: str | None) -> LocalTrack:
        if isinstance(track, LocalTrack):
            return track
        if isinstance(track, MediaStreamTrack):
            publication = self._publication_of(track)
            if publication is not None:
                return publication.track
            if track.kind == "audio":
                return LocalAudioTrack(track, name)
            if track.kind == "video":
                return LocalVideoTrack(track, name)
        raise TypeError(f"publish_track: expected a LocalTrack or MediaStreamTrack, got {track!r}")

    def _published(
        self, track: LocalTrack, sid: str, priority: TrackPriority | str = TrackPriority.STANDARD
    ) -> LocalTrackPublication:
        cls = _LOCAL_PUBLICATIONS[track.kind]
        publication = cls(sid, track, TrackPriority.coerce(priority, "priority"), self)
        self.tracks[sid] = publication
        track._add_watcher(self._local_track_changed)
        self._emit("track_published", publication)
        if isinstance(track, (LocalAudioTrack, LocalVideoTrack)):
            if track.is_started:
                self._emit("track_started", track)
            else:
                track.once("started", lambda t: self._emit("track_started", t))
        return publication

    def _publication_failed(self, track: LocalTrack, error: TwilioError) -> None:
        self._emit("track_publication_failed", error, track)

    def _publication_refused(self, track: LocalTrack, error: TwilioError) -> None:
        """The server failed a track after publishing it (its media was refused): the
        publication goes, and ``track_publication_failed`` says why."""
        publication = self._publication_of(track)
        if publication is not None:
            del self.tracks[publication.track_sid]
            track._remove_watcher(self._local_track_changed)
        self._publication_failed(track, error)

    def _publish_priority_changed(self, publication: LocalTrackPublication) -> None:
        if self._signaling is not None:
            self._signaling.publish_priority_changed(publication.track_sid, publication.priority)

    def _local_track_changed(self, track: LocalTrack) -> None:
        if track.is_stopped:
            self._emit("track_stopped", track)
        else:
            self._emit("track_enabled" if track.is_enabled else "track_disabled", track)
        if self._signaling is not None:
            self._signaling.local_track_changed(track)
