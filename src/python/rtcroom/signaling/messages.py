"""Room Signaling Protocol (RSP) version 2: the bodies carried in ``msg`` frames.

One dataclass per message and per nested object, with ``from_wire`` (validating, naming the
bad field in :class:`MessageFormatError`) and ``to_wire``. Field names are the protocol's own.
Client to server: ``ice``, ``connect``, ``sync``, ``update``, ``disconnect``. Server to client:
``iced``, ``connected`` / ``update`` / ``synced`` (one shape, :class:`RoomState`),
``disconnected``, ``error``, ``warning``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtcroom.signaling.fields import (
    MessageFormatError,
    opt,
    opt_list,
    opt_obj,
    req,
    req_list,
    req_obj,
)

__all__ = [
    "RSP_VERSION",
    "TRACK_KINDS",
    "ClientMessage",
    "ClientUpdate",
    "Connect",
    "Disconnect",
    "Disconnected",
    "Error",
    "Ice",
    "IceCandidate",
    "IceServer",
    "IceState",
    "Iced",
    "ParticipantInfo",
    "ParticipantState",
    "PeerConnectionState",
    "Published",
    "PublishedTrack",
    "RemoteParticipantState",
    "RemoteTrackState",
    "RoomState",
    "ServerMessage",
    "SessionDescription",
    "Subscribed",
    "SubscribedTrack",
    "Sync",
    "TrackState",
    "Warning",
    "parse_client_message",
    "parse_server_message",
]

RSP_VERSION = 2
TRACK_KINDS = ("audio", "video", "data")
DESCRIPTION_TYPES = ("offer", "answer", "create-offer", "close", "rollback")
PARTICIPANT_STATES = ("connected", "reconnecting", "disconnected")
PRIORITIES = ("low", "standard", "high")


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _one_of(value: str, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise MessageFormatError(f"{where} must be one of {', '.join(allowed)}; got {value!r}")
    return value


# --- nested objects ----------------------------------------------------------------------------


@dataclass
class TrackState:
    """A track as its publisher describes it (``participant.tracks[]``)."""

    id: str
    kind: str
    name: str
    enabled: bool = True
    priority: str = "standard"

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> TrackState:
        return cls(
            id=req(d, where, "id", str),
            kind=_one_of(req(d, where, "kind", str), TRACK_KINDS, f"{where}.kind"),
            name=req(d, where, "name", str),
            enabled=opt(d, where, "enabled", bool, True),
            priority=_one_of(opt(d, where, "priority", str, "standard"), PRIORITIES,
                             f"{where}.priority"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "enabled": self.enabled,
                "priority": self.priority}


@dataclass
class ParticipantState:
    """The local participant's own state, sent with ``connect``, ``sync`` and ``update``."""

    revision: int
    tracks: list[TrackState] = field(default_factory=list)

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> ParticipantState:
        tracks = req_list(d, where, "tracks", TrackState.from_wire)
        ids = [t.id for t in tracks]
        if len(set(ids)) != len(ids):
            raise MessageFormatError(f"{where}.tracks has a duplicate track id")
        return cls(revision=req(d, where, "revision", int), tracks=tracks)

    def to_wire(self) -> dict[str, Any]:
        return {"revision": self.revision, "tracks": [t.to_wire() for t in self.tracks]}


@dataclass
class SessionDescription:
    type: str
    revision: int
    sdp: str | None = None

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> SessionDescription:
        kind = _one_of(req(d, where, "type", str), DESCRIPTION_TYPES, f"{where}.type")
        sdp = opt(d, where, "sdp", str)
        if kind in ("offer", "answer") and sdp is None:
            raise MessageFormatError(f"{where}.sdp is required for an {kind}")
        return cls(type=kind, revision=req(d, where, "revision", int), sdp=sdp)

    def to_wire(self) -> dict[str, Any]:
        return _drop_none({"type": self.type, "revision": self.revision, "sdp": self.sdp})


