"""The room service: ties signaling connections, the room state machine, the store and timers.

Room rules live in :mod:`rtcroom.server.rooms`; this layer authenticates, finds or creates the
room, applies one operation under a lock, saves, delivers what the room says each participant
must be told, and runs the two clocks a room needs (empty-room completion, session grace).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from aiohttp import web

from rtcroom.accesstoken import verify_token
from rtcroom.errors import (
    AccessTokenGrantsInvalidError,
    ParticipantIdentityCharsInvalidError,
    ParticipantIdentityTooLongError,
    ParticipantNotFoundError,
    RoomCreateFailedError,
    RoomInvalidParametersError,
    RoomMaxParticipantsOutOfRangeError,
    RoomNameCharsInvalidError,
    RoomNameInvalidError,
    RoomNameTooLongError,
    RoomNotFoundError,
    RoomRoomExistsError,
    RoomTypeInvalidError,
    SignalingConnectionDisconnectedError,
    SignalingConnectionTimeoutError,
    TwilioError,
)
from rtcroom.server.config import ServerConfig
from rtcroom.server.grouproom import GroupMedia
from rtcroom.server.rooms import ROOM_TYPES, Outgoing, Participant, Room
from rtcroom.server.rooms.room import PEER_TO_PEER_TYPES, error_message
from rtcroom.server.rooms.sids import ROOM, new_sid
from rtcroom.server.rooms.subscriberules import (
    INCLUDE_ALL,
    SubscribeRule,
    parse_subscribe_rules,
)
from rtcroom.server.store import MemoryRoomStore, RoomStore
from rtcroom.server.videocodecs import forwardable_video_codecs
from rtcroom.signaling.messages import (
    ClientUpdate,
    Connect,
    Disconnected,
    Error,
    IceServer,
    RoomState,
    Sync,
)

__all__ = ["MAX_IDENTITY_LENGTH", "MAX_NAME_LENGTH", "SERVICE", "Delivery", "RoomService"]

log = logging.getLogger(__name__)

# Twilio's limits on room names and identities.
MAX_NAME_LENGTH = 128
MAX_IDENTITY_LENGTH = 256
# Room names become REST path segments: no slashes or control characters.
_BAD_NAME_CHARS = re.compile(r"[/\\\x00-\x1f\x7f]")
_BAD_IDENTITY_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class Delivery(Protocol):
    """One participant's signaling connection, as the service sees it."""

    def send_body(self, body: dict[str, Any]) -> None: ...

    def end(self) -> None:
        """Close after what was sent so far (the session is over)."""

    def fail(self, error: TwilioError) -> None:
        """End the session with ``error`` (sent first), as a signaling error would."""


