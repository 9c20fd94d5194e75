"""Server configuration: defaults < file < environment < command line, with clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rtcroom.server.config import (
    ConfigError,
    credentials_path,
    development_credentials,
    load_config,
    load_saved_credentials,
)


def test_defaults() -> None:
    config = load_config(env={})
    assert (config.host, config.port, config.room_type) == ("127.0.0.1", 8080, "group")
    assert config.credentials is None and config.ice_servers == ()


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "rtcroom.json"
    path.write_text(json.dumps({"port": 9000, "room_type": "group", "max_participants": 4,
                                "ice_servers": [{"urls": "turn:127.0.0.1:3478",
                                                 "username": "u", "credential": "p"}]}))
    config = load_config(path, env={})
    assert (config.port, config.room_type, config.max_participants) == (9000, "group", 4)
    assert config.ice_servers[0].urls == ["turn:127.0.0.1:3478"]
    env = {"RTCROOM_PORT": "9001", "RTCROOM_ROOM_TYPE": "peer-to-peer", "RTCROOM_DSCP": "on",
           "RTCROOM_PACING": "no",
           "RTCROOM_ACCOUNT_SID": "AC1", "RTCROOM_API_KEY_SID": "SK1",
           "RTCROOM_API_KEY_SECRET": "s", "RTCROOM_SESSION_TIMEOUT": "2.5"}
    config = load_config(path, env=env, port=0)
    assert (config.port, config.room_type, config.dscp) == (0, "peer-to-peer", True)
    assert not config.pacing and load_config(path, env={}).pacing  # on unless turned off
    assert config.session_timeout == 2.5 and config.max_participants == 4
    assert config.credentials is not None and config.credentials.api_key_sid == "SK1"


def test_toml_file_via_env(tmp_path: Path) -> None:
    path = tmp_path / "rtcroom.toml"
    path.write_text('host = "::1"\nempty_room_timeout = 60\n')
    config = load_config(env={"RTCROOM_CONFIG": str(path)})
    assert (config.host, config.empty_room_timeout) == ("::1", 60.0)


@pytest.mark.parametrize("env, message", [
    ({"RTCROOM_PORT": "eighty"}, "port (from RTCROOM_PORT)"),
    ({"RTCROOM_PORT": "70000"}, "out of range"),
    ({"RTCROOM_ROOM_TYPE": "mesh"}, "'mesh' is not one of peer-to-peer, group"),
    ({"RTCROOM_MAX_PARTICIPANTS": "0"}, "max_participants"),
    ({"RTCROOM_SESSION_TIMEOUT": "-1"}, "positive seconds"),
    ({"RTCROOM_DSCP": "maybe"}, "expected on/off"),
    ({"RTCROOM_ICE_SERVERS": "[{\"urls\": 5}]"}, "ice_servers[0].urls"),
    ({"RTCROOM_ICE_SERVERS": "{"}, "ice_servers (from RTCROOM_ICE_SERVERS)"),
])
def test_bad_values_name_the_setting_and_source(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(env=env)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "missing.json", env={})
    path = tmp_path / "c.json"
    path.write_text('{"prot": 1}')
    with pytest.raises(ConfigError, match="unknown setting\\(s\\) prot"):
        load_config(path, env={})


def test_development_credentials_are_saved_once(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert load_saved_credentials(env) is None
    first = development_credentials(env)
    assert first.account_sid.startswith("AC") and first.api_key_sid.startswith("SK")
    assert credentials_path(env) == tmp_path / "rtcroom" / "dev-credentials.json"
    assert (credentials_path(env).stat().st_mode & 0o777) == 0o600
    assert development_credentials(env) == first == load_saved_credentials(env)
    credentials_path(env).write_text("{")
    with pytest.raises(ConfigError, match="unreadable"):
        load_saved_credentials(env)
