"""Server configuration: defaults, then a config file, then ``RTCROOM_*`` environment variables,
then command-line flags (each overriding the one before).

With no API key configured anywhere, :func:`development_credentials` generates one and saves it
where ``rtcroom token`` finds it, so a first ``rtcroom serve`` works with nothing set up.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rtcroom.server.rooms.room import ROOM_TYPES
from rtcroom.server.videocodecs import parse_video_codecs
from rtcroom.signaling.fields import MessageFormatError
from rtcroom.signaling.messages import IceServer

__all__ = [
    "ConfigError",
    "Credentials",
    "ServerConfig",
    "credentials_path",
    "development_credentials",
    "load_config",
    "load_saved_credentials",
]


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the setting and its source."""


@dataclass(frozen=True)
class Credentials:
    account_sid: str
    api_key_sid: str
    api_key_secret: str


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    account_sid: str | None = None
    api_key_sid: str | None = None
    api_key_secret: str | None = None
    # Twilio's default: one connection per participant, to the server's SFU (browsers included).
    room_type: str = "group"
    max_participants: int = 50
    max_rooms: int = 1000
    # Seconds an empty room stays in progress before it completes (Twilio: 5 minutes).
    empty_room_timeout: float = 300.0
    # Seconds a participant whose signaling connection dropped may resume its session.
    session_timeout: float = 30.0
    # Upper bound on the heartbeat timeout a client may negotiate, in milliseconds.
    max_heartbeat_timeout_ms: int = 5000
    ice_servers: tuple[IceServer, ...] = field(default_factory=tuple)
    # Shared secret of a TURN server's REST API (coturn's static-auth-secret): TURN entries of
    # ice_servers without a username get per-participant credentials valid for turn_ttl seconds.
    turn_secret: str | None = None
    turn_ttl: float = 86400.0
    dscp: bool = False
    # Pace the video the SFU sends each subscriber with the native pacer (RTCROOM_PACING=0 or
    # "pacing": false turns it off; README: its cost).
    pacing: bool = True
    # The VideoCodecs of a group room created without them (ad-hoc, or by REST without the
    # parameter). None: every video codec the SFU can forward (Twilio's default is VP8 and
    # H264, the two it has; rtcroom adds the ones it forwards beyond those, such as VP9).
    video_codecs: tuple[str, ...] | None = None
    # What one client may cost (see rtcroom.server.limits for what crossing each one does).
    max_message_bytes: int = 1 << 20
    max_messages_per_second: int = 100
    max_connections_per_ip: int = 100
    max_tracks_per_participant: int = 32
    max_outbox_bytes: int = 8 << 20
    # The browser demo at /demo, which mints tokens for whoever opens it: None means on when
    # the server listens on a loopback address only.
    demo: bool | None = None
    # Where /demo finds twilio-video.min.js; None: the copy the build installed in the package
    # (see rtcroom.server.demo), else a development checkout's .cache/npm.
    twilio_video_dir: str | None = None

    @property
    def demo_enabled(self) -> bool:
        if self.demo is not None:
            return self.demo
        return self.host in ("127.0.0.1", "::1", "localhost")

    @property
    def credentials(self) -> Credentials | None:
        if self.account_sid and self.api_key_sid and self.api_key_secret:
            return Credentials(self.account_sid, self.api_key_sid, self.api_key_secret)
        return None


_ENV = {
    "host": "RTCROOM_HOST",
    "port": "RTCROOM_PORT",
    "account_sid": "RTCROOM_ACCOUNT_SID",
    "api_key_sid": "RTCROOM_API_KEY_SID",
    "api_key_secret": "RTCROOM_API_KEY_SECRET",
    "room_type": "RTCROOM_ROOM_TYPE",
    "max_participants": "RTCROOM_MAX_PARTICIPANTS",
    "max_rooms": "RTCROOM_MAX_ROOMS",
    "empty_room_timeout": "RTCROOM_EMPTY_ROOM_TIMEOUT",
    "session_timeout": "RTCROOM_SESSION_TIMEOUT",
    "ice_servers": "RTCROOM_ICE_SERVERS",
    "dscp": "RTCROOM_DSCP",
    "pacing": "RTCROOM_PACING",
    "video_codecs": "RTCROOM_VIDEO_CODECS",
    "turn_secret": "RTCROOM_TURN_SECRET",
    "turn_ttl": "RTCROOM_TURN_TTL",
    "max_message_bytes": "RTCROOM_MAX_MESSAGE_BYTES",
    "max_messages_per_second": "RTCROOM_MAX_MESSAGES_PER_SECOND",
    "max_connections_per_ip": "RTCROOM_MAX_CONNECTIONS_PER_IP",
    "max_tracks_per_participant": "RTCROOM_MAX_TRACKS_PER_PARTICIPANT",
    "max_outbox_bytes": "RTCROOM_MAX_OUTBOX_BYTES",
    "demo": "RTCROOM_DEMO",
    "twilio_video_dir": "RTCROOM_TWILIO_VIDEO_DIR",
}
CONFIG_ENV = "RTCROOM_CONFIG"
_LIMITS = ("max_message_bytes", "max_messages_per_second", "max_connections_per_ip",
           "max_tracks_per_participant", "max_outbox_bytes")


