"""The /demo routes without a browser: where twilio-video.js is looked for, what a server
without it answers, and the token the page mints."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from rtcroom.server.config import ServerConfig
from rtcroom.server.demo import SDK_FILE, find_twilio_video
from serverutil import running_server


def test_configured_directory_is_the_only_place_looked_at(tmp_path: Path) -> None:
    assert find_twilio_video(ServerConfig(twilio_video_dir=str(tmp_path))) is None
    (tmp_path / SDK_FILE).write_text("// stand-in")
    assert find_twilio_video(ServerConfig(twilio_video_dir=str(tmp_path))) == tmp_path


def test_demo_is_on_for_loopback_servers_only() -> None:
    assert ServerConfig(host="127.0.0.1").demo_enabled
    assert not ServerConfig(host="0.0.0.0").demo_enabled
    assert ServerConfig(host="0.0.0.0", demo=True).demo_enabled
    assert not ServerConfig(host="127.0.0.1", demo=False).demo_enabled


async def test_without_the_sdk_demo_says_how_to_install_it(tmp_path: Path) -> None:
    async with running_server(twilio_video_dir=str(tmp_path)) as server, \
            aiohttp.ClientSession() as http:
        async with http.get(f"{server.http_url}/demo") as response:
            assert response.status == 503
            assert "npm install" in await response.text()
        async with http.get(f"{server.http_url}/demo/{SDK_FILE}") as response:
            assert response.status == 404


@pytest.mark.parametrize("body", [{"identity": "", "room": "r"}, {"identity": "a"}, [1],
                                  {"identity": "a", "room": "x" * 129}])
async def test_token_endpoint_refuses_bad_fields(body: object) -> None:
    async with running_server() as server, aiohttp.ClientSession() as http, \
            http.post(f"{server.http_url}/demo/token", json=body) as response:
        assert response.status == 400
        assert "must be a string" in (await response.json())["message"]


async def test_token_endpoint_mints_a_token_the_server_accepts() -> None:
    async with running_server() as server, aiohttp.ClientSession() as http:
        async with http.post(f"{server.http_url}/demo/token",
                             json={"identity": "ann", "room": "r1"}) as response:
            token = (await response.json())["token"]
        claims = server.service.verify(token, "r1")
        assert claims["grants"]["identity"] == "ann"
    async with running_server(demo=False) as server, aiohttp.ClientSession() as http, \
            http.post(f"{server.http_url}/demo/token",
                      json={"identity": "ann", "room": "r1"}) as response:
        assert response.status == 404
