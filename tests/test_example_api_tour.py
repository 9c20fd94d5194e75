"""examples/api_tour.py runs from start to end: alone, and against a real server."""

from __future__ import annotations

import asyncio
import os
import pathlib
import subprocess
import sys

from serverutil import ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID, running_server

EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "api_tour.py"


def test_api_tour_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "bad option refused: bandwidth_profile.video.mode: 'gird'" in result.stdout
    assert "recorded local.mkv: audio (aac), video (h264)" in result.stdout


async def test_api_tour_joins_a_room() -> None:
    env = {
        **os.environ,
        "RTCROOM_ACCOUNT_SID": ACCOUNT_SID,
        "RTCROOM_API_KEY_SID": API_KEY_SID,
        "RTCROOM_API_KEY_SECRET": API_KEY_SECRET,
    }
    async with running_server() as server:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            "--server",
            server.url,
            "--seconds",
            "2",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), 120)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert "visitor is in tour" in lines and "guide joined" in lines
    assert any(line.startswith('hearing "guide\'s tone": level ') for line in lines)
