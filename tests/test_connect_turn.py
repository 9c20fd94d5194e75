"""Relay-only media through a real TURN server (Debian's coturn) on 127.0.0.1: the server hands
out the TURN credentials with ``connected``, and ``ice_transport_policy="relay"`` makes both
clients use relayed candidates only."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import rtcroom
from rtcroom.signaling.messages import IceServer
from system_packages import ensure_command
from serverutil import loopback_ice, running_server, token, wait_until  # noqa: F401
from test_connect_p2p import count_frames, subscribed_tracks

pytestmark = pytest.mark.usefixtures("loopback_ice")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TURN_SECRET = "turn-rest-secret-for-tests"


async def start_coturn(tmp_path: Path, auth: list[str]) -> tuple[asyncio.subprocess.Process,
                                                                 int, Path]:
    port = free_udp_port()
    log = tmp_path / "turn.log"
    proc = await asyncio.create_subprocess_exec(
        ensure_command("turnserver", "coturn"), "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
        f"--listening-port={port}", "--min-port=49160", "--max-port=49360", *auth,
        "--realm=rtcroom", "--allow-loopback-peers",
        "--no-cli", "--no-tls", "--no-dtls", "--no-tcp-relay", f"--log-file={log}",
        "--simple-log", "--verbose",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await wait_until(lambda: log.exists() and "listener opened" in log.read_text(), 20)
    except BaseException:
        proc.terminate()
        await proc.wait()
        raise
    return proc, port, log


@pytest.fixture
async def turn(tmp_path: Path) -> AsyncIterator[tuple[IceServer, Path]]:
    """coturn with one long-term user."""
    proc, port, log = await start_coturn(tmp_path, ["--lt-cred-mech", "--user=rtc:room"])
    try:
        yield IceServer(urls=[f"turn:127.0.0.1:{port}?transport=udp"], username="rtc",
                        credential="room"), log
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.parametrize("from_server", [True, False], ids=["server-ice", "client-ice"])
async def test_relay_only_media_through_coturn(turn: tuple[IceServer, Path],
                                               from_server: bool) -> None:
    ice_server, log = turn
    # The TURN server comes either from the room server (with `connected`) or from the
    # client's own ice_servers option, which then overrides whatever the server hands out.
    server_ice = (ice_server,) if from_server else ()
    client_ice = {} if from_server else {"ice_servers": [ice_server.to_wire()]}
    async with running_server(ice_servers=server_ice) as server:
        options = {"ice_transport_policy": "relay", "audio": True,
                   "video": {"width": 160, "height": 120, "frame_rate": 10}, **client_ice}
        alice = await rtcroom.connect(token("alice"), server=server.url, name="room", **options)
        bob = await rtcroom.connect(token("bob"), server=server.url, name="room", **options)
        try:
            await wait_until(lambda: len(subscribed_tracks(bob).get("alice", {})) == 2, 60)
            await wait_until(lambda: len(subscribed_tracks(alice).get("bob", {})) == 2, 60)
            assert await count_frames(subscribed_tracks(bob)["alice"]["audio"], 10) == 10
            assert await count_frames(subscribed_tracks(alice)["bob"]["video"], 3) == 3
        finally:
            await bob.disconnect()
            await alice.disconnect()
    text = log.read_text()
    # Every peer connection allocated a relay and sent media through it.
    assert text.count("ALLOCATE processed, success") >= 4
    assert "peer 127.0.0.1" in text


async def test_server_mints_turn_credentials_from_a_rest_secret(tmp_path: Path) -> None:
    proc, port, log = await start_coturn(tmp_path, ["--use-auth-secret",
                                                    f"--static-auth-secret={TURN_SECRET}"])
    try:
        bare = IceServer(urls=[f"turn:127.0.0.1:{port}?transport=udp"])
        async with running_server(ice_servers=(bare,), turn_secret=TURN_SECRET) as server:
            options = {"ice_transport_policy": "relay", "audio": True}
            alice = await rtcroom.connect(token("alice"), server=server.url, name="room",
                                          **options)
            bob = await rtcroom.connect(token("bob"), server=server.url, name="room", **options)
            try:
                await wait_until(lambda: len(subscribed_tracks(bob).get("alice", {})) == 1, 60)
                assert await count_frames(subscribed_tracks(bob)["alice"]["audio"], 10) == 10
                [handed_out] = bob._signaling._server_ice  # type: ignore[union-attr]
                expires, identity = (handed_out.username or "").split(":")
                assert identity == "bob" and int(expires) > 0
            finally:
                await bob.disconnect()
                await alice.disconnect()
    finally:
        proc.terminate()
        await proc.wait()
    assert "ALLOCATE processed, success" in log.read_text()
