"""One room's lifecycle as a state machine with no I/O.

Every operation takes plain values (identities, parsed signaling messages, ``now``) and returns
the messages each participant must be sent, as :class:`Outgoing` pairs; the server delivers
them. That keeps the rules (limits, duplicate identities, revisions, who is told what) testable
with plain calls and independent of sockets, timers and where the state is stored.

Peer-to-peer media uses one peer connection per direction: for each ordered pair (publisher,
subscriber) the server asks the publisher to offer (``create-offer`` with a fresh id) and relays
the descriptions and ICE candidates between the two ends. Only the publisher ever offers on a
connection, so renegotiating after a publish can never collide with the other end's offer.
twilio-video.js sends every track on every connection it has (and offers its own tracks on a
connection it was offered), so two of those share one connection per pair, offered by the
newcomer; the SDK resolves colliding offers itself by rolling back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from rtcroom.errors import (
    ParticipantDuplicateIdentityError,
    ParticipantNotFoundError,
    RoomCompletedError,
    RoomMaxParticipantsExceededError,
    RoomSubscriptionOperationNotSupportedError,
    TwilioError,
)
from rtcroom.server.rooms.sids import PARTICIPANT, ROOM, SESSION, TRACK, new_sid
from rtcroom.server.rooms.subscriberules import EXCLUDE_ALL, INCLUDE_ALL, SubscribeRule, subscribed
from rtcroom.signaling.messages import (
    ClientUpdate,
    Disconnected,
    Error,
    ParticipantInfo,
    ParticipantState,
    PeerConnectionState,
    Published,
    PublishedTrack,
    RemoteParticipantState,
    RemoteTrackState,
    RoomState,
    SessionDescription,
    Subscribed,
    SubscribedTrack,
    TwilioErrorInfo,
)

__all__ = ["DEPARTED_KEPT", "ROOM_TYPES", "Message", "Outgoing", "Participant", "Room", "Track"]

ROOM_TYPES = ("peer-to-peer", "group", "group-small", "go")
PEER_TO_PEER_TYPES = ("peer-to-peer", "go")

DEPARTED_KEPT = 100
"""Departed participants a room keeps on record (REST lists them as ``disconnected``), the most
recent ones: Twilio keeps them for the room's life, which here may be unbounded, and with them
every join/leave cycle would grow the server."""

Message = RoomState | Disconnected | Error


@dataclass
class Outgoing:
    """A message for one participant."""

    participant_sid: str
    message: Message


@dataclass
class Track:
    sid: str
    id: str
    kind: str
    name: str
    enabled: bool = True
    priority: str = "standard"
    published_at: float = 0.0

    def remote_state(self) -> RemoteTrackState:
        return RemoteTrackState(sid=self.sid, kind=self.kind, name=self.name,
                                enabled=self.enabled, priority=self.priority)


@dataclass
class Participant:
    sid: str
    identity: str
    session: str
    connected_at: float
    state: str = "connected"
    # Revision of this participant's state as the others see it.
    revision: int = 1
    # The last ParticipantState.revision the client sent that was applied.
    client_revision: int = 0
    tracks: dict[str, Track] = field(default_factory=dict)
    # Revisions of the `published` / `subscribed` views sent to this participant.
    published_revision: int = 0
    subscribed_revision: int = 0
    disconnected_at: float | None = None
    # Set while the signaling connection is gone and the session may still be resumed.
    suspended_at: float | None = None
    # What it receives (see subscriberules): the client's ``connect`` sets them (twilio-video.js
    # sends ``include all``, or ``exclude all`` with automatic subscription off), REST changes
    # them in group rooms.
    subscribe_rules: list[SubscribeRule] = field(default_factory=lambda: [INCLUDE_ALL])
    subscribe_rules_updated_at: float | None = None
    # Tracks its rules select that it cannot receive (track sid -> the error), reported in
    # ``subscribed`` instead of subscribed; new rules try them again.
    failed_subscriptions: dict[str, TwilioError] = field(default_factory=dict)
    # Tracks it publishes that the SFU refused (track id -> the error), reported in
    # ``published`` as failed and not published to the others while its state lists them.
    failed_publications: dict[str, TwilioError] = field(default_factory=dict)
    # True for twilio-video.js, which sends all its tracks on every connection it has.
    sends_on_every_connection: bool = False

    @property
    def active(self) -> bool:
        return self.state != "disconnected"

    @property
    def subscribe_all(self) -> bool:
        """False when it subscribes to nothing at all (a peer-to-peer room has no finer
        choice: a participant receives every track or none)."""
        return self.subscribe_rules[-1:] != [EXCLUDE_ALL]

    def remote_state(self) -> RemoteParticipantState:
        return RemoteParticipantState(
            sid=self.sid, identity=self.identity, state=self.state, revision=self.revision,
            tracks=[t.remote_state() for t in self.tracks.values()],
        )


@dataclass
class Link:
    """A one-way peer connection in a peer-to-peer room: ``publisher`` offers, ``subscriber``
    answers."""

    id: str
    publisher: str
    subscriber: str


@dataclass
class Room:
    unique_name: str
    type: str
    created_at: float
    max_participants: int
    empty_timeout: float
    sid: str = field(default_factory=lambda: new_sid(ROOM))
    status: str = "in-progress"
    ended_at: float | None = None
    # When the room last became empty (None while someone is in it).
    empty_since: float | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    # The video codecs publishers may send (Twilio's VideoCodecs; None: any, as in
    # peer-to-peer rooms, where Twilio has no such setting).
    video_codecs: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.type not in ROOM_TYPES:
            raise ValueError(f"room type {self.type!r} is not one of {', '.join(ROOM_TYPES)}")
        self.empty_since = self.created_at

    # --- queries -----------------------------------------------------------------------------

    @property
    def peer_to_peer(self) -> bool:
        return self.type in PEER_TO_PEER_TYPES

    @property
    def in_progress(self) -> bool:
        return self.status == "in-progress"

    def active_participants(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.active]

    def participant(self, sid: str) -> Participant:
        p = self.participants.get(sid)
        if p is None or not p.active:
            raise ParticipantNotFoundError(f"Participant {sid} is not in room {self.sid}")
        return p

    def by_identity(self, identity: str) -> Participant | None:
        for p in self.participants.values():
            if p.active and p.identity == identity:
                return p
        return None

    def by_session(self, session: str) -> Participant | None:
        for p in self.participants.values():
            if p.active and p.session == session:
                return p
        return None

    # --- the views sent to one participant ---------------------------------------------------

    def _published(self, p: Participant) -> Published:
        p.published_revision += 1
        return Published(
            revision=p.published_revision,
            tracks=[PublishedTrack(id=t.id, sid=t.sid) for t in p.tracks.values()]
            + [PublishedTrack(id=track_id, state="failed",
                              error=TwilioErrorInfo(code=e.code, message=e.message))
               for track_id, e in p.failed_publications.items()],
        )

    def subscriptions(self, p: Participant) -> list[Track]:
        """The tracks ``p`` receives: the other participants' that its rules select, but for
        those it failed to receive."""
        chosen = self._chosen(p)
        return [t for other in self.active_participants() if other.sid != p.sid
                for t in other.tracks.values()
                if t.sid in chosen and t.sid not in p.failed_subscriptions]

    def _chosen(self, p: Participant) -> set[str]:
        """The sids of the other participants' tracks that ``p``'s rules select."""
        tracks = [(other, t) for other in self.active_participants() if other.sid != p.sid
                  for t in other.tracks.values()]
        return subscribed(p.subscribe_rules, ((o.sid, o.identity, t.sid, t.name, t.kind,
                                              t.priority) for o, t in tracks))

    def _subscribed(self, p: Participant) -> Subscribed:
        p.subscribed_revision += 1
        tracks = [SubscribedTrack(sid=t.sid, id=t.id) for t in self.subscriptions(p)]
        chosen = self._chosen(p)
        tracks += [SubscribedTrack(sid=sid, error=TwilioErrorInfo(code=e.code, message=e.message))
                   for sid, e in p.failed_subscriptions.items() if sid in chosen]
        return Subscribed(revision=p.subscribed_revision, tracks=tracks)

    def _others(self, p: Participant) -> list[RemoteParticipantState]:
        return [o.remote_state() for o in self.active_participants() if o.sid != p.sid]

    def full_state(self, p: Participant, kind: str) -> RoomState:
        """The whole room as ``p`` sees it: the body of ``connected`` or ``synced``."""
        return RoomState(
            type=kind, session=p.session, sid=self.sid, name=self.unique_name,
            participant=ParticipantInfo(sid=p.sid, identity=p.identity),
            participants=self._others(p), published=self._published(p),
            subscribed=self._subscribed(p),
            peer_connections=[
                PeerConnectionState(id=link.id, description=SessionDescription(
                    type="create-offer", revision=1))
                for link in self.links.values() if link.publisher == p.sid
            ] + [
                # twilio-video.js closes every connection a `synced` leaves out, so the ones p
                # receives on are named too (with nothing to change on them).
                PeerConnectionState(id=link.id)
                for link in self.links.values()
                if kind == "synced" and link.subscriber == p.sid
            ],
        )

    def _update(self, p: Participant, extra: list[RemoteParticipantState] | None = None,
                peer_connections: list[PeerConnectionState] | None = None) -> Outgoing:
        return Outgoing(p.sid, RoomState(
            type="update", participants=self._others(p) + (extra or []),
            published=self._published(p), subscribed=self._subscribed(p),
            peer_connections=peer_connections,
        ))

    # --- operations --------------------------------------------------------------------------

    def join(self, identity: str, state: ParticipantState, now: float,
             subscribe_rules: list[SubscribeRule] | None = None,
             offered: list[PeerConnectionState] | None = None,
             sends_on_every_connection: bool = False) -> tuple[Participant, list[Outgoing]]:
        """Add ``identity``; the newcomer gets ``connected`` (first in the list), the others
        an ``update``. A participant with the same identity is disconnected with 53205.

        ``offered`` are the connections the client opened with ``connect`` (twilio-video.js
        always offers one). A peer-to-peer room pairs participants on links of its own, so
        ``connected`` closes those: left open, they would wait for an answer forever."""
        if not self.in_progress:
            raise RoomCompletedError(f"Room {self.unique_name} is completed")
        out: list[Outgoing] = []
        previous = self.by_identity(identity)
        if previous is not None:
            out += self._remove(previous, now, error_message(ParticipantDuplicateIdentityError()))
        if len(self.active_participants()) >= self.max_participants:
            raise RoomMaxParticipantsExceededError(
                f"Room {self.unique_name} is full ({self.max_participants} participants)")
        p = Participant(sid=new_sid(PARTICIPANT), identity=identity, session=new_sid(SESSION),
                        connected_at=now, subscribe_rules=subscribe_rules or [INCLUDE_ALL],
                        sends_on_every_connection=sends_on_every_connection)
        self._apply_participant_state(p, state, now)
        others = [o for o in self.active_participants()]
        self.participants[p.sid] = p
        self.empty_since = None
        new_links: dict[str, list[PeerConnectionState]] = {}
        if self.peer_to_peer:
            for other in others:
                pairs: tuple[tuple[Participant, Participant], ...] = ((other, p), (p, other))
                if all(x.sends_on_every_connection and x.subscribe_all for x in (p, other)):
                    pairs = ((p, other),)
                for publisher, subscriber in pairs:
                    if not subscriber.subscribe_all:
                        continue
                    link = Link(id=str(uuid.uuid4()), publisher=publisher.sid,
                                subscriber=subscriber.sid)
                    self.links[link.id] = link
                    new_links.setdefault(publisher.sid, []).append(PeerConnectionState(
                        id=link.id, description=SessionDescription(type="create-offer",
                                                                   revision=1)))
        connected = self.full_state(p, "connected")
        if self.peer_to_peer and offered:
            assert connected.peer_connections is not None
            connected.peer_connections += [
                PeerConnectionState(id=pc.id, description=SessionDescription(
                    type="close", revision=(pc.description.revision if pc.description else 0)
                    + 1))
                for pc in offered if pc.id not in self.links]
        out.insert(0, Outgoing(p.sid, connected))
        out += [self._update(o, peer_connections=new_links.get(o.sid)) for o in others]
        return p, out

    def update(self, sid: str, update: ClientUpdate, now: float) -> list[Outgoing]:
        """Apply a client ``update``: its new participant state and its SDP / ICE to relay."""
        p = self.participant(sid)
        out: list[Outgoing] = []
        newer = update.participant is not None and update.participant.revision > p.client_revision
        if newer and self._apply_participant_state(p, update.participant, now):  # type: ignore[arg-type]
            p.revision += 1
            out += [self._update(o) for o in self.active_participants()]
        for pc in update.peer_connections or []:
            out += self._relay(p, pc)
        return out

    def _relay(self, sender: Participant, pc: PeerConnectionState) -> list[Outgoing]:
        link = self.links.get(pc.id)
        if link is None or sender.sid not in (link.publisher, link.subscriber):
            # Not a connection this room set up (a group room's, or a stale one): the SFU, or
            # nobody, handles it.
            return []
        to = link.subscriber if sender.sid == link.publisher else link.publisher
        return [Outgoing(to, RoomState(type="update", peer_connections=[pc]))]

    def _apply_participant_state(self, p: Participant, state: ParticipantState,
                                 now: float) -> bool:
        """Bring ``p.tracks`` to ``state``; True when others must be told."""
        p.client_revision = state.revision
        wanted = {t.id: t for t in state.tracks if t.id not in p.failed_publications}
        listed = {t.id for t in state.tracks}
        p.failed_publications = {track_id: e for track_id, e in p.failed_publications.items()
                                 if track_id in listed}
        changed = False
        for track_id in list(p.tracks):
            if track_id not in wanted:
                del p.tracks[track_id]
                changed = True
        for t in wanted.values():
            have = p.tracks.get(t.id)
            if have is None:
                p.tracks[t.id] = Track(sid=new_sid(TRACK), id=t.id, kind=t.kind, name=t.name,
                                       enabled=t.enabled, priority=t.priority, published_at=now)
                changed = True
            elif (have.enabled, have.priority) != (t.enabled, t.priority):
                have.enabled, have.priority = t.enabled, t.priority
                changed = True
        return changed

    def set_subscribe_rules(self, sid: str, rules: list[SubscribeRule],
                            now: float) -> list[Outgoing]:
        """New rules for what ``sid`` receives (a group room's); it gets the new ``subscribed``
        view, and the SFU follows."""
        p = self.participant(sid)
        if self.peer_to_peer:
            raise RoomSubscriptionOperationNotSupportedError(
                f"Subscribe Rules are not supported in {self.type} rooms, only in group rooms")
        p.subscribe_rules = list(rules)
        p.subscribe_rules_updated_at = now
        p.failed_subscriptions.clear()
        return [self._update(p)]

    def subscription_failed(self, sid: str, track_sid: str,
                            error: TwilioError) -> list[Outgoing]:
        """``sid`` cannot receive ``track_sid`` (the SFU found why): it is told in
        ``subscribed`` and no longer offered the track."""
        p = self.participant(sid)
        p.failed_subscriptions[track_sid] = error
        return [self._update(p)]

    def publication_failed(self, sid: str, track_sid: str,
                           error: TwilioError) -> list[Outgoing]:
        """The SFU refused ``sid``'s track ``track_sid``: the track is unpublished for the
        others, and its publisher finds it failed in ``published``."""
        p = self.participant(sid)
        track = next((t for t in p.tracks.values() if t.sid == track_sid), None)
        if track is None:
            return []
        del p.tracks[track.id]
        p.failed_publications[track.id] = error
        p.revision += 1
        return [self._update(o) for o in self.active_participants()]

    def leave(self, sid: str, now: float) -> list[Outgoing]:
        """``sid`` left on its own (a ``disconnect``, or its session expired)."""
        return self._remove(self.participant(sid), now, None)

    def kick(self, sid: str, now: float) -> list[Outgoing]:
        """Remove ``sid`` from outside (REST); it is told ``disconnected``."""
        return self._remove(self.participant(sid), now, Disconnected())

    def _remove(self, p: Participant, now: float, tell: Message | None) -> list[Outgoing]:
        out: list[Outgoing] = []
        if tell is not None:
            out.append(Outgoing(p.sid, tell))
        p.state = "disconnected"
        p.revision += 1
        p.disconnected_at = now
        p.suspended_at = None
        closed: dict[str, list[PeerConnectionState]] = {}
        for link in [lk for lk in self.links.values() if p.sid in (lk.publisher, lk.subscriber)]:
            del self.links[link.id]
            other = link.subscriber if link.publisher == p.sid else link.publisher
            closed.setdefault(other, []).append(PeerConnectionState(
                id=link.id, description=SessionDescription(type="close", revision=0)))
        departed = sorted((q for q in self.participants.values() if not q.active),
                          key=lambda q: q.disconnected_at or 0.0)
        for q in departed[:-DEPARTED_KEPT]:
            del self.participants[q.sid]
        leaving = p.remote_state()
        out += [self._update(o, extra=[leaving], peer_connections=closed.get(o.sid))
                for o in self.active_participants()]
        if not self.active_participants():
            self.empty_since = now
        return out

    def suspend(self, sid: str, now: float) -> list[Outgoing]:
        """The signaling connection of ``sid`` dropped: keep it, marked ``reconnecting``."""
        p = self.participant(sid)
        if p.state == "reconnecting":
            return []
        p.state = "reconnecting"
        p.suspended_at = now
        p.revision += 1
        return [self._update(o) for o in self.active_participants() if o.sid != sid]

    def resume(self, sid: str, state: ParticipantState, now: float) -> list[Outgoing]:
        """``sid`` came back with ``sync``: it gets ``synced``, the others an ``update``."""
        p = self.participant(sid)
        p.state = "connected"
        p.suspended_at = None
        p.revision += 1
        if state.revision > p.client_revision:
            self._apply_participant_state(p, state, now)
        # `synced` repeats the create-offers of p's links: its peer connections may have
        # failed with the signaling connection, and an offer on a live one is harmless.
        out = [Outgoing(sid, self.full_state(p, "synced"))]
        return out + [self._update(o) for o in self.active_participants() if o.sid != sid]

    def complete(self, now: float) -> list[Outgoing]:
        """End the room: everyone is told ``disconnected`` with status ``completed``."""
        if not self.in_progress:
            return []
        out = [Outgoing(p.sid, Disconnected(status="completed"))
               for p in self.active_participants()]
        for p in self.active_participants():
            p.state = "disconnected"
            p.revision += 1
            p.disconnected_at = now
        self.links.clear()
        self.status = "completed"
        self.ended_at = now
        return out


def error_message(error: TwilioError) -> Error:
    """The ``error`` message that carries ``error`` to a client."""
    return Error(code=error.code, message=error.message)
