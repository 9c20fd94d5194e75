"""The rtcroom command, run as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import av
import pytest
import rtcroom
from rtcroom.accesstoken import verify_token

RTCROOM = [sys.executable, "-m", "rtcroom.cli"]


def env_with(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTCROOM_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env.update(extra)
    return env


async def run(*args: str, env: dict[str, str], timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*RTCROOM, *args, env=env,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


class Serving:
    """``rtcroom serve --port 0`` running until the block ends."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: Any = None
        self.url = ""
        self.banner: list[str] = []
        self.log = ""  # its stderr, once it has stopped

    async def __aenter__(self) -> Serving:
        self.proc = await asyncio.create_subprocess_exec(
            *RTCROOM, "serve", "--port", "0", env=self.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        while True:
            line = (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode()
            assert line, "rtcroom serve exited before it was ready"
            self.banner.append(line.rstrip("\n"))
            match = re.fullmatch(r"listening on (ws://127\.0\.0\.1:(\d+)/signaling)\n", line)
            if match:
                self.url = match.group(1)
                return self

    async def __aexit__(self, *exc: object) -> None:
        self.proc.terminate()
        await asyncio.wait_for(self.proc.wait(), 30)
        self.log = (await self.proc.stderr.read()).decode()


async def test_serve_without_credentials_creates_dev_ones_that_token_uses(tmp_path: Path) -> None:
    env = env_with(tmp_path)
    async with Serving(env) as server:
        assert any("rtcroom token --identity" in line for line in server.banner)
        saved = tmp_path / "config" / "rtcroom" / "dev-credentials.json"
        assert saved.exists() and (saved.stat().st_mode & 0o777) == 0o600
        code, out, err = await run("token", "--identity", "alice", "--room", "standup", env=env)
        assert code == 0 and err == ""
        jwt = out.strip()
        assert out == jwt + "\n" and jwt.count(".") == 2
        creds = json.loads(saved.read_text())
        claims = verify_token(jwt, creds["api_key_secret"], "standup")
        assert claims["grants"]["identity"] == "alice"
        # the server accepts it
        room = await rtcroom.connect(jwt, server=server.url, name="standup")
        assert room.local_participant.identity == "alice"
        await room.disconnect()
    assert server.proc.returncode == 0
    assert f"alice joined room standup ({room.sid})" in server.log
    assert "alice left room standup" in server.log


async def test_serve_and_token_use_the_env_vars(tmp_path: Path) -> None:
    env = env_with(tmp_path, RTCROOM_ACCOUNT_SID="AC" + "a" * 32,
                   RTCROOM_API_KEY_SID="SK" + "b" * 32, RTCROOM_API_KEY_SECRET="s" * 40,
                   RTCROOM_ROOM_TYPE="group")
    async with Serving(env) as server:
        assert not any("development" in line for line in server.banner)
        assert any("room type group" in line for line in server.banner)
        _, out, _ = await run("token", "--identity", "bob", "--room", "r", "--ttl", "60",
                                 env=env)
        claims = verify_token(out.strip(), "s" * 40, "r")
        assert claims["iss"] == "SK" + "b" * 32 and claims["exp"] - claims["nbf"] == 60
    assert not (tmp_path / "config" / "rtcroom").exists()


async def test_token_without_any_credentials_fails_clearly(tmp_path: Path) -> None:
    code, out, err = await run("token", "--identity", "a", "--room", "r", env=env_with(tmp_path))
    assert code == 2 and out == ""
    assert "RTCROOM_API_KEY_SECRET" in err and "rtcroom serve" in err


async def test_join_bots_publish_report_and_record(tmp_path: Path) -> None:
    # Peer-to-peer: the bots keep their ICE on loopback, where `rtcroom serve`'s SFU (which
    # gathers the machine's other addresses) would not meet them in a group room.
    env = env_with(tmp_path, RTCROOM_ROOM_TYPE="peer-to-peer")
    async with Serving(env) as server:
        # Media stays on loopback, as every test's traffic must. The listener starts once the
        # speaker is in the room (a fresh venv's first start, on a busy machine, can take
        # longer than the listener's stay), and the speaker stays until it saw the listener go.
        speaker = await asyncio.create_subprocess_exec(
            *RTCROOM, "join", server.url, "--identity", "speaker", "--room", "r",
            "--ice-address", "127.0.0.1", env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        said: list[str] = []

        async def speaker_says(pattern: str) -> None:
            while not any(re.search(pattern, line) for line in said):
                line = (await asyncio.wait_for(speaker.stdout.readline(), 60)).decode()
                assert line, f"the speaker stopped before saying {pattern!r}: {said}"
                said.append(line)

        await speaker_says(r"^speaker: joined room r ")
        code, out, err = await run("join", server.url, "--identity", "listener", "--room", "r",
                                   "--no-audio", "--no-video", "--record",
                                   str(tmp_path / "rec"), "--duration", "9",
                                   "--ice-address", "127.0.0.1", env=env)
        assert code == 0, err
        assert "listener: joined room r" in out and "listener: disconnected" in out
        assert "receiving audio 'tone' from speaker" in out
        assert "message from speaker: 'hello #1 from speaker'" in out
        await speaker_says(r"^speaker: listener left")
        speaker.terminate()
        rest, s_err = await asyncio.wait_for(speaker.communicate(), 30)
        assert speaker.returncode == 0, s_err.decode()
        assert re.search(r"speaker: listener (joined|is here)", "".join(said) + rest.decode())
    recordings = sorted((tmp_path / "rec").iterdir())
    assert len(recordings) == 2
    kinds = []
    for path in recordings:
        with av.open(str(path)) as container:
            stream = container.streams[0]
            frames = sum(1 for _ in container.decode(stream))
            kinds.append((stream.type, frames > 0))
    assert sorted(kinds) == [("audio", True), ("video", True)]


@pytest.mark.timeout(120)
async def test_demo_shows_bots_with_audio_levels(tmp_path: Path) -> None:
    code, out, err = await run("demo", "--bots", "2", "--duration", "5",
                               env=env_with(tmp_path), timeout=90)
    assert code == 0, err
    assert re.search(r"listening on ws://127\.0\.0\.1:\d+/signaling", out)
    view = out[out.index("rtcroom demo - room 'demo'"):]
    for bot in ("bot-1", "bot-2"):
        assert f"  {bot}  [connected]" in view
    levels = [int(m) for m in re.findall(r"level [#.]+ (\d+)", view)]
    assert len(levels) == 2 and all(level > 0 for level in levels)
    assert len(re.findall(r"video  pattern    160x120", view)) == 2