@dataclass
class IceCandidate:
    candidate: str
    sdpMid: str | None = None
    sdpMLineIndex: int | None = None
    usernameFragment: str | None = None

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> IceCandidate:
        return cls(candidate=req(d, where, "candidate", str), sdpMid=opt(d, where, "sdpMid", str),
                   sdpMLineIndex=opt(d, where, "sdpMLineIndex", int),
                   usernameFragment=opt(d, where, "usernameFragment", str))

    def to_wire(self) -> dict[str, Any]:
        return _drop_none({"candidate": self.candidate, "sdpMid": self.sdpMid,
                           "sdpMLineIndex": self.sdpMLineIndex,
                           "usernameFragment": self.usernameFragment})


@dataclass
class IceState:
    revision: int
    ufrag: str | None = None
    candidates: list[IceCandidate] = field(default_factory=list)
    complete: bool = False

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> IceState:
        return cls(revision=req(d, where, "revision", int), ufrag=opt(d, where, "ufrag", str),
                   candidates=opt_list(d, where, "candidates", IceCandidate.from_wire) or [],
                   complete=opt(d, where, "complete", bool, False))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"revision": self.revision,
                               "candidates": [c.to_wire() for c in self.candidates]}
        if self.ufrag is not None:
            out["ufrag"] = self.ufrag
        if self.complete:
            out["complete"] = True
        return out


@dataclass
class PeerConnectionState:
    id: str
    description: SessionDescription | None = None
    ice: IceState | None = None

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> PeerConnectionState:
        return cls(id=req(d, where, "id", str),
                   description=opt_obj(d, where, "description", SessionDescription.from_wire),
                   ice=opt_obj(d, where, "ice", IceState.from_wire))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.description is not None:
            out["description"] = self.description.to_wire()
        if self.ice is not None:
            out["ice"] = self.ice.to_wire()
        return out


