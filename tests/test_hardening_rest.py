"""Security review of the REST API: schemathesis against the server's own /openapi.json (every
operation, with auth: no server error, responses as documented, invalid input refused), input
validation of every parameter, and no data across rooms or participants.

``RTCROOM_SCHEMATHESIS_EXAMPLES`` sets the examples per operation (CI: 25)."""

from __future__ import annotations

import base64
import itertools
import os
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from hardening import harness
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from rtcroom.server.openapi import openapi_document
from serverutil import API_KEY_SECRET, API_KEY_SID, joined, running_server

EXAMPLES = int(os.environ.get("RTCROOM_SCHEMATHESIS_EXAMPLES", "25"))
AUTH = {"Authorization": "Basic " + base64.b64encode(
    f"{API_KEY_SID}:{API_KEY_SECRET}".encode()).decode()}
# Valid requests must be answered as documented. Invalid ones must not break the server, but
# are not all refused: like Twilio, the API ignores parameters it does not know (which
# schemathesis's negative mode counts as invalid); the refusals are tested one by one below.
CHECKS = {
    schemathesis.GenerationMode.POSITIVE: [schemathesis.checks.not_a_server_error,
                                           schemathesis.checks.status_code_conformance,
                                           schemathesis.checks.content_type_conformance,
                                           schemathesis.checks.response_schema_conformance],
    schemathesis.GenerationMode.NEGATIVE: [schemathesis.checks.not_a_server_error,
                                           schemathesis.checks.content_type_conformance],
}


def test_schemathesis_every_operation() -> None:
    schema = schemathesis.openapi.from_dict(openapi_document())
    with harness(media=False, max_rooms=100_000) as h:
        assert h.server is not None
        base = h.server.http_url
        # a room with a participant, so fetches by name and identity find something
        requests.post(f"{base}/v1/Rooms", data={"UniqueName": "room"}, headers=AUTH, timeout=10)
        session = requests.Session()
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 10
        calls = 0
        for operation, mode in itertools.product(operations, schemathesis.GenerationMode):
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                nonlocal calls
                case.call_and_validate(base_url=base, session=session, headers=AUTH,
                                       checks=CHECKS[case.meta.generation.mode])
                calls += 1

            try:
                run()
            except Unsatisfiable:
                # nothing about this operation can be invalid (string path parameters only)
                assert mode == schemathesis.GenerationMode.NEGATIVE
        print(f"\nschemathesis: {calls} calls over {len(operations)} operations, positive and "
              "negative")
        assert h.errors.records == []


# --- validation of every parameter, directly -----------------------------------------------

@pytest.mark.parametrize(("method", "path", "data", "code"), [
    ("GET", "/v1/Rooms?Status=bogus", None, 20001),
    ("GET", "/v1/Rooms?PageSize=0", None, 20001),
    ("GET", "/v1/Rooms?PageSize=1001", None, 20001),
    ("GET", "/v1/Rooms?PageSize=ten", None, 20001),
    ("GET", "/v1/Rooms/room/Participants?Status=gone", None, 20001),
    ("POST", "/v1/Rooms", {"Type": "conference"}, 53108),
    ("POST", "/v1/Rooms", {"MaxParticipants": "0"}, 53107),
    ("POST", "/v1/Rooms", {"MaxParticipants": "many"}, 53107),
    ("POST", "/v1/Rooms", {"UniqueName": "a/b"}, 53102),
    ("POST", "/v1/Rooms", {"UniqueName": "x" * 129}, 53101),
    ("POST", "/v1/Rooms/room", {"Status": "in-progress"}, 53112),
    ("POST", "/v1/Rooms/room/Participants/alice", {"Status": "connected"}, 20001),
])
async def test_invalid_parameters_refused_with_a_code(method: str, path: str,
                                                       data: dict[str, str] | None,
                                                       code: int) -> None:
    async with running_server() as server, aiohttp.ClientSession(headers=AUTH) as http:
        _alice, _, cm = await joined(server, "alice")
        try:
            async with http.request(method, server.http_url + path, data=data) as resp:
                body = await resp.json()
                assert (resp.status, body["code"]) == (400, code), body
        finally:
            await cm.__aexit__(None, None, None)


async def test_no_data_across_rooms_or_participants() -> None:
    tracks = [{"id": "v1", "kind": "video", "name": "cam"}]
    async with running_server() as server, aiohttp.ClientSession(headers=AUTH) as http:
        _a, a_connected, a_cm = await joined(server, "alice", room="one", tracks=tracks)
        _b, b_connected, b_cm = await joined(server, "bob", room="two")
        try:
            alice_sid = a_connected["participant"]["sid"]
            [track] = a_connected["published"]["tracks"]

            async def status(path: str) -> int:
                async with http.get(server.http_url + path) as resp:
                    return resp.status

            # alice, by SID or identity, through room two: not found
            assert await status(f"/v1/Rooms/two/Participants/{alice_sid}") == 404
            assert await status("/v1/Rooms/two/Participants/alice") == 404
            assert await status(f"/v1/Rooms/two/Participants/{alice_sid}/PublishedTracks") \
                == 404
            # alice's track through bob: not found
            bob_sid = b_connected["participant"]["sid"]
            assert await status(f"/v1/Rooms/two/Participants/{bob_sid}/PublishedTracks/"
                                f"{track['sid']}") == 404
            # room two's participant list holds bob only
            async with http.get(server.http_url + "/v1/Rooms/two/Participants") as resp:
                assert [p["identity"] for p in (await resp.json())["participants"]] == ["bob"]
            # and through the right room alice's track is found (the 404s above are not a
            # route that never answers)
            assert await status(f"/v1/Rooms/one/Participants/{alice_sid}/PublishedTracks/"
                                f"{track['sid']}") == 200
        finally:
            await b_cm.__aexit__(None, None, None)
            await a_cm.__aexit__(None, None, None)