def _coerce(name: str, value: Any, source: str) -> Any:
    """``value`` (from a file, or a string from the environment) as the field's type."""
    where = f"{name} (from {source})"
    try:
        if name == "ice_servers":
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, list):
                raise ConfigError(f"{where}: expected a list of RTCIceServer objects")
            return tuple(IceServer.from_wire(v, f"ice_servers[{i}]") if isinstance(v, dict)
                         else _bad(f"{where}: item {i} is not an object")
                         for i, v in enumerate(value))
        if name in ("port", "max_participants", "max_rooms", "max_heartbeat_timeout_ms",
                    *_LIMITS):
            number = int(value)
            if number < 0 or (name != "port" and number == 0) or (name == "port"
                                                                 and number > 65535):
                raise ConfigError(f"{where}: {number} is out of range")
            return number
        if name in ("empty_room_timeout", "session_timeout", "turn_ttl"):
            seconds = float(value)
            if seconds <= 0:
                raise ConfigError(f"{where}: must be positive seconds, got {value!r}")
            return seconds
        if name in ("dscp", "demo", "pacing"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("1", "0", "true", "false", "on", "off", "yes", "no"):
                raise ConfigError(f"{where}: expected on/off, got {value!r}")
            return text in ("1", "true", "on", "yes")
        if name == "video_codecs":
            names = value.split(",") if isinstance(value, str) else value
            if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
                raise ConfigError(f"{where}: expected a list of codec names, got {value!r}")
            try:
                return parse_video_codecs([n.strip() for n in names], where)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        if name == "room_type":
            if value not in ROOM_TYPES:
                raise ConfigError(f"{where}: {value!r} is not one of {', '.join(ROOM_TYPES)}")
            return value
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    except (TypeError, ValueError, MessageFormatError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from None


def _bad(message: str) -> Any:
    raise ConfigError(message)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib

                data: Any = tomllib.loads(text)
            else:
                raise ConfigError(f"config file {path}: TOML needs Python 3.11; use JSON")
        else:
            data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected an object of settings")
    known = {f.name for f in fields(ServerConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    return data


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                **overrides: Any) -> ServerConfig:
    """Build the configuration: defaults < file (``path`` or ``$RTCROOM_CONFIG``) < env <
    ``overrides`` (keyword arguments whose value is None are ignored)."""
    env = os.environ if env is None else env
    config = ServerConfig()
    file_path = path or env.get(CONFIG_ENV)
    if file_path:
        file_values = _read_file(Path(file_path))
        config = replace(config, **{k: _coerce(k, v, str(file_path))
                                    for k, v in file_values.items()})
    env_values = {name: _coerce(name, env[var], var) for name, var in _ENV.items()
                  if env.get(var)}
    config = replace(config, **env_values)
    given = {k: _coerce(k, v, "command line") for k, v in overrides.items() if v is not None}
    return replace(config, **given)


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    """Where development credentials are saved: ``$XDG_CONFIG_HOME/rtcroom/dev-credentials.json``
    (default ``~/.config``)."""
    env = os.environ if env is None else env
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "rtcroom" / "dev-credentials.json"


def load_saved_credentials(env: Mapping[str, str] | None = None) -> Credentials | None:
    path = credentials_path(env)
    try:
        data = json.loads(path.read_text())
        return Credentials(data["account_sid"], data["api_key_sid"], data["api_key_secret"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"saved credentials {path} are unreadable: {exc}") from None


def development_credentials(env: Mapping[str, str] | None = None) -> Credentials:
    """The saved development credentials, generated and saved (mode 0600) on first use."""
    saved = load_saved_credentials(env)
    if saved is not None:
        return saved
    creds = Credentials(account_sid="AC" + secrets.token_hex(16),
                        api_key_sid="SK" + secrets.token_hex(16),
                        api_key_secret=secrets.token_urlsafe(32))
    path = credentials_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds.__dict__, f, indent=2)
    return creds