def check_room_name(name: str) -> None:
    if not name:
        raise RoomNameInvalidError("Room name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise RoomNameTooLongError(f"Room name is longer than {MAX_NAME_LENGTH} characters")
    if _BAD_NAME_CHARS.search(name):
        raise RoomNameCharsInvalidError("Room name contains '/', '\\' or control characters")


def check_identity(identity: str) -> None:
    if len(identity) > MAX_IDENTITY_LENGTH:
        raise ParticipantIdentityTooLongError(
            f"Participant identity is longer than {MAX_IDENTITY_LENGTH} characters")
    if _BAD_IDENTITY_CHARS.search(identity):
        raise ParticipantIdentityCharsInvalidError(
            "Participant identity contains control characters")


def _subscribe_rules(message: Connect) -> list[SubscribeRule]:
    """The rules the client connects with (twilio-video.js: ``include all``, or ``exclude
    all`` with automatic subscription off); everything when it gives none."""
    rules = (message.subscribe or {}).get("rules")
    return [INCLUDE_ALL] if rules is None else parse_subscribe_rules(rules)


def _is_twilio_video(message: Connect) -> bool:
    return (message.publisher or {}).get("name") == "twilio-video.js"


class RoomService:
    def __init__(self, config: ServerConfig, store: RoomStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        creds = config.credentials
        if creds is None:
            raise ValueError("RoomService needs the account SID and API key SID/secret")
        self.config = config
        self.credentials = creds
        self.store = store or MemoryRoomStore()
        self.clock = clock
        self._lock = asyncio.Lock()
        self._deliveries: dict[str, Delivery] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.media = GroupMedia(self._deliveries.get, dscp=config.dscp, pacing=config.pacing)
        self.media.on_subscription_failed = self._subscription_failed
        self.media.on_publication_failed = self._publication_failed

    def ice_servers(self, identity: str) -> list[IceServer]:
        """The configured ICE servers, with TURN credentials minted for ``identity`` when a
        TURN REST secret is set (the scheme coturn's ``use-auth-secret`` checks)."""
        secret = self.config.turn_secret
        if secret is None:
            return list(self.config.ice_servers)
        expires = int(self.clock() + self.config.turn_ttl)
        username = f"{expires}:{identity}"
        credential = base64.b64encode(hmac.new(secret.encode(), username.encode(),
                                               hashlib.sha1).digest()).decode()
        return [replace(s, username=username, credential=credential)
                if s.username is None and any(u.startswith(("turn:", "turns:")) for u in s.urls)
                else s for s in self.config.ice_servers]

    def verify(self, token: str, room: str | None = None) -> dict[str, Any]:
        """The token's claims, or the 2010x error that refuses it."""
        return verify_token(token, {self.credentials.api_key_sid: self.credentials.api_key_secret},
                            room, account_sid=self.credentials.account_sid, leeway=5)

    # --- signaling operations ------------------------------------------------------------------

    async def connect(self, message: Connect, delivery: Delivery) -> Participant:
        """Authenticate and join; the caller's delivery receives ``connected``."""
        claims = self.verify(message.token, message.name)
        identity: str = claims["grants"]["identity"]
        name = message.name or claims["grants"]["video"].get("room")
        if not name:
            raise RoomNameInvalidError("No room name: neither connect nor the token names one")
        check_room_name(name)
        check_identity(identity)
        async with self._lock:
            room = await self.store.find_in_progress(name)
            if room is None:
                room = await self._create(name, self.config.room_type,
                                          self.config.max_participants)
            participant, out = room.join(identity, message.participant, self.clock(),
                                         subscribe_rules=_subscribe_rules(message),
                                         offered=message.peer_connections,
                                         sends_on_every_connection=_is_twilio_video(message))
            log.info("%s joined room %s (%s) as %s", identity, room.unique_name, room.sid,
                     participant.sid)
            self._deliveries[participant.sid] = delivery
            await self.store.save(room)
            self.media.connected(room, participant.sid, message)
            self._deliver(out, room)
        return participant

    async def sync(self, message: Sync, delivery: Delivery) -> Participant:
        """Resume a suspended session on a new connection; it receives ``synced``."""
        claims = self.verify(message.token, message.name)
        async with self._lock:
            room = await self.store.find_by_session(message.session)
            participant = room.by_session(message.session) if room else None
            if room is None or participant is None:
                raise SignalingConnectionTimeoutError(
                    "The session could not be resumed: it expired or never existed")
            if claims["grants"]["identity"] != participant.identity:
                raise AccessTokenGrantsInvalidError(
                    "Invalid Access Token grants: the session belongs to another identity")
            old = self._deliveries.pop(participant.sid, None)
            if old is not None and old is not delivery:
                old.end()
            self._deliveries[participant.sid] = delivery
            out = room.resume(participant.sid, message.participant, self.clock())
            log.info("%s resumed its session in room %s", participant.identity, room.unique_name)
            await self.store.save(room)
            self._deliver(out, room)
        return participant

    async def update(self, participant_sid: str, message: ClientUpdate) -> None:
        async with self._lock:
            room = await self.store.find_by_session(message.session)
            owner = room.by_session(message.session) if room else None
            if room is None or owner is None or owner.sid != participant_sid:
                raise TwilioError(53004, "update: session does not belong to this connection")
            out = room.update(participant_sid, message, self.clock())
            await self.store.save(room)
            self._deliver(out, room)
            self.media.received(room, participant_sid, message.peer_connections or [])
            if message.bandwidth_profile is not None:
                self.media.bandwidth_profile(room, participant_sid, message.bandwidth_profile)

    async def leave(self, participant_sid: str, session: str) -> None:
        """A clean ``disconnect`` from the participant."""
        async with self._lock:
            room = await self.store.find_by_session(session)
            if room is None:
                return
            self._deliveries.pop(participant_sid, None)
            out = room.leave(participant_sid, self.clock())
            log.info("%s left room %s", room.participants[participant_sid].identity,
                     room.unique_name)
            await self.store.save(room)
            self._deliver(out, room)

    async def dropped(self, participant_sid: str, session: str, delivery: Delivery) -> None:
        """The connection went away without ``disconnect``: keep the session for the grace
        period, then remove the participant."""
        async with self._lock:
            if self._deliveries.get(participant_sid) is not delivery:
                return  # already replaced by a resumed connection, or removed
            del self._deliveries[participant_sid]
            room = await self.store.find_by_session(session)
            if room is None:
                return
            out = room.suspend(participant_sid, self.clock())
            log.info("%s lost its signaling connection; keeping its session for %.0f s",
                     room.participants[participant_sid].identity, self.config.session_timeout)
            await self.store.save(room)
            self._deliver(out, room)
        self._later(self.config.session_timeout, self._expire_session, session)

    async def _expire_session(self, session: str) -> None:
        async with self._lock:
            room = await self.store.find_by_session(session)
            participant = room.by_session(session) if room else None
            if room is None or participant is None or participant.state != "reconnecting":
                return
            if participant.sid in self._deliveries:
                return
            out = room.leave(participant.sid, self.clock())
            log.info("%s's session expired in room %s", participant.identity, room.unique_name)
            await self.store.save(room)
            self._deliver(out, room)

    # --- REST operations -----------------------------------------------------------------------

    async def create_room(self, unique_name: str | None, room_type: str | None,
                          max_participants: int | None,
                          video_codecs: tuple[str, ...] | None = None) -> Room:
        """A room created by REST; ``video_codecs`` (checked names) for a group room only, as
        Twilio: 53114 for a peer-to-peer one."""
        room_type = room_type or self.config.room_type
        if room_type not in ROOM_TYPES:
            raise RoomTypeInvalidError(
                f"Type {room_type!r} is not one of {', '.join(ROOM_TYPES)}")
        if video_codecs is not None and room_type in PEER_TO_PEER_TYPES:
            raise RoomInvalidParametersError(
                f"Room creation parameter(s) incompatible with the Room type: VideoCodecs "
                f"cannot be set for a {room_type} room, only for group rooms")
        limit = self.config.max_participants
        if max_participants is not None and not 1 <= max_participants <= limit:
            raise RoomMaxParticipantsOutOfRangeError(
                f"MaxParticipants must be between 1 and {limit}")
        async with self._lock:
            if unique_name is None:
                unique_name = new_sid(ROOM)
            check_room_name(unique_name)
            if await self.store.find_in_progress(unique_name) is not None:
                raise RoomRoomExistsError(f"Room {unique_name} exists")
            room = await self._create(unique_name, room_type, max_participants or limit,
                                      video_codecs)
            await self.store.save(room)
        return room

    async def get_room(self, sid_or_name: str) -> Room:
        room = await self.store.get(sid_or_name) or await self.store.find_in_progress(
            sid_or_name)
        if room is None:
            raise RoomNotFoundError(f"Room {sid_or_name} not found")
        return room

    async def complete_room(self, sid_or_name: str) -> Room:
        async with self._lock:
            room = await self.get_room(sid_or_name)
            self._complete(room)
            await self.store.save(room)
        return room

    async def set_subscribe_rules(self, room_sid: str, participant: str,
                                  rules: list[SubscribeRule]) -> Participant:
        """Replace what a participant (by SID or identity) receives; the SFU renegotiates its
        connection, keeping the tracks it still receives."""
        async with self._lock:
            room = await self.get_room(room_sid)
            p = room.participants.get(participant) or room.by_identity(participant)
            if p is None or not p.active:
                raise ParticipantNotFoundError(f"Participant {participant} not found")
            out = room.set_subscribe_rules(p.sid, rules, self.clock())
            await self.store.save(room)
            self._deliver(out, room)
        return p

    def _subscription_failed(self, room_sid: str, participant_sid: str, track_sid: str,
                             error: TwilioError) -> None:
        """The SFU cannot forward a track to a subscriber: record it, and tell the
        subscriber."""
        self._media_failed(Room.subscription_failed, room_sid, participant_sid, track_sid, error)

    def _publication_failed(self, room_sid: str, participant_sid: str, track_sid: str,
                            error: TwilioError) -> None:
        """The SFU refused a publisher's track: it is unpublished, and the publisher told."""
        self._media_failed(Room.publication_failed, room_sid, participant_sid, track_sid, error)

    def _media_failed(self, apply: Callable[[Room, str, str, TwilioError], list[Outgoing]],
                      room_sid: str, participant_sid: str, track_sid: str,
                      error: TwilioError) -> None:
        async def fail() -> None:
            async with self._lock:
                room = await self.store.get(room_sid)
                p = room.participants.get(participant_sid) if room is not None else None
                if room is None or not room.in_progress or p is None or not p.active:
                    return
                out = apply(room, participant_sid, track_sid, error)
                await self.store.save(room)
                self._deliver(out, room)

        task = asyncio.ensure_future(fail())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def kick(self, room_sid: str, participant: str) -> Participant:
        """Disconnect a participant (by SID or identity) from outside."""
        async with self._lock:
            room = await self.get_room(room_sid)
            p = room.participants.get(participant) or room.by_identity(participant)
            if p is None or not p.active:
                raise ParticipantNotFoundError(f"Participant {participant} not found")
            out = room.kick(p.sid, self.clock())
            await self.store.save(room)
            self._deliver(out, room)
        return p

    # --- internals -----------------------------------------------------------------------------

    async def _create(self, name: str, room_type: str, max_participants: int,
                      video_codecs: tuple[str, ...] | None = None) -> Room:
        if await self.store.count_in_progress() >= self.config.max_rooms:
            raise RoomCreateFailedError(
                f"Unable to create Room: the server's limit of {self.config.max_rooms} rooms "
                "is reached")
        if room_type not in ROOM_TYPES:
            raise RoomInvalidParametersError(f"Unknown room type {room_type!r}")
        if room_type not in PEER_TO_PEER_TYPES and video_codecs is None:
            video_codecs = self.config.video_codecs or forwardable_video_codecs()
        room = Room(unique_name=name, type=room_type, created_at=self.clock(),
                    max_participants=max_participants,
                    empty_timeout=self.config.empty_room_timeout, video_codecs=video_codecs)
        self._later(room.empty_timeout, self._expire_empty, room.sid)
        return room

    def _complete(self, room: Room) -> None:
        out = room.complete(self.clock())
        log.info("room %s (%s) completed", room.unique_name, room.sid)
        self._deliver(out, room)

    async def _expire_empty(self, room_sid: str) -> None:
        async with self._lock:
            room = await self.store.get(room_sid)
            if room is None or not room.in_progress or room.empty_since is None:
                return
            remaining = room.empty_since + room.empty_timeout - self.clock()
            if remaining > 0:
                self._later(remaining, self._expire_empty, room_sid)
                return
            self._complete(room)
            await self.store.save(room)

    def _deliver(self, out: list[Outgoing], room: Room) -> None:
        for item in out:
            delivery = self._deliveries.get(item.participant_sid)
            if delivery is None:
                continue
            message = item.message
            if isinstance(message, RoomState) and message.type in ("connected", "synced"):
                message.options = {"session_timeout": self.config.session_timeout}
                assert message.participant is not None
                message.ice_servers = self.ice_servers(message.participant.identity)
                self.media.amend(room, item.participant_sid, message)
            delivery.send_body(message.to_wire())
            if isinstance(message, (Error, Disconnected)):
                del self._deliveries[item.participant_sid]
                delivery.end()
        if room.in_progress and room.empty_since is not None:
            self._later(room.empty_timeout, self._expire_empty, room.sid)
        self.media.apply(room)

    def _later(self, delay: float, func: Callable[[str], Any], arg: str) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            task = loop.create_task(func(arg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    def error_body(self, error: TwilioError) -> dict[str, Any]:
        return error_message(error).to_wire()

    async def close(self) -> None:
        """Stop timers; tell every connected participant the room service is going away.

        Each is sent ``error`` 53001 before its connection closes: a bare close would make
        twilio-video.js (and the Python client) try to resume a session no server holds, and
        report the loss only when that times out."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        going_away = self.error_body(SignalingConnectionDisconnectedError(
            "Signaling connection disconnected: the room server is shutting down"))
        for delivery in list(self._deliveries.values()):
            delivery.send_body(going_away)
            delivery.end()
        self._deliveries.clear()
        await self.media.close()


SERVICE = web.AppKey("service", RoomService)
"""Where the aiohttp application keeps its RoomService."""
