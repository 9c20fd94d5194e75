"""Explicit subscriptions in group rooms: the REST Subscribe Rules API changes what a participant
receives while connected; the SFU renegotiates its connection without dropping the tracks it
keeps. Plus the rules' evaluation (rooms/subscriberules.py) as plain calls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
import rtcroom
from loopback_peers import PatternTrack, ToneTrack
from rtcroom.errors import TwilioError
from rtcroom.server.rooms.subscriberules import (
    INCLUDE_ALL,
    SubscribeRule,
    parse_subscribe_rules,
    subscribed,
)
from serverutil import loopback_ice, running_server, token, wait_until  # noqa: F401
from test_group_room import join, received, tone_frequency
from test_server_rest import call

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]

# (publisher sid, identity, track sid, name, kind, priority)
TRACKS = [("PA1", "alice", "MTa1", "mic", "audio", "standard"),
          ("PA1", "alice", "MTv1", "cam", "video", "high"),
          ("PA2", "bob", "MTa2", "mic", "audio", "standard"),
          ("PA2", "bob", "MTd2", "chat", "data", "low")]


@pytest.mark.parametrize("rules, expected", [
    ([{"type": "include", "all": True}], {"MTa1", "MTv1", "MTa2", "MTd2"}),
    ([{"type": "exclude", "all": True}], set()),
    ([{"type": "include", "publisher": "alice", "kind": "audio"}], {"MTa1"}),
    ([{"type": "include", "publisher": "PA2"}], {"MTa2", "MTd2"}),
    ([{"type": "include", "all": True}, {"type": "exclude", "kind": "video"}],
     {"MTa1", "MTa2", "MTd2"}),
    ([{"type": "exclude", "all": True}, {"type": "include", "track": "mic"}], {"MTa1", "MTa2"}),
    ([{"type": "include", "track": "MTv1"}, {"type": "include", "priority": "low"}],
     {"MTv1", "MTd2"}),
    # Later rules win: an include after an exclude of the same track brings it back.
    ([{"type": "exclude", "kind": "audio"}, {"type": "include", "publisher": "bob"}],
     {"MTa2", "MTd2"}),
])
def test_rules_apply_in_order(rules: list[dict[str, Any]], expected: set[str]) -> None:
    assert subscribed(parse_subscribe_rules(json.dumps(rules)), TRACKS) == expected


@pytest.mark.parametrize("rules, detail", [
    ("[]", "empty"),
    ("not json", "not JSON"),
    ('{"type": "include"}', "array"),
    (json.dumps([{"type": "include", "all": True}] * 21), "at most 20"),
    ('[{"all": true}]', "type"),
    ('[{"type": "include", "all": false}]', "'all' must be true"),
    ('[{"type": "include", "all": true, "kind": "audio"}]', "no other filter"),
    ('[{"type": "include", "kind": "screen"}]', "kind must be one of"),
    ('[{"type": "include", "priority": "urgent"}]', "priority must be one of"),
    ('[{"type": "include"}]', "matches nothing"),
    ('[{"type": "include", "publisher": 5}]', "non-empty string"),
    ('[{"type": "include", "colour": "red"}]', "unknown field"),
    ('["include"]', "not an object"),
])
def test_malformed_rules_are_refused_with_53215(rules: str, detail: str) -> None:
    with pytest.raises(TwilioError) as info:
        parse_subscribe_rules(rules)
    assert info.value.code == 53215 and detail in info.value.message


class FrameCounter:
    """Reads a remote track in the background, counting frames (and so keeping its queue
    drained)."""

    def __init__(self, track: Any) -> None:
        self.frames = 0
        self.ended = False
        self._task = asyncio.ensure_future(self._run(track))

    async def _run(self, track: Any) -> None:
        async for _ in track.frames():
            self.frames += 1
        self.ended = True

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_rest_subscribe_rules_change_what_a_participant_receives() -> None:
    async with running_server(room_type="group") as server, aiohttp.ClientSession() as http:
        alice = await join(server, "alice", tracks=[
            rtcroom.LocalAudioTrack(ToneTrack(500)), rtcroom.LocalVideoTrack(PatternTrack())])
        bob = await join(server, "bob", tracks=[
            rtcroom.LocalAudioTrack(ToneTrack(900)), rtcroom.LocalVideoTrack(PatternTrack())])
        carol = await join(server, "carol", tracks=[], automatic_subscription=False)
        rooms = [alice, bob, carol]
        counters: list[FrameCounter] = []
        url = (f"{server.http_url}/v1/Rooms/{carol.sid}/Participants/"
               f"{carol.local_participant.sid}/SubscribeRules")
        try:
            status, body = await call(http, "GET", url)
            assert status == 200
            assert body["rules"] == [{"type": "exclude", "all": True, "publisher": None,
                                      "track": None, "kind": None, "priority": None}]
            await wait_until(lambda: len(carol.participants) == 2, 30)
            assert received(carol) == {}

            # One publisher's audio only.
            rules = [{"type": "include", "publisher": "alice", "kind": "audio"}]
            status, body = await call(http, "POST", url, data={"Rules": json.dumps(rules)})
            assert status == 200 and body["rules"][0]["publisher"] == "alice"
            await wait_until(lambda: set(received(carol)) == {"alice"}, 30)
            alice_audio = received(carol)["alice"]["audio"]
            assert list(received(carol)["alice"]) == ["audio"]
            assert abs(await asyncio.wait_for(tone_frequency(alice_audio), 20) - 500) < 10
            counters.append(FrameCounter(alice_audio))
            await wait_until(lambda: counters[0].frames > 10, 20)

            # Everything: the audio already received keeps flowing through the renegotiation.
            status, _ = await call(http, "POST", url,
                                   data={"Rules": json.dumps([{"type": "include", "all": True}])})
            assert status == 200
            await wait_until(lambda: all(len(received(carol).get(p, {})) == 2
                                         for p in ("alice", "bob")), 30)
            before = counters[0].frames
            await wait_until(lambda: counters[0].frames > before + 25, 20)
            assert received(carol)["alice"]["audio"] is alice_audio and not counters[0].ended
            assert abs(await asyncio.wait_for(tone_frequency(received(carol)["bob"]["audio"]),
                                              20) - 900) < 10
            status, body = await call(http, "GET", url)
            assert [r["all"] for r in body["rules"]] == [True]
            listed = await call(http, "GET", url.replace("SubscribeRules", "SubscribedTracks"))
            assert len(listed[1]["subscribed_tracks"]) == 4

            # Audio only: the videos go, the audios stay.
            rules = [{"type": "include", "all": True}, {"type": "exclude", "kind": "video"}]
            status, _ = await call(http, "POST", url, data={"Rules": json.dumps(rules)})
            assert status == 200
            await wait_until(lambda: all(list(received(carol).get(p, {})) == ["audio"]
                                         for p in ("alice", "bob")), 30)
            before = counters[0].frames
            await wait_until(lambda: counters[0].frames > before + 25, 20)
            assert received(carol)["alice"]["audio"] is alice_audio
            # The SFU forwards carol the audios only: the video legs are gone, their m-lines
            # inactive (kept for reuse).
            peer = server.service.media.rooms[carol.sid].peers[carol.local_participant.sid]
            audio_sids = {pub.track_sid for room in (alice, bob)
                          for pub in room.local_participant.audio_tracks.values()}
            assert set(peer.legs) == audio_sids
            assert peer.pc is not None
            assert sorted((t.kind, t.currentDirection) for t in peer.pc.getTransceivers()) == [
                ("audio", "sendonly"), ("audio", "sendonly"),
                ("video", "inactive"), ("video", "inactive")]

            # A malformed set changes nothing.
            status, body = await call(http, "POST", url, data={"Rules": "[]"})
            assert status == 400 and body["code"] == 53215
            status, body = await call(http, "GET", url)
            assert [r["type"] for r in body["rules"]] == ["include", "exclude"]
        finally:
            for counter in counters:
                await counter.stop()
            for room in rooms:
                await room.disconnect()


async def test_subscribe_rules_are_refused_in_peer_to_peer_rooms() -> None:
    async with running_server(room_type="peer-to-peer") as server, \
            aiohttp.ClientSession() as http:
        alice = await join(server, "alice", tracks=[])
        try:
            url = (f"{server.http_url}/v1/Rooms/{alice.sid}/Participants/alice/SubscribeRules")
            status, body = await call(http, "POST", url,
                                      data={"Rules": json.dumps([{"type": "include",
                                                                  "kind": "audio"}])})
            assert status == 400 and body["code"] == 53117
            status, body = await call(http, "GET", url)
            assert status == 200 and body["rules"] == [INCLUDE_ALL.to_json()]
        finally:
            await alice.disconnect()


def test_rule_to_json_names_every_filter() -> None:
    assert SubscribeRule("include", kind="audio").to_json() == {
        "type": "include", "all": None, "publisher": None, "track": None, "kind": "audio",
        "priority": None}
