"""Join time: ``rtcroom.connect()`` until the Room is connected, on loopback, into a
peer-to-peer room that already has one participant. Target (issue 7): <= 300 ms.

This one is an absolute time, not a ratio: the target is one. Run with
``bash scripts/bench.sh -k join`` and put the median in the README.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import rtcroom
from rtcroom.accesstoken import AccessToken, VideoGrant
from rtcroom.server.app import start_server
from rtcroom.server.config import ServerConfig

ACCOUNT, KEY, SECRET = "AC" + "0" * 32, "SK" + "0" * 32, "benchmark-secret-0123456789abcdef"


def _token(identity: str) -> str:
    token = AccessToken(ACCOUNT, KEY, SECRET, identity=identity)
    token.add_grant(VideoGrant(room="bench"))
    return token.to_jwt()


def test_join_time(benchmark: Any) -> None:
    loop = asyncio.new_event_loop()
    config = ServerConfig(port=0, account_sid=ACCOUNT, api_key_sid=KEY, api_key_secret=SECRET,
                          room_type="peer-to-peer")  # what README's join time row measures
    server = loop.run_until_complete(start_server(config))
    host = loop.run_until_complete(rtcroom.connect(_token("host"), server=server.url,
                                                   name="bench"))
    names = (f"guest-{n}" for n in itertools.count())

    async def join_and_leave() -> None:
        room = await rtcroom.connect(_token(next(names)), server=server.url, name="bench")
        await room.disconnect()

    async def join() -> rtcroom.Room:
        return await rtcroom.connect(_token(next(names)), server=server.url, name="bench")

    rooms: list[rtcroom.Room] = []
    try:
        loop.run_until_complete(join_and_leave())  # warm up imports and codecs
        benchmark.group = "join"
        benchmark.pedantic(lambda: rooms.append(loop.run_until_complete(join())),
                           teardown=lambda: loop.run_until_complete(rooms.pop().disconnect()),
                           rounds=20, iterations=1)
    finally:
        for room in rooms:
            loop.run_until_complete(room.disconnect())
        loop.run_until_complete(host.disconnect())
        loop.run_until_complete(server.stop())
        loop.close()
