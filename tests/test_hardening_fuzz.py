"""Signaling fuzz: hypothesis drives hostile clients (raw text, binary, JSON of any shape, frame
envelopes, protocol messages with out-of-order revisions, huge and invalid SDP, unknown track
SIDs, another room's track SIDs, peer connection ids and sessions, floods) into a running
server while a real peer-to-peer pair in another room exchanges video.

It passes when the server logged no error and left no exception unretrieved, still serves, and
the pair stayed connected and kept receiving frames. ``RTCROOM_FUZZ_EXAMPLES`` sets how many
hypothesis examples run (each one connection carrying up to 40 inputs); CI runs a quick 150.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import aiohttp
import pytest
from hardening import Harness, harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serverutil import connect_body, token

EXAMPLES = int(os.environ.get("RTCROOM_FUZZ_EXAMPLES", "150"))

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12)
# A well-formed offer (audio, video, data; candidates on a dead loopback port) for the fuzz to
# mutate: line by line it reaches deeper into the server's SDP handling (aiortc's parser and
# negotiation, in group rooms) than random text does.
OFFER = [
    "v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE 0 1 2",
    "a=msid-semantic:WMS *", "m=audio 9 UDP/TLS/RTP/SAVPF 111 0", "c=IN IP4 127.0.0.1",
    "a=sendrecv", "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level", "a=mid:0", "a=msid:s a1",
    "a=rtcp-mux", "a=ssrc:1001 cname:c", "a=rtpmap:111 opus/48000/2", "a=rtpmap:0 PCMU/8000",
    "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", "a=end-of-candidates",
    "a=ice-ufrag:abcd", "a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "c=IN IP4 127.0.0.1", "a=sendrecv", "a=mid:1",
    "a=msid:s v1", "a=rtcp-mux", "a=ssrc-group:FID 2001 2002", "a=ssrc:2001 cname:c",
    "a=ssrc:2002 cname:c", "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack",
    "a=rtcp-fb:96 nack pli", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
    "a=ice-ufrag:abcd", "a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 127.0.0.1", "a=mid:2",
    "a=sctp-port:5000", "a=max-message-size:65536", "a=ice-ufrag:abcd",
    "a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa", "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
    "a=setup:actpass"]


def mutated_offer(drop: set[int], edits: list[tuple[int, str]]) -> str:
    lines = [line for i, line in enumerate(OFFER) if i not in drop]
    for at, text in edits:
        at %= len(lines)
        key = lines[at].split(":", 1)[0]
        lines[at] = f"{key}:{text}" if text[:1] != "\n" else text[1:]
    return "\r\n".join(lines) + "\r\n"


OFFERS = st.builds(mutated_offer, st.sets(st.integers(0, len(OFFER) - 1), max_size=4),
                   st.lists(st.tuples(st.integers(0, 10_000), st.text(max_size=30)),
                            max_size=3))
SESSION = "$SESSION"  # replaced by the fuzzing connection's own session, once it has one
LINK = "$LINK"  # replaced by the id of its peer connection with room fuzz's resident, if any


def strategies(media_ids: list[str], media_sessions: list[str]) -> st.SearchStrategy[Any]:
    """One input: a frame to send as text or bytes."""
    ids = (st.sampled_from([LINK, LINK, *media_ids]) | st.text(max_size=12)
           | st.sampled_from(["a1", "v1"]))
    sessions = st.sampled_from([SESSION, *media_sessions]) | st.text(max_size=12)
    sdp = (st.sampled_from(["", "v=0\r\n", "garbage", "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"])
           | st.text(max_size=200) | OFFERS | OFFERS
           | st.integers(0, 900_000).map(lambda n: "v=0\r\na=x:" + "s" * n + "\r\n"))
    track = st.fixed_dictionaries(
        {"id": ids, "kind": st.sampled_from(["audio", "video", "data", "bogus"]) | JSON,
         "name": st.text(max_size=10) | JSON},
        optional={"enabled": st.booleans() | JSON,
                  "priority": st.sampled_from(["low", "standard", "high", "x"])})
    participant = st.fixed_dictionaries(
        {"revision": st.integers(-3, 10) | st.integers() | JSON,
         "tracks": st.lists(track, max_size=6) | JSON})
    description = st.fixed_dictionaries(
        {"type": st.sampled_from(["offer", "answer", "rollback", "create-offer", "x"]) | JSON,
         "sdp": sdp | JSON, "revision": st.integers(-3, 1000) | JSON})
    ice = st.fixed_dictionaries({"candidates": st.lists(st.fixed_dictionaries(
        {"candidate": st.text(max_size=60)}), max_size=3) | JSON,
        "revision": st.integers(-3, 100), "ufrag": st.text(max_size=8)})
    peer_connection = st.fixed_dictionaries(
        {"id": ids}, optional={"description": description | JSON, "ice": ice | JSON})
    tokens = st.sampled_from([token("fuzz-a", "fuzz"), token("fuzz-b", "fuzz"),
                              token("fuzz-c", "media-not"), "x.y.z", ""]) | st.text(max_size=20)
    update = st.fixed_dictionaries(
        {"type": st.just("update"), "session": sessions},
        optional={"participant": participant | JSON,
                  "peer_connections": st.lists(peer_connection, max_size=3) | JSON,
                  "bandwidth_profile": JSON, "version": st.integers(-1, 3) | JSON})
    connect = st.builds(lambda tok, name, p: {**connect_body(tok, name), "participant": p},
                        tokens, st.sampled_from(["fuzz", "media", ""]) | st.text(max_size=8),
                        participant | JSON)
    sync = st.fixed_dictionaries({"type": st.just("sync"), "version": st.integers(1, 3),
                                  "session": sessions, "token": tokens,
                                  "participant": participant | JSON})
    # Well-formed but for the SDP: most inputs end the session (an invalid message is fatal),
    # so these are what carries mutated offers into the server's negotiation.
    offer_update = st.fixed_dictionaries({
        "type": st.just("update"), "session": st.just(SESSION),
        "peer_connections": st.lists(st.fixed_dictionaries(
            {"id": ids, "description": st.fixed_dictionaries(
                {"type": st.just("offer"), "sdp": OFFERS, "revision": st.integers(1, 50)})}),
            min_size=1, max_size=2)})
    body = (update | update | update | offer_update | offer_update | connect | sync
            | st.fixed_dictionaries({"type": st.sampled_from(["disconnect", "ice"])},
                                    optional={"token": tokens, "session": sessions})
            | st.dictionaries(st.text(max_size=8), JSON, max_size=4)
            | st.fixed_dictionaries({"type": st.text(max_size=10)}))
    frame = (st.builds(lambda b: {"type": "msg", "body": b}, body | JSON)
             | st.fixed_dictionaries({"type": st.sampled_from(["hello", "welcome", "heartbeat",
                                                               "bye", "bad", "busy", "x"])},
                                     optional={"id": JSON, "timeout": JSON, "version": JSON,
                                               "body": body | JSON})
             | JSON)
    return (frame.map(json.dumps)
            | st.text(max_size=200)
            | st.binary(max_size=200))


async def fuzz_connection(h: Harness, join: bool, inputs: list[Any]) -> int:
    """One hostile client: maybe join room ``fuzz`` properly first, then send ``inputs``."""
    assert h.server is not None
    session, link = "", ""
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(h.server.url, max_msg_size=0) as ws:

        async def drain() -> None:
            nonlocal session, link
            async for m in ws:
                if m.type == aiohttp.WSMsgType.TEXT and '"connected"' in m.data:
                    body = json.loads(m.data)["body"]
                    session = body.get("session", "")
                    link = next((pc["id"] for pc in body.get("peer_connections") or []), "")

        reader = asyncio.create_task(drain())
        if join:
            await ws.send_str(json.dumps({"type": "hello", "id": "f", "timeout": 3000,
                                          "version": 2,
                                          "body": connect_body(token("fuzz-a", "fuzz"), "fuzz")}))
            for _ in range(50):
                if session or ws.closed:
                    break
                await asyncio.sleep(0.01)
        sent = 0
        for item in inputs:
            if ws.closed:
                break
            try:
                if isinstance(item, bytes):
                    await ws.send_bytes(item)
                else:
                    await ws.send_str(item.replace(SESSION, session).replace(LINK, link))
            except ConnectionError:
                break
            sent += 1
        await ws.close()
        reader.cancel()
    return sent


async def flood(h: Harness, connections: int, messages: int) -> int:
    """``connections`` joined clients sending updates with new revisions as fast as they can."""
    assert h.server is not None

    async def one(i: int) -> int:
        async with aiohttp.ClientSession() as http, http.ws_connect(h.server.url) as ws:
            await ws.send_str(json.dumps({"type": "hello", "id": "f", "timeout": 3000,
                                          "version": 2, "body": connect_body(
                                              token(f"flood-{i}", "fuzz"), "fuzz")}))
            session = ""
            async for m in ws:
                body = json.loads(m.data).get("body") or {}
                if body.get("type") == "connected":
                    session = body["session"]
                    break
            sent = 0
            for n in range(messages):
                if ws.closed:
                    break
                try:
                    await ws.send_str(json.dumps({"type": "msg", "body": {
                        "type": "update", "session": session,
                        "participant": {"revision": n + 2, "tracks": []}}}))
                except ConnectionError:
                    break
                sent += 1
            return sent

    return sum(await asyncio.gather(*(one(i) for i in range(connections))))


def media_ids(h: Harness) -> tuple[list[str], list[str]]:
    """The media room's track SIDs, track ids, peer connection ids and sessions."""
    assert h.server is not None

    async def collect() -> tuple[list[str], list[str]]:
        room = await h.server.service.store.find_in_progress("media")
        assert room is not None
        ids = list(room.links) + [room.sid]
        sessions = []
        for p in room.participants.values():
            ids += [p.sid] + [t.sid for t in p.tracks.values()] + list(p.tracks)
            sessions.append(p.session)
        return ids, sessions

    return h.run(collect())


