"""The Room: the local participant's view of one video room.

``room.sid``, ``room.name``, ``room.state`` (a RoomState), ``room.local_participant``,
``room.participants`` (RemoteParticipants by sid), ``room.dominant_speaker``,
``room.is_recording``, ``room.media_region``. ``await room.disconnect()`` leaves;
``async with room:`` leaves on exit; ``room.set_bandwidth_profile(...)`` changes the bandwidth
profile while connected.

Events (arguments as in the reference, snake_case names):
``participant_connected(participant)``, ``participant_disconnected(participant)``,
``participant_reconnecting(participant)``, ``participant_reconnected(participant)``,
``dominant_speaker_changed(participant | None)``, ``reconnecting(error)``, ``reconnected()``,
``disconnected(room, error | None)``, ``recording_started()``, ``recording_stopped()``, and
every track event of a RemoteParticipant with the participant appended:
``track_published(publication, participant)``, ``track_subscribed(track, publication,
participant)``, ``track_message(data, track, participant)``, ``track_switched_off(track,
publication, participant)``, ... ``track_warning`` / ``track_warnings_cleared`` and
``transcription`` are accepted names that rtcroom never raises.

Interface for the network layer (package-internal): the signaling client builds
``Room(sid, name, LocalParticipant(sid, identity), options=..., signaling=...)`` once the server
has answered ``connected``, then reports what the server says through:

- ``_add_participant(sid, identity, announce=True)`` -> RemoteParticipant
  (``participant_connected`` unless ``announce`` is False, for those already in the room);
  then the participant's own ``_add_publication`` / ``_subscribe`` / ... methods.
- ``_remove_participant(sid)``: unsubscribes and unpublishes its tracks,
  ``participant_disconnected``.
- ``_set_participant_state(sid, state)``: ``participant_reconnecting`` /
  ``participant_reconnected``.
- ``_set_dominant_speaker(sid | None)``, ``_set_recording(bool)``,
  ``_switch_tracks(off=[track_sid...], on=[track_sid...])``,
  ``_set_network_quality(participant_sid, level, stats)`` (local or remote participant).
- ``_set_reconnecting(error)``, ``_set_reconnected()``, and ``_disconnected(error=None)`` when
  the room ends for any reason other than ``disconnect()``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from types import TracebackType
from typing import Any, ClassVar

from rtcroom.client.localtrack import LocalTrack
from rtcroom.client.participant import LocalParticipant, RemoteParticipant
from rtcroom.client.roomsignaling import RoomSignaling
from rtcroom.client.stats import StatsReport
from rtcroom.constants import ParticipantState, RoomState
from rtcroom.errors import TwilioError
from rtcroom.events import EventEmitter
from rtcroom.log import apply_log_levels
from rtcroom.options import BandwidthProfileOptions, ConnectOptions
from rtcroom.signaling.networkquality import NetworkQualityStats

__all__ = ["Room"]

logger = logging.getLogger("rtcroom")


class Room(EventEmitter):
    """A connected room (made by ``rtcroom.connect()``)."""

    EVENTS: ClassVar[frozenset[str]] = frozenset(
        {
            "disconnected",
            "dominant_speaker_changed",
            "participant_connected",
            "participant_disconnected",
            "participant_reconnected",
            "participant_reconnecting",
            "reconnected",
            "reconnecting",
            "recording_started",
            "recording_stopped",
            "track_dimensions_changed",
            "track_disabled",
            "track_enabled",
            "track_message",
            "track_publish_priority_changed",
            "track_published",
            "track_started",
            "track_subscribed",
            "track_subscription_failed",
            "track_switched_off",
            "track_switched_on",
            "track_unpublished",
            "track_unsubscribed",
            "track_warning",
            "track_warnings_cleared",
            "transcription",
        }
    )

    def __init__(
        self,
        sid: str,
        name: str,
        local_participant: LocalParticipant,
        *,
        options: ConnectOptions | None = None,
        signaling: RoomSignaling | None = None,
        media_region: str | None = None,
        owned_tracks: Iterable[LocalTrack] = (),
    ) -> None:
        super().__init__()
        self.sid = sid
        self.name = name
        self.local_participant = local_participant
        self.options = options if options is not None else ConnectOptions()
        self.media_region = media_region
        self.state = RoomState.CONNECTED
        self.participants: dict[str, RemoteParticipant] = {}
        self.dominant_speaker: RemoteParticipant | None = None
        self.is_recording = False
        self._signaling = signaling
        # Tracks connect() created from the audio/video options: they end with the room.
        self._owned_tracks = list(owned_tracks)
        local_participant._set_signaling(signaling)
        if self.options.log_level is not None:
            apply_log_levels(self.options.log_level)

    def __repr__(self) -> str:
        return f"Room(sid={self.sid!r}, name={self.name!r}, state={self.state.value!r})"

    async def disconnect(self) -> Room:
        """Leave the room. Safe to call more than once."""
        if self.state == RoomState.DISCONNECTED:
            return self
        if self._signaling is not None:
            try:
                await self._signaling.disconnect()
            except Exception:
                logger.exception("%r: leaving cleanly failed", self)
        self._disconnected(None)
        return self

    def set_bandwidth_profile(
        self, bandwidth_profile: BandwidthProfileOptions | dict[str, Any]
    ) -> Room:
        """Beyond the reference: replace the bandwidth profile while connected (group rooms);
        the server's allocation follows at once. The room must have been connected with a
        ``bandwidth_profile``: that is what opens the channels on which the server says which
        tracks it switched off."""
        profile = BandwidthProfileOptions.from_dict(bandwidth_profile, "bandwidth_profile")
        if self.options.bandwidth_profile is None:
            raise RuntimeError(f"{self!r}: connect with a bandwidth_profile to change it later")
        if self._signaling is None or self.state == RoomState.DISCONNECTED:
            raise RuntimeError(f"{self!r} is not connected")
        self.options = replace(self.options, bandwidth_profile=profile)
        self._signaling.set_bandwidth_profile(profile)
        return self

    async def get_stats(self) -> list[StatsReport]:
        """One StatsReport per media connection (empty when there is no network)."""
        if self._signaling is None:
            return []
        return await self._signaling.get_stats()

    async def __aenter__(self) -> Room:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    # --- called by the network layer ------------------------------------------------------------

    def _participant(self, sid: str) -> RemoteParticipant:
        try:
            return self.participants[sid]
        except KeyError:
            raise KeyError(f"{self!r} has no participant {sid!r}") from None

    def _add_participant(self, sid: str, identity: str, announce: bool = True) -> RemoteParticipant:
        existing = self.participants.get(sid)
        if existing is not None:
            return existing
        participant = RemoteParticipant(sid, identity, self)
        self.participants[sid] = participant
        if announce:
            self.emit("participant_connected", participant)
        return participant

    def _remove_participant(self, sid: str) -> None:
        participant = self.participants.pop(sid, None)
        if participant is None:
            return
        for track_sid in list(participant.tracks):
            participant._remove_publication(track_sid)
        participant._set_state(ParticipantState.DISCONNECTED)
        if self.dominant_speaker is participant:
            self._set_dominant_speaker(None)
        self.emit("participant_disconnected", participant)

    def _set_participant_state(self, sid: str, state: ParticipantState | str) -> None:
        new = ParticipantState.coerce(state, "state")
        if new == ParticipantState.DISCONNECTED:
            self._remove_participant(sid)
            return
        participant = self._participant(sid)
        before = participant.state
        participant._set_state(new)
        if participant.state != before:
            if new == ParticipantState.RECONNECTING:
                self.emit("participant_reconnecting", participant)
            elif new == ParticipantState.CONNECTED:
                self.emit("participant_reconnected", participant)

    def _set_dominant_speaker(self, sid: str | None) -> None:
        speaker = self.participants.get(sid) if sid is not None else None
        if speaker is not self.dominant_speaker:
            self.dominant_speaker = speaker
            self.emit("dominant_speaker_changed", speaker)

    def _set_recording(self, is_recording: bool) -> None:
        if is_recording != self.is_recording:
            self.is_recording = is_recording
            self.emit("recording_started" if is_recording else "recording_stopped")

    def _switch_tracks(self, off: Iterable[str] = (), on: Iterable[str] = ()) -> None:
        for sids, switched_off in ((off, True), (on, False)):
            for track_sid in sids:
                for participant in self.participants.values():
                    if track_sid in participant.tracks:
                        participant._set_track_switched_off(track_sid, switched_off)
                        break

    def _set_network_quality(
        self, participant_sid: str, level: int, stats: NetworkQualityStats | None = None
    ) -> None:
        if participant_sid == self.local_participant.sid:
            self.local_participant._set_network_quality(level, stats)
        elif participant_sid in self.participants:
            self.participants[participant_sid]._set_network_quality(level, stats)

    def _set_reconnecting(self, error: TwilioError) -> None:
        if self.state == RoomState.CONNECTED:
            self.state = RoomState.RECONNECTING
            self.local_participant._set_state(ParticipantState.RECONNECTING)
            self.emit("reconnecting", error)

    def _set_reconnected(self) -> None:
        if self.state == RoomState.RECONNECTING:
            self.state = RoomState.CONNECTED
            self.local_participant._set_state(ParticipantState.CONNECTED)
            self.emit("reconnected")

    def _disconnected(self, error: TwilioError | None = None) -> None:
        """The room has ended for this participant (left, kicked, failed or completed)."""
        if self.state == RoomState.DISCONNECTED:
            return
        self.state = RoomState.DISCONNECTED
        for participant in self.participants.values():
            for track_sid in list(participant.tracks):
                participant._unsubscribe(track_sid)
            participant._set_state(ParticipantState.DISCONNECTED)
        self.local_participant._set_state(ParticipantState.DISCONNECTED)
        for track in self._owned_tracks:
            track.stop()
        if error is not None:
            logger.info("%r disconnected: %s", self, error)
        self.emit("disconnected", self, error)
