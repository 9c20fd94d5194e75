"""The REST API, shaped like Twilio's Video v1: ``/v1/Rooms``, participants, tracks.

Form-encoded parameters in, JSON with Twilio's field names out, HTTP Basic auth with the API key
SID and secret. Errors use Twilio's REST error body (``code``, ``message``, ``more_info``,
``status``). Path parameters accept a SID or, as Twilio does for rooms, a unique name (and an
identity for participants).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from rtcroom.errors import (
    ParticipantNotFoundError,
    RoomMaxParticipantsOutOfRangeError,
    RoomNotFoundError,
    RoomStatusInvalidError,
    RoomTypeInvalidError,
    TwilioError,
)
from rtcroom.server.rooms import ROOM_TYPES, Participant, Room, Track
from rtcroom.server.rooms.subscriberules import parse_subscribe_rules
from rtcroom.server.service import SERVICE
from rtcroom.server.videocodecs import parse_video_codecs

__all__ = ["auth_middleware", "routes"]

# Twilio's REST codes outside the Video table: bad parameter, failed auth, no such resource.
INVALID_PARAMETER = 20001
AUTHENTICATION_ERROR = 20003
NOT_FOUND = 20404
MAX_PAGE_SIZE = 1000
# Errors that name a thing that does not exist answer 404; other request errors 400.
_NOT_FOUND_CODES = (RoomNotFoundError.code, ParticipantNotFoundError.code, NOT_FOUND)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(start: float, end: float | None) -> int | None:
    return None if end is None else int(end - start)


def error_response(code: int, message: str, status: int) -> web.Response:
    return web.json_response({"code": code, "message": message,
                              "more_info": f"https://www.twilio.com/docs/errors/{code}",
                              "status": status}, status=status)


def twilio_error_response(error: TwilioError) -> web.Response:
    return error_response(error.code, error.message, 404 if error.code in _NOT_FOUND_CODES else 400)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Basic auth with the API key on ``/v1``; Twilio errors as Twilio's REST error body."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    service = request.app[SERVICE]
    creds = service.credentials
    header = request.headers.get("Authorization", "")
    ok = False
    if header.startswith("Basic "):
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            ok = (hmac.compare_digest(user, creds.api_key_sid)
                  and hmac.compare_digest(password, creds.api_key_secret))
        except (binascii.Error, UnicodeDecodeError):
            ok = False
    if not ok:
        response = error_response(AUTHENTICATION_ERROR, "Authentication Error - invalid username",
                                  401)
        response.headers["WWW-Authenticate"] = 'Basic realm="rtcroom"'
        return response
    try:
        return await handler(request)
    except TwilioError as exc:
        return twilio_error_response(exc)


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def room_json(request: web.Request, room: Room) -> dict[str, Any]:
    service = request.app[SERVICE]
    url = f"{_base(request)}/v1/Rooms/{room.sid}"
    return {
        "sid": room.sid,
        "account_sid": service.credentials.account_sid,
        "unique_name": room.unique_name,
        "status": room.status,
        "type": room.type,
        "max_participants": room.max_participants,
        "empty_room_timeout": int(room.empty_timeout // 60),
        "date_created": _iso(room.created_at),
        "date_updated": _iso(room.ended_at or room.created_at),
        "end_time": _iso(room.ended_at),
        "duration": _duration(room.created_at, room.ended_at),
        "enable_turn": bool(service.config.ice_servers),
        "audio_only": False,
        "video_codecs": None if room.video_codecs is None else list(room.video_codecs),
        "media_region": None,
        "status_callback": None,
        "status_callback_method": "POST",
        "url": url,
        "links": {"participants": f"{url}/Participants"},
    }


def participant_json(request: web.Request, room: Room, p: Participant) -> dict[str, Any]:
    service = request.app[SERVICE]
    url = f"{_base(request)}/v1/Rooms/{room.sid}/Participants/{p.sid}"
    return {
        "sid": p.sid,
        "room_sid": room.sid,
        "account_sid": service.credentials.account_sid,
        "identity": p.identity,
        "status": "disconnected" if p.state == "disconnected" else "connected",
        "date_created": _iso(p.connected_at),
        "date_updated": _iso(p.disconnected_at or p.connected_at),
        "start_time": _iso(p.connected_at),
        "end_time": _iso(p.disconnected_at),
        "duration": _duration(p.connected_at, p.disconnected_at),
        "url": url,
        "links": {"published_tracks": f"{url}/PublishedTracks",
                  "subscribed_tracks": f"{url}/SubscribedTracks",
                  "subscribe_rules": f"{url}/SubscribeRules"},
    }


def subscribe_rules_json(room: Room, p: Participant) -> dict[str, Any]:
    return {"participant_sid": p.sid, "room_sid": room.sid,
            "rules": [rule.to_json() for rule in p.subscribe_rules],
            "date_created": _iso(p.connected_at),
            "date_updated": _iso(p.subscribe_rules_updated_at or p.connected_at)}


def track_json(request: web.Request, room: Room, p: Participant, t: Track) -> dict[str, Any]:
    url = f"{_base(request)}/v1/Rooms/{room.sid}/Participants/{p.sid}/PublishedTracks/{t.sid}"
    return {"sid": t.sid, "participant_sid": p.sid, "room_sid": room.sid, "name": t.name,
            "kind": t.kind, "enabled": t.enabled, "date_created": _iso(t.published_at),
            "date_updated": _iso(t.published_at), "url": url}


def _query_choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    """Query parameter ``name``, which must be one of ``allowed`` when given (20001)."""
    value = request.query.get(name)
    if value is not None and value not in allowed:
        raise TwilioError(INVALID_PARAMETER,
                          f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _page(request: web.Request, key: str, items: list[dict[str, Any]]) -> web.Response:
    """A one-page Twilio list response (paging parameters are accepted and honoured up to
    PageSize)."""
    text = request.query.get("PageSize", "50")
    size = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise TwilioError(INVALID_PARAMETER,
                          f"PageSize must be an integer from 1 to {MAX_PAGE_SIZE}, got {text!r}")
    url = f"{_base(request)}{request.path}"
    return web.json_response({
        key: items[:size],
        "meta": {"page": 0, "page_size": size, "first_page_url": f"{url}?PageSize={size}&Page=0",
                 "previous_page_url": None, "url": f"{url}?PageSize={size}&Page=0",
                 "next_page_url": None, "key": key},
    })


async def _form(request: web.Request) -> dict[str, str]:
    data = await request.post()
    return {k: v for k, v in data.items() if isinstance(v, str)}


routes = web.RouteTableDef()


@routes.post("/v1/Rooms")
async def create_room(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    data = await request.post()
    form = {k: v for k, v in data.items() if isinstance(v, str)}
    video_codecs: tuple[str, ...] | None = None
    if "VideoCodecs" in data:
        # Repeated as Twilio's helper libraries send a list: VideoCodecs=VP8&VideoCodecs=H264.
        try:
            video_codecs = parse_video_codecs(
                v for v in data.getall("VideoCodecs") if isinstance(v, str))
        except ValueError as exc:
            raise TwilioError(INVALID_PARAMETER, f"Invalid parameter {exc}") from None
    max_participants: int | None = None
    if "MaxParticipants" in form:
        try:
            max_participants = int(form["MaxParticipants"])
        except ValueError:
            raise RoomMaxParticipantsOutOfRangeError(
                f"MaxParticipants {form['MaxParticipants']!r} is not a number") from None
    if "Type" in form and form["Type"] not in ROOM_TYPES:
        raise RoomTypeInvalidError(f"Type {form['Type']!r} is not one of {', '.join(ROOM_TYPES)}")
    room = await service.create_room(form.get("UniqueName") or None, form.get("Type"),
                                     max_participants, video_codecs)
    return web.json_response(room_json(request, room), status=201)


@routes.get("/v1/Rooms")
async def list_rooms(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    rooms = await service.store.list(status=_query_choice(request, "Status",
                                                          ("in-progress", "completed")),
                                     unique_name=request.query.get("UniqueName"))
    return _page(request, "rooms", [room_json(request, r) for r in rooms])


@routes.get("/v1/Rooms/{room}")
async def fetch_room(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    room = await service.get_room(request.match_info["room"])
    return web.json_response(room_json(request, room))


@routes.post("/v1/Rooms/{room}")
async def update_room(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    form = await _form(request)
    if form.get("Status") != "completed":
        raise RoomStatusInvalidError(
            f"Status must be 'completed', got {form.get('Status')!r}")
    room = await service.get_room(request.match_info["room"])
    if not room.in_progress:
        raise RoomStatusInvalidError(f"Room {room.sid} is not in progress")
    room = await service.complete_room(room.sid)
    return web.json_response(room_json(request, room))


def _find_participant(room: Room, key: str) -> Participant:
    p = room.participants.get(key)
    if p is None:
        matches = [q for q in room.participants.values() if q.identity == key]
        # An identity may have come and gone: prefer the one still connected, else the latest.
        matches.sort(key=lambda q: (q.active, q.connected_at))
        p = matches[-1] if matches else None
    if p is None:
        raise ParticipantNotFoundError(f"Participant {key} not found in room {room.sid}")
    return p


@routes.get("/v1/Rooms/{room}/Participants")
async def list_participants(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    room = await service.get_room(request.match_info["room"])
    status = _query_choice(request, "Status", ("connected", "disconnected"))
    identity = request.query.get("Identity")
    items = [participant_json(request, room, p) for p in room.participants.values()
             if (identity is None or p.identity == identity)]
    if status is not None:
        items = [i for i in items if i["status"] == status]
    return _page(request, "participants", items)


@routes.get("/v1/Rooms/{room}/Participants/{participant}")
async def fetch_participant(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    room = await service.get_room(request.match_info["room"])
    p = _find_participant(room, request.match_info["participant"])
    return web.json_response(participant_json(request, room, p))


@routes.post("/v1/Rooms/{room}/Participants/{participant}")
async def update_participant(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    form = await _form(request)
    if form.get("Status") != "disconnected":
        raise TwilioError(INVALID_PARAMETER, f"Status must be 'disconnected', got {form.get('Status')!r}")
    room = await service.get_room(request.match_info["room"])
    p = _find_participant(room, request.match_info["participant"])
    if p.active:
        await service.kick(room.sid, p.sid)
    return web.json_response(participant_json(request, room, p))


@routes.get("/v1/Rooms/{room}/Participants/{participant}/PublishedTracks")
async def list_published(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    room = await service.get_room(request.match_info["room"])
    p = _find_participant(room, request.match_info["participant"])
    tracks = list(p.tracks.values()) if p.active else []
    return _page(request, "published_tracks", [track_json(request, room, p, t) for t in tracks])


@routes.get("/v1/Rooms/{room}/Participants/{participant}/PublishedTracks/{track}")
async def fetch_published(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    room = await service.get_room(request.match_info["room"])
    p = _find_participant(room, request.match_info["participant"])
    for t in p.tracks.values():
        if t.sid == request.match_info["track"]:
            return web.json_response(track_json(request, room, p, t))
    raise TwilioError(NOT_FOUND, f"Track {request.match_info['track']} not found")


@routes.get("/v1/Rooms/{room}/Participants/{participant}/SubscribedTracks")
async def list_subscribed(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    room = await service.get_room(request.match_info["room"])
    p = _find_participant(room, request.match_info["participant"])
    items = []
    publishers = {t.sid: q for q in room.active_participants() for t in q.tracks.values()}
    for t in room.subscriptions(p) if p.active else []:
        publisher = publishers[t.sid]
        item = track_json(request, room, publisher, t)
        item.update(publisher_sid=publisher.sid, subscriber_sid=p.sid, participant_sid=p.sid,
                    url=f"{_base(request)}/v1/Rooms/{room.sid}/Participants/{p.sid}"
                        f"/SubscribedTracks/{t.sid}")
        items.append(item)
    return _page(request, "subscribed_tracks", items)


@routes.get("/v1/Rooms/{room}/Participants/{participant}/SubscribeRules")
async def fetch_subscribe_rules(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    room = await service.get_room(request.match_info["room"])
    p = _find_participant(room, request.match_info["participant"])
    return web.json_response(subscribe_rules_json(room, p))


@routes.post("/v1/Rooms/{room}/Participants/{participant}/SubscribeRules")
async def update_subscribe_rules(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    form = await _form(request)
    room = await service.get_room(request.match_info["room"])
    p = _find_participant(room, request.match_info["participant"])
    p = await service.set_subscribe_rules(room.sid, p.sid,
                                          parse_subscribe_rules(form.get("Rules", [])))
    return web.json_response(subscribe_rules_json(await service.get_room(room.sid), p))