async def resident(h: Harness, stop: asyncio.Event) -> int:
    """A participant of room ``fuzz`` that every fuzzing participant is linked with, so their
    SDP and ICE (huge, invalid, out of order) is relayed to a real socket; it reads all of it
    and counts the frames."""
    assert h.server is not None
    frames = 0
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(h.server.url, max_msg_size=0) as ws:
        await ws.send_str(json.dumps({"type": "hello", "id": "r", "timeout": 3000, "version": 2,
                                      "body": connect_body(token("resident", "fuzz"), "fuzz")}))
        while not stop.is_set():
            try:
                m = await ws.receive(timeout=1.0)
            except asyncio.TimeoutError:
                m = None
            if m is not None and m.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"the resident lost its connection: {m}")
            frames += m is not None
            await ws.send_str('{"type":"heartbeat"}')
    return frames


@pytest.mark.parametrize("room_type", ["peer-to-peer", "group"])
def test_signaling_fuzz_leaves_server_and_other_rooms_unharmed(room_type: str) -> None:
    with harness(media=True, max_connections_per_ip=1000, room_type=room_type) as h:
        media = h.media
        assert media is not None
        ids, sessions = media_ids(h)
        stop = asyncio.Event()
        relayed = asyncio.run_coroutine_threadsafe(resident(h, stop), h.loop)
        totals = {"inputs": 0, "connections": 0}
        before, t0 = media.frames, time.monotonic()

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(join=st.booleans(), inputs=st.lists(strategies(ids, sessions), max_size=40))
        def example(join: bool, inputs: list[Any]) -> None:
            totals["inputs"] += h.run(fuzz_connection(h, join, inputs))
            totals["connections"] += 1

        example()
        totals["inputs"] += h.run(flood(h, 5, 2000), timeout=120)
        elapsed = time.monotonic() - t0
        during = media.frames - before
        h.loop.call_soon_threadsafe(stop.set)
        resident_frames = relayed.result(30)
        print(f"\nfuzz: {totals['inputs']} inputs on {totals['connections']} connections "
              f"+ 5 flooding, {elapsed:.1f} s; the media pair received {during} frames "
              f"({during / elapsed:.1f}/s); room fuzz's resident received {resident_frames} "
              "frames and kept its connection")
        assert h.errors.records == []
        assert media.connected
        assert during > 0
        # still flowing after the fuzz, and the server still serves a newcomer
        after = media.frames
        h.run(asyncio.sleep(1.0))
        assert media.frames > after

        async def health() -> dict[str, Any]:
            assert h.server is not None
            async with aiohttp.ClientSession() as http, \
                    http.get(h.server.http_url + "/health") as resp:
                return dict(await resp.json())

        assert h.run(health())["status"] == "ok"
        assert h.errors.records == []


