"""The OpenAPI 3.1 document of the REST API, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

import rtcroom
from rtcroom.server.videocodecs import forwardable_video_codecs

__all__ = ["openapi_document"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _form(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"required": bool(required),
            "content": {"application/x-www-form-urlencoded": {"schema": schema}}}


def _list(key: str, item: str) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {"type": "array", "items": _ref(item)},
                                             "meta": _ref("ListMeta")}}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
            "description": description}


def _query(name: str, description: str, enum: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if enum:
        schema["enum"] = enum
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


_ERRORS = {"400": _json(_ref("Error"), "Invalid request (Twilio error code in the body)"),
           "401": _json(_ref("Error"), "Missing or wrong API key (code 20003)"),
           "404": _json(_ref("Error"), "No such resource")}

_ROOM = _path_param("RoomSid", "Room SID, or the unique name of an in-progress room")
_PARTICIPANT = _path_param("ParticipantSid", "Participant SID, or its identity")

_PAGE_SIZE = {"name": "PageSize", "in": "query", "required": False,
              "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
              "description": "Items per page"}
_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_TIME = {"type": ["string", "null"], "format": "date-time"}


def openapi_document() -> dict[str, Any]:
    room_types = ["peer-to-peer", "group", "group-small", "go"]
    video_codec = {"type": "string", "enum": list(forwardable_video_codecs())}
    schemas = {
        "Room": {"type": "object", "properties": {
            "sid": _STRING, "account_sid": _STRING, "unique_name": _STRING,
            "status": {"type": "string", "enum": ["in-progress", "completed"]},
            "type": {"type": "string", "enum": room_types},
            "max_participants": {"type": "integer"},
            "empty_room_timeout": {"type": "integer", "description": "minutes"},
            "date_created": _TIME, "date_updated": _TIME, "end_time": _TIME,
            "duration": {"type": ["integer", "null"], "description": "seconds"},
            "enable_turn": {"type": "boolean"}, "audio_only": {"type": "boolean"},
            "video_codecs": {"type": ["array", "null"], "items": video_codec,
                             "description": "The video codecs publishers may send (group "
                                            "rooms); null in peer-to-peer rooms"},
            "media_region": _NULLABLE_STRING, "status_callback": _NULLABLE_STRING,
            "status_callback_method": _STRING, "url": _STRING,
            "links": {"type": "object", "additionalProperties": _STRING}}},
        "Participant": {"type": "object", "properties": {
            "sid": _STRING, "room_sid": _STRING, "account_sid": _STRING, "identity": _STRING,
            "status": {"type": "string", "enum": ["connected", "disconnected"]},
            "date_created": _TIME, "date_updated": _TIME, "start_time": _TIME,
            "end_time": _TIME, "duration": {"type": ["integer", "null"]}, "url": _STRING,
            "links": {"type": "object", "additionalProperties": _STRING}}},
        "PublishedTrack": {"type": "object", "properties": {
            "sid": _STRING, "participant_sid": _STRING, "room_sid": _STRING, "name": _STRING,
            "kind": {"type": "string", "enum": ["audio", "video", "data"]},
            "enabled": {"type": "boolean"}, "date_created": _TIME, "date_updated": _TIME,
            "url": _STRING}},
        "SubscribedTrack": {"allOf": [_ref("PublishedTrack"), {"type": "object", "properties": {
            "publisher_sid": _STRING, "subscriber_sid": _STRING}}]},
        "SubscribeRule": {"type": "object", "required": ["type"], "properties": {
            "type": {"type": "string", "enum": ["include", "exclude"]},
            "all": {"type": ["boolean", "null"]},
            "publisher": {**_NULLABLE_STRING, "description": "Participant SID or identity"},
            "track": {**_NULLABLE_STRING, "description": "Track SID or name"},
            "kind": {"type": ["string", "null"], "enum": ["audio", "video", "data", None]},
            "priority": {"type": ["string", "null"], "enum": ["low", "standard", "high", None]}}},
        "SubscribeRules": {"type": "object", "properties": {
            "participant_sid": _STRING, "room_sid": _STRING,
            "rules": {"type": "array", "items": _ref("SubscribeRule")},
            "date_created": _TIME, "date_updated": _TIME}},
        "ListMeta": {"type": "object", "properties": {
            "page": {"type": "integer"}, "page_size": {"type": "integer"},
            "first_page_url": _STRING, "previous_page_url": _NULLABLE_STRING, "url": _STRING,
            "next_page_url": _NULLABLE_STRING, "key": _STRING}},
        "Error": {"type": "object", "properties": {
            "code": {"type": "integer"}, "message": _STRING, "more_info": _STRING,
            "status": {"type": "integer"}}},
    }
    paths = {
        "/v1/Rooms": {
            "post": {"summary": "Create a room", "operationId": "createRoom",
                     "requestBody": _form({
                         "UniqueName": _STRING,
                         "Type": {"type": "string", "enum": room_types},
                         "MaxParticipants": {"type": "integer", "minimum": 1},
                         "VideoCodecs": {
                             "type": "array", "items": video_codec,
                             "description": "Repeat for each codec publishers may send (group "
                                            "rooms only: 53114 for a peer-to-peer one; 20001 "
                                            "for an unknown name). Default: the server's "
                                            "(--video-codecs), else every codec it forwards"}}),
                     "responses": {"201": _json(_ref("Room"), "The new room"), **_ERRORS}},
            "get": {"summary": "List rooms", "operationId": "listRooms",
                    "parameters": [_query("Status", "Filter by status",
                                          ["in-progress", "completed"]),
                                   _query("UniqueName", "Filter by unique name"),
                                   _PAGE_SIZE],
                    "responses": {"200": _json(_list("rooms", "Room"), "Rooms, newest first"),
                                  **_ERRORS}},
        },
        "/v1/Rooms/{RoomSid}": {
            "parameters": [_ROOM],
            "get": {"summary": "Fetch a room", "operationId": "fetchRoom",
                    "responses": {"200": _json(_ref("Room"), "The room"), **_ERRORS}},
            "post": {"summary": "Complete a room (disconnects everyone)",
                     "operationId": "updateRoom",
                     "requestBody": _form({"Status": {"type": "string", "enum": ["completed"]}},
                                          ["Status"]),
                     "responses": {"200": _json(_ref("Room"), "The completed room"),
                                   **_ERRORS}},
        },
        "/v1/Rooms/{RoomSid}/Participants": {
            "parameters": [_ROOM],
            "get": {"summary": "List a room's participants", "operationId": "listParticipants",
                    "parameters": [_query("Status", "Filter by status",
                                          ["connected", "disconnected"]),
                                   _query("Identity", "Filter by identity"), _PAGE_SIZE],
                    "responses": {"200": _json(_list("participants", "Participant"),
                                               "Participants"), **_ERRORS}},
        },
        "/v1/Rooms/{RoomSid}/Participants/{ParticipantSid}": {
            "parameters": [_ROOM, _PARTICIPANT],
            "get": {"summary": "Fetch a participant", "operationId": "fetchParticipant",
                    "responses": {"200": _json(_ref("Participant"), "The participant"),
                                  **_ERRORS}},
            "post": {"summary": "Disconnect a participant", "operationId": "updateParticipant",
                     "requestBody": _form({"Status": {"type": "string",
                                                      "enum": ["disconnected"]}}, ["Status"]),
                     "responses": {"200": _json(_ref("Participant"), "The participant"),
                                   **_ERRORS}},
        },
        "/v1/Rooms/{RoomSid}/Participants/{ParticipantSid}/PublishedTracks": {
            "parameters": [_ROOM, _PARTICIPANT],
            "get": {"summary": "List a participant's published tracks",
                    "operationId": "listPublishedTracks",
                    "responses": {"200": _json(_list("published_tracks", "PublishedTrack"),
                                               "Published tracks"), **_ERRORS}},
        },
        "/v1/Rooms/{RoomSid}/Participants/{ParticipantSid}/PublishedTracks/{TrackSid}": {
            "parameters": [_ROOM, _PARTICIPANT, _path_param("TrackSid", "Track SID")],
            "get": {"summary": "Fetch a published track", "operationId": "fetchPublishedTrack",
                    "responses": {"200": _json(_ref("PublishedTrack"), "The track"),
                                  **_ERRORS}},
        },
        "/v1/Rooms/{RoomSid}/Participants/{ParticipantSid}/SubscribedTracks": {
            "parameters": [_ROOM, _PARTICIPANT],
            "get": {"summary": "List the tracks a participant subscribes to",
                    "operationId": "listSubscribedTracks",
                    "responses": {"200": _json(_list("subscribed_tracks", "SubscribedTrack"),
                                               "Subscribed tracks"), **_ERRORS}},
        },
        "/v1/Rooms/{RoomSid}/Participants/{ParticipantSid}/SubscribeRules": {
            "parameters": [_ROOM, _PARTICIPANT],
            "get": {"summary": "Fetch a participant's subscribe rules",
                    "operationId": "fetchSubscribeRules",
                    "responses": {"200": _json(_ref("SubscribeRules"), "The rules"),
                                  **_ERRORS}},
            "post": {"summary": "Replace a participant's subscribe rules (group rooms); its "
                                "connection is renegotiated, keeping what it still receives",
                     "operationId": "updateSubscribeRules",
                     "requestBody": _form({"Rules": {
                         "type": "string",
                         "description": "A JSON array of 1 to 20 rules, applied in order: "
                                        "{type: include|exclude, all: true} or {type, "
                                        "publisher?, track?, kind?, priority?}; a malformed "
                                        "set is refused with code 53215"}}, ["Rules"]),
                     "responses": {"200": _json(_ref("SubscribeRules"), "The new rules"),
                                   **_ERRORS}},
        },
        "/health": {
            "get": {"summary": "Liveness and counts", "operationId": "health", "security": [],
                    "responses": {"200": _json({"type": "object"}, "The server is up")}},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "rtcroom REST API", "version": rtcroom.__version__,
                 "description": "Rooms, participants and tracks, shaped like Twilio Video v1. "
                                "Parameters are form-encoded; authenticate with HTTP Basic "
                                "(API key SID, API key secret)."},
        "components": {"schemas": schemas,
                       "securitySchemes": {"apiKey": {"type": "http", "scheme": "basic"}}},
        "security": [{"apiKey": []}],
        "paths": paths,
    }
