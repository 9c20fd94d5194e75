"""Signaling framing and RSP messages: round trips, and rejections that name the bad field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rtcroom.signaling import MessageFormatError
from rtcroom.signaling.framing import Busy, Hello, Msg, Welcome, encode_frame, parse_frame
from rtcroom.signaling.messages import (
    ClientUpdate,
    Connect,
    IceServer,
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
    TrackState,
    parse_client_message,
    parse_server_message,
)

# What twilio-video.js 2.36 sends as its first connect (shape taken from its own code).
TWILIO_CONNECT = {
    "name": "room", "participant": {"revision": 1, "tracks": [
        {"enabled": True, "id": "9f1a", "kind": "audio", "name": "mic", "priority": "standard"}]},
    "peer_connections": [{"id": "pc1", "description": {"type": "offer", "sdp": "v=0\r\n",
                                                       "revision": 1}}],
    "type": "connect", "version": 2, "ice_servers": "acquire",
    "publisher": {"name": "twilio-video.js", "sdk_version": "2.36.0", "user_agent": "x"},
    "media_signaling": {"active_speaker": {"transports": [{"type": "data-channel"}]}},
    "subscribe": {"rules": [{"type": "include", "all": True}], "revision": 1},
    "format": "unified", "token": "jwt",
}


def test_twilio_connect_parses_and_round_trips() -> None:
    message = parse_client_message(TWILIO_CONNECT)
    assert isinstance(message, Connect)
    assert message.participant.tracks[0].kind == "audio"
    assert message.peer_connections[0].description is not None
    assert parse_client_message(message.to_wire()) == message


@pytest.mark.parametrize("change, field", [
    ({"version": 1}, "connect.version"),
    ({"token": 5}, "connect.token must be a string"),
    ({"participant": {"revision": "1", "tracks": []}}, "connect.participant.revision"),
    ({"participant": {"revision": 1, "tracks": [{"id": "a", "kind": "smell", "name": "n"}]}},
     "connect.participant.tracks[0].kind"),
    ({"participant": {"revision": 1, "tracks": [{"id": "a", "kind": "data", "name": "n"},
                                                {"id": "a", "kind": "data", "name": "m"}]}},
     "duplicate track id"),
    ({"peer_connections": [{"id": "p", "description": {"type": "offer", "revision": 1}}]},
     "connect.peer_connections[0].description.sdp is required"),
    ({"peer_connections": [5]}, "connect.peer_connections[0] must be an object"),
])
def test_bad_connect_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(MessageFormatError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_client_message({**TWILIO_CONNECT, **change})


def test_unknown_and_untyped_messages_are_rejected() -> None:
    with pytest.raises(MessageFormatError, match="unknown client message type 'dance'"):
        parse_client_message({"type": "dance"})
    with pytest.raises(MessageFormatError, match="body.type is required"):
        parse_client_message({})
    with pytest.raises(MessageFormatError, match="must be a boolean"):
        parse_client_message({"type": "update", "session": "s", "participant": {
            "revision": 2, "tracks": [{"id": "a", "kind": "data", "name": "n", "enabled": 1}]}})


def test_connected_requires_what_the_sdk_reads_unguarded() -> None:
    good = RoomState(type="connected", session="s", sid="RM1", name="r",
                     participant=ParticipantInfo("PA1", "alice"), options={"session_timeout": 30})
    assert parse_server_message(good.to_wire()) == good
    body = good.to_wire()
    del body["options"]
    with pytest.raises(MessageFormatError, match="connected.options is required"):
        parse_server_message(body)
    body = good.to_wire()
    body["options"] = {}
    with pytest.raises(MessageFormatError, match="session_timeout is required"):
        parse_server_message(body)


names = st.text(min_size=1, max_size=12)
revisions = st.integers(min_value=0, max_value=2**31)


@st.composite
def room_states(draw: Any) -> RoomState:
    tracks = draw(st.lists(st.builds(RemoteTrackState, sid=names,
                                     kind=st.sampled_from(["audio", "video", "data"]),
                                     name=names, enabled=st.booleans(),
                                     priority=st.sampled_from(["low", "standard", "high"])),
                           max_size=3))
    return RoomState(
        type=draw(st.sampled_from(["update", "synced"])),
        participants=draw(st.lists(st.builds(
            RemoteParticipantState, sid=names, identity=names,
            state=st.sampled_from(["connected", "reconnecting", "disconnected"]),
            revision=revisions, tracks=st.just(tracks)), max_size=3)),
        peer_connections=draw(st.lists(st.builds(
            PeerConnectionState, id=names, description=st.builds(
                SessionDescription, type=st.sampled_from(["offer", "answer"]), revision=revisions,
                sdp=st.text(max_size=30))), max_size=2)),
        published=Published(draw(revisions), [PublishedTrack(id="a", sid="MT1")]),
        subscribed=Subscribed(draw(revisions), [SubscribedTrack(sid="MT1", id="a")]),
        ice_servers=[IceServer(urls=["turn:127.0.0.1:3478"], username="u", credential="p")],
    )


@given(room_states())
def test_server_messages_round_trip_through_json(state: RoomState) -> None:
    wire = json.loads(json.dumps(state.to_wire()))
    assert parse_server_message(wire) == state


@given(st.builds(ParticipantState, revision=revisions, tracks=st.lists(st.builds(
    TrackState, id=st.uuids().map(str), kind=st.sampled_from(["audio", "video", "data"]),
    name=names), max_size=4)))
def test_client_updates_round_trip(participant: ParticipantState) -> None:
    update = ClientUpdate(session="s", participant=participant)
    assert parse_client_message(json.loads(json.dumps(update.to_wire()))) == update


def test_frames_round_trip_and_reject_garbage() -> None:
    for frame in (Hello(id="x", timeout=5000, body={"type": "ice", "token": "t"}),
                  Welcome(4000), Msg({"type": "update"}), Busy(retryAfter=-1)):
        assert parse_frame(encode_frame(frame)) == frame
    with pytest.raises(MessageFormatError, match="not valid JSON"):
        parse_frame("{")
    with pytest.raises(MessageFormatError, match="must be a JSON object"):
        parse_frame("[1]")
    with pytest.raises(MessageFormatError, match="unknown frame type 'nope'"):
        parse_frame('{"type":"nope"}')
    with pytest.raises(MessageFormatError, match="hello.timeout must be positive"):
        parse_frame('{"type":"hello","id":"x","timeout":0,"version":2}')
    with pytest.raises(MessageFormatError, match="exceeds"):
        parse_frame("x" * (1 << 21))