@dataclass
class IceServer:
    """An RTCIceServer as the protocol (and the W3C dictionary) spells it."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> IceServer:
        urls = req(d, where, "urls", (str, list))
        if isinstance(urls, str):
            urls = [urls]
        if not urls or not all(isinstance(u, str) for u in urls):
            raise MessageFormatError(f"{where}.urls must be a non-empty list of strings")
        return cls(urls=list(urls), username=opt(d, where, "username", str),
                   credential=opt(d, where, "credential", str))

    def to_wire(self) -> dict[str, Any]:
        return _drop_none({"urls": self.urls, "username": self.username,
                           "credential": self.credential})


@dataclass
class RemoteTrackState:
    """A track of another participant, as the server describes it."""

    sid: str
    kind: str
    name: str
    enabled: bool = True
    priority: str = "standard"

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> RemoteTrackState:
        return cls(sid=req(d, where, "sid", str),
                   kind=_one_of(req(d, where, "kind", str), TRACK_KINDS, f"{where}.kind"),
                   name=req(d, where, "name", str), enabled=opt(d, where, "enabled", bool, True),
                   priority=opt(d, where, "priority", str, "standard"))

    def to_wire(self) -> dict[str, Any]:
        return {"sid": self.sid, "kind": self.kind, "name": self.name, "enabled": self.enabled,
                "priority": self.priority}


@dataclass
class RemoteParticipantState:
    sid: str
    identity: str
    state: str
    revision: int
    tracks: list[RemoteTrackState] = field(default_factory=list)

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> RemoteParticipantState:
        return cls(sid=req(d, where, "sid", str), identity=req(d, where, "identity", str),
                   state=_one_of(req(d, where, "state", str), PARTICIPANT_STATES,
                                 f"{where}.state"),
                   revision=req(d, where, "revision", int),
                   tracks=opt_list(d, where, "tracks", RemoteTrackState.from_wire) or [])

    def to_wire(self) -> dict[str, Any]:
        return {"sid": self.sid, "identity": self.identity, "state": self.state,
                "revision": self.revision, "tracks": [t.to_wire() for t in self.tracks]}


@dataclass
class ParticipantInfo:
    """Who the receiving client is: ``connected.participant``."""

    sid: str
    identity: str

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> ParticipantInfo:
        return cls(sid=req(d, where, "sid", str), identity=req(d, where, "identity", str))

    def to_wire(self) -> dict[str, Any]:
        return {"sid": self.sid, "identity": self.identity}


@dataclass
class TwilioErrorInfo:
    code: int
    message: str = ""

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> TwilioErrorInfo:
        return cls(code=req(d, where, "code", int), message=opt(d, where, "message", str, ""))

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


@dataclass
class PublishedTrack:
    id: str
    sid: str | None = None
    state: str = "ready"
    error: TwilioErrorInfo | None = None

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> PublishedTrack:
        return cls(id=req(d, where, "id", str), sid=opt(d, where, "sid", str),
                   state=_one_of(opt(d, where, "state", str, "ready"), ("ready", "failed"),
                                 f"{where}.state"),
                   error=opt_obj(d, where, "error", TwilioErrorInfo.from_wire))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "state": self.state}
        if self.sid is not None:
            out["sid"] = self.sid
        if self.error is not None:
            out["error"] = self.error.to_wire()
        return out


@dataclass
class Published:
    revision: int
    tracks: list[PublishedTrack] = field(default_factory=list)

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> Published:
        return cls(revision=req(d, where, "revision", int),
                   tracks=req_list(d, where, "tracks", PublishedTrack.from_wire))

    def to_wire(self) -> dict[str, Any]:
        return {"revision": self.revision, "tracks": [t.to_wire() for t in self.tracks]}


@dataclass
class SubscribedTrack:
    sid: str
    id: str | None = None
    error: TwilioErrorInfo | None = None

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> SubscribedTrack:
        return cls(sid=req(d, where, "sid", str), id=opt(d, where, "id", str),
                   error=opt_obj(d, where, "error", TwilioErrorInfo.from_wire))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sid": self.sid}
        if self.id is not None:
            out["id"] = self.id
        if self.error is not None:
            out["error"] = self.error.to_wire()
        return out


@dataclass
class Subscribed:
    revision: int
    tracks: list[SubscribedTrack] = field(default_factory=list)

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> Subscribed:
        return cls(revision=req(d, where, "revision", int),
                   tracks=req_list(d, where, "tracks", SubscribedTrack.from_wire))

    def to_wire(self) -> dict[str, Any]:
        return {"revision": self.revision, "tracks": [t.to_wire() for t in self.tracks]}


# --- client to server --------------------------------------------------------------------------


@dataclass
class Ice:
    token: str
    edge: str = "roaming"
    version: int = 1
    type: str = field(default="ice", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str = "ice") -> Ice:
        return cls(token=req(d, where, "token", str), edge=opt(d, where, "edge", str, "roaming"),
                   version=opt(d, where, "version", int, 1))

    def to_wire(self) -> dict[str, Any]:
        return {"type": "ice", "token": self.token, "edge": self.edge, "version": self.version}


def _check_rsp_version(d: dict[str, Any], where: str) -> int:
    version = req(d, where, "version", int)
    if version != RSP_VERSION:
        raise MessageFormatError(f"{where}.version {version} is not supported (want 2)")
    return version


@dataclass
class Connect:
    name: str | None
    token: str
    participant: ParticipantState
    peer_connections: list[PeerConnectionState] = field(default_factory=list)
    ice_servers: str = "acquire"
    format: str = "unified"
    publisher: dict[str, Any] | None = None
    media_signaling: dict[str, Any] | None = None
    subscribe: dict[str, Any] | None = None
    bandwidth_profile: dict[str, Any] | None = None
    version: int = RSP_VERSION
    type: str = field(default="connect", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str = "connect") -> Connect:
        _check_rsp_version(d, where)
        return cls(
            name=opt(d, where, "name", str),
            token=req(d, where, "token", str),
            participant=req_obj(d, where, "participant", ParticipantState.from_wire),
            peer_connections=opt_list(d, where, "peer_connections",
                                      PeerConnectionState.from_wire) or [],
            ice_servers=_one_of(opt(d, where, "ice_servers", str, "acquire"),
                                ("acquire", "overrode"), f"{where}.ice_servers"),
            format=opt(d, where, "format", str, "unified"),
            publisher=opt(d, where, "publisher", dict),
            media_signaling=opt(d, where, "media_signaling", dict),
            subscribe=opt(d, where, "subscribe", dict),
            bandwidth_profile=opt(d, where, "bandwidth_profile", dict),
        )

    def to_wire(self) -> dict[str, Any]:
        return _drop_none({
            "type": "connect", "version": self.version, "name": self.name, "token": self.token,
            "participant": self.participant.to_wire(),
            "peer_connections": [p.to_wire() for p in self.peer_connections],
            "ice_servers": self.ice_servers, "format": self.format, "publisher": self.publisher,
            "media_signaling": self.media_signaling, "subscribe": self.subscribe,
            "bandwidth_profile": self.bandwidth_profile,
        })


@dataclass
class Sync:
    """Resume a session after the WebSocket dropped."""

    session: str
    token: str
    participant: ParticipantState
    name: str | None = None
    peer_connections: list[PeerConnectionState] = field(default_factory=list)
    version: int = RSP_VERSION
    type: str = field(default="sync", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str = "sync") -> Sync:
        _check_rsp_version(d, where)
        return cls(session=req(d, where, "session", str), token=req(d, where, "token", str),
                   participant=req_obj(d, where, "participant", ParticipantState.from_wire),
                   name=opt(d, where, "name", str),
                   peer_connections=opt_list(d, where, "peer_connections",
                                             PeerConnectionState.from_wire) or [])

    def to_wire(self) -> dict[str, Any]:
        return _drop_none({
            "type": "sync", "version": self.version, "session": self.session,
            "token": self.token, "name": self.name, "participant": self.participant.to_wire(),
            "peer_connections": [p.to_wire() for p in self.peer_connections],
        })


@dataclass
class ClientUpdate:
    session: str
    participant: ParticipantState | None = None
    peer_connections: list[PeerConnectionState] | None = None
    bandwidth_profile: dict[str, Any] | None = None
    version: int = RSP_VERSION
    type: str = field(default="update", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str = "update") -> ClientUpdate:
        return cls(session=req(d, where, "session", str),
                   participant=opt_obj(d, where, "participant", ParticipantState.from_wire),
                   peer_connections=opt_list(d, where, "peer_connections",
                                             PeerConnectionState.from_wire),
                   bandwidth_profile=opt(d, where, "bandwidth_profile", dict),
                   version=opt(d, where, "version", int, RSP_VERSION))

    def to_wire(self) -> dict[str, Any]:
        return _drop_none({
            "type": "update", "version": self.version, "session": self.session,
            "participant": self.participant.to_wire() if self.participant else None,
            "peer_connections": ([p.to_wire() for p in self.peer_connections]
                                 if self.peer_connections is not None else None),
            "bandwidth_profile": self.bandwidth_profile,
        })


@dataclass
class Disconnect:
    session: str | None = None
    version: int = RSP_VERSION
    type: str = field(default="disconnect", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str = "disconnect") -> Disconnect:
        return cls(session=opt(d, where, "session", str),
                   version=opt(d, where, "version", int, RSP_VERSION))

    def to_wire(self) -> dict[str, Any]:
        return _drop_none({"type": "disconnect", "session": self.session,
                           "version": self.version})


ClientMessage = Ice | Connect | Sync | ClientUpdate | Disconnect

_CLIENT: dict[str, Any] = {"ice": Ice, "connect": Connect, "sync": Sync, "update": ClientUpdate,
                           "disconnect": Disconnect}


def parse_client_message(body: dict[str, Any]) -> ClientMessage:
    """Validate a ``msg`` body a client sent; raises MessageFormatError naming the bad field."""
    kind = req(body, "body", "type", str)
    cls = _CLIENT.get(kind)
    if cls is None:
        raise MessageFormatError(f"unknown client message type {kind!r}")
    message: ClientMessage = cls.from_wire(body, kind)
    return message


# --- server to client --------------------------------------------------------------------------


@dataclass
class Iced:
    ice_servers: list[IceServer] = field(default_factory=list)
    type: str = field(default="iced", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str = "iced") -> Iced:
        return cls(opt_list(d, where, "ice_servers", IceServer.from_wire) or [])

    def to_wire(self) -> dict[str, Any]:
        return {"type": "iced", "ice_servers": [s.to_wire() for s in self.ice_servers]}


ROOM_STATE_TYPES = ("connected", "update", "synced")


@dataclass
class RoomState:
    """``connected``, ``update`` and ``synced``: the room as one participant should see it.

    Only ``connected`` (and ``synced``) must carry ``session``, ``sid``, ``name`` and
    ``participant``; every other field is optional in all three, and absent means unchanged.
    """

    type: str
    session: str | None = None
    sid: str | None = None
    name: str | None = None
    participant: ParticipantInfo | None = None
    participants: list[RemoteParticipantState] | None = None
    peer_connections: list[PeerConnectionState] | None = None
    published: Published | None = None
    subscribed: Subscribed | None = None
    options: dict[str, Any] | None = None
    ice_servers: list[IceServer] | None = None
    media_signaling: dict[str, Any] | None = None
    recording: dict[str, Any] | None = None

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str) -> RoomState:
        kind = _one_of(req(d, where, "type", str), ROOM_STATE_TYPES, f"{where}.type")
        state = cls(
            type=kind,
            session=opt(d, where, "session", str),
            sid=opt(d, where, "sid", str),
            name=opt(d, where, "name", str),
            participant=opt_obj(d, where, "participant", ParticipantInfo.from_wire),
            participants=opt_list(d, where, "participants", RemoteParticipantState.from_wire),
            peer_connections=opt_list(d, where, "peer_connections",
                                      PeerConnectionState.from_wire),
            published=opt_obj(d, where, "published", Published.from_wire),
            subscribed=opt_obj(d, where, "subscribed", Subscribed.from_wire),
            options=opt(d, where, "options", dict),
            ice_servers=opt_list(d, where, "ice_servers", IceServer.from_wire),
            media_signaling=opt(d, where, "media_signaling", dict),
            recording=opt(d, where, "recording", dict),
        )
        if kind == "connected":
            for key in ("session", "sid", "participant", "options"):
                if getattr(state, key) is None:
                    raise MessageFormatError(f"{where}.{key} is required")
            req(state.options or {}, f"{where}.options", "session_timeout", (int, float))
        return state

    def to_wire(self) -> dict[str, Any]:
        def many(items: list[Any] | None) -> list[dict[str, Any]] | None:
            return None if items is None else [i.to_wire() for i in items]

        return _drop_none({
            "type": self.type, "session": self.session, "sid": self.sid, "name": self.name,
            "participant": self.participant.to_wire() if self.participant else None,
            "participants": many(self.participants),
            "peer_connections": many(self.peer_connections),
            "published": self.published.to_wire() if self.published else None,
            "subscribed": self.subscribed.to_wire() if self.subscribed else None,
            "options": self.options, "ice_servers": many(self.ice_servers),
            "media_signaling": self.media_signaling, "recording": self.recording,
        })


@dataclass
class Disconnected:
    status: str | None = None
    type: str = field(default="disconnected", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str = "disconnected") -> Disconnected:
        return cls(opt(d, where, "status", str))

    def to_wire(self) -> dict[str, Any]:
        return _drop_none({"type": "disconnected", "status": self.status})


@dataclass
class Error:
    """Ends the receiver's room session with a Twilio error code."""

    code: int
    message: str = ""
    type: str = field(default="error", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str = "error") -> Error:
        return cls(code=req(d, where, "code", int), message=opt(d, where, "message", str, ""))

    def to_wire(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message}


@dataclass
class Warning:
    code: int | None = None
    message: str = ""
    type: str = field(default="warning", init=False)

    @classmethod
    def from_wire(cls, d: dict[str, Any], where: str = "warning") -> Warning:
        return cls(code=opt(d, where, "code", int), message=opt(d, where, "message", str, ""))

    def to_wire(self) -> dict[str, Any]:
        return _drop_none({"type": "warning", "code": self.code, "message": self.message})


ServerMessage = Iced | RoomState | Disconnected | Error | Warning


def parse_server_message(body: dict[str, Any]) -> ServerMessage:
    """Validate a ``msg`` body a server sent; raises MessageFormatError naming the bad field."""
    kind = req(body, "body", "type", str)
    if kind in ROOM_STATE_TYPES:
        return RoomState.from_wire(body, kind)
    parsers: dict[str, Any] = {"iced": Iced, "disconnected": Disconnected, "error": Error,
                               "warning": Warning}
    cls = parsers.get(kind)
    if cls is None:
        raise MessageFormatError(f"unknown server message type {kind!r}")
    message: ServerMessage = cls.from_wire(body, kind)
    return message
