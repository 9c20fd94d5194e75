"""Faults: a participant's process frozen (SIGSTOP) or killed (SIGKILL), and the server
restarted under connected clients."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from typing import Any

import pytest
import rtcroom
from rtcroom import errors
from rtcroom.server.app import start_server
from serverutil import CONFIG, loopback_ice, running_server, token, wait_until  # noqa: F401

pytestmark = pytest.mark.usefixtures("loopback_ice")

PARTICIPANT = textwrap.dedent("""
    import asyncio, sys
    import rtcroom
    from rtcroom.aiortc_ext.ice import use_host_addresses

    async def main() -> None:
        with use_host_addresses(["127.0.0.1"]):
            room = await rtcroom.connect(sys.argv[1], server=sys.argv[2], name="room",
                                         audio=True, video=False)
            print("joined", room.local_participant.sid, flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
""")


async def start_participant(server: Any, identity: str) -> tuple[subprocess.Popen[str], str]:
    # Popen (not asyncio's subprocesses): the test needs the plain pid to signal and wait on.
    proc = subprocess.Popen([sys.executable, "-c", PARTICIPANT, token(identity),  # noqa: ASYNC220
                             server.url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
    assert line.startswith("joined PA"), line
    return proc, line.split()[1]


def states(room: rtcroom.Room) -> dict[str, str]:
    return {p.identity: p.state.value for p in room.participants.values()}


async def test_sigstop_noticed_by_heartbeats_then_removed_for_everyone() -> None:
    """A frozen process keeps its socket open: only the heartbeat timeout can notice it."""
    async with running_server(max_heartbeat_timeout_ms=1000, session_timeout=1.0) as server:
        alice = await rtcroom.connect(token("alice"), server=server.url, name="room")
        proc, sid = await start_participant(server, "frozen")
        try:
            await wait_until(lambda: states(alice).get("frozen") == "connected", 30)
            seen: list[str] = []
            alice.on("participant_reconnecting", lambda p: seen.append("reconnecting"))
            alice.on("participant_disconnected", lambda p: seen.append("disconnected"))
            os.kill(proc.pid, signal.SIGSTOP)
            # 3 missed heartbeats of 1 s, then the 1 s session grace; bounded well above that
            await wait_until(lambda: seen == ["reconnecting", "disconnected"], 30)
            room = await server.service.store.find_in_progress("room")
            assert [p.identity for p in room.active_participants()] == ["alice"]
            assert room.participants[sid].state == "disconnected"
        finally:
            proc.kill()
            proc.wait(10)
            await alice.disconnect()


async def test_sigkill_removed_for_everyone_and_media_between_the_others_goes_on() -> None:
    async with running_server(max_heartbeat_timeout_ms=1000, session_timeout=1.0) as server:
        alice = await rtcroom.connect(token("alice"), server=server.url, name="room",
                                      audio=False, video=True)
        bob = await rtcroom.connect(token("bob"), server=server.url, name="room",
                                    audio=False, video=False)
        proc, _sid = await start_participant(server, "doomed")
        try:
            for room in (alice, bob):
                await wait_until(lambda room=room: states(room).get("doomed") == "connected", 30)
            gone: list[str] = []
            for room in (alice, bob):
                room.on("participant_disconnected", lambda p: gone.append(p.identity))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            await wait_until(lambda: gone == ["doomed", "doomed"], 30)
            stored = await server.service.store.find_in_progress("room")
            assert sorted(p.identity for p in stored.active_participants()) == ["alice", "bob"]
            # alice's video still reaches bob
            [track] = [pub.track for p in bob.participants.values() for pub in p.tracks.values()
                       if p.identity == "alice" and pub.track is not None]
            got = 0
            async for _ in track.frames():
                got += 1
                if got == 5:
                    break
            assert alice.state.value == bob.state.value == "connected"
        finally:
            if proc.poll() is None:
                proc.kill()
            await bob.disconnect()
            await alice.disconnect()


async def test_server_restart_clients_fail_cleanly_with_a_code() -> None:
    """The room state lived in the stopped server's memory: a client cannot resume its session
    on the new one, so it ends with 53002 (session could not be resumed) or 53001 (the
    connection was lost for good), never hangs, and can join again."""
    server = await start_server(replace(CONFIG, session_timeout=2.0))
    port = server.port
    alice = await rtcroom.connect(token("alice"), server=server.url, name="room")
    ended: list[Any] = []
    alice.on("disconnected", lambda room, error: ended.append(error))
    await server.stop()
    server = await start_server(replace(CONFIG, port=port, session_timeout=2.0))
    try:
        await wait_until(lambda: len(ended) == 1, 60)
        assert isinstance(ended[0], errors.TwilioError)
        assert ended[0].code in (53001, 53002), ended[0]
        again = await rtcroom.connect(token("alice"), server=server.url, name="room")
        assert again.state.value == "connected"
        await again.disconnect()
    finally:
        await alice.disconnect()
        await server.stop()