@pytest.mark.parametrize("drop", ["a=ice-ufrag:", "a=ice-pwd:", "a=rtcp-mux"])
def test_group_offer_the_sfu_cannot_apply_ends_only_that_session(drop: str) -> None:
    """An offer aiortc refuses ends its sender's session with 53403; the room's media goes on."""
    sdp = "\r\n".join(line for line in OFFER if not line.startswith(drop)) + "\r\n"
    with harness(media=True, room_type="group") as h:
        media = h.media
        assert media is not None and h.server is not None
        url = h.server.url

        async def offer() -> list[dict[str, Any]]:
            async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
                body = connect_body(token("bad-sdp", "media"), "media")
                body["peer_connections"] = [{"id": "pc", "description": {
                    "type": "offer", "sdp": sdp, "revision": 1}}]
                await ws.send_str(json.dumps({"type": "hello", "id": "h", "timeout": 3000,
                                              "version": 2, "body": body}))
                bodies = []
                async for m in ws:
                    if m.type == aiohttp.WSMsgType.TEXT:
                        bodies.append(json.loads(m.data).get("body") or {})
                return bodies

        bodies = h.run(offer(), timeout=30)
        errors = [b for b in bodies if b.get("type") == "error"]
        assert [e["code"] for e in errors] == [53403], bodies
        assert "remote media description" in errors[0]["message"]

        async def identities() -> set[str]:
            room = await h.server.service.store.find_in_progress("media")
            assert room is not None
            return {p.identity for p in room.participants.values() if p.active}

        assert h.run(identities()) == {"alice", "bob"}
        before = media.frames
        h.run(asyncio.sleep(1.0))
        assert media.connected and media.frames > before
        assert h.errors.records == []
