"""The ``rtcroom`` command: ``serve``, ``token``, ``join`` and ``demo``.

``rtcroom serve`` runs the room server; with no API key configured it generates development
credentials, saves them where ``rtcroom token`` finds them, and says how to mint a token.
``rtcroom token --identity NAME --room ROOM`` prints only a JWT. ``rtcroom join URL ...`` runs one
bot participant. ``rtcroom demo`` starts an embedded server and bots and shows the room live.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rtcroom.accesstoken import MAX_TOKEN_TTL, AccessToken, VideoGrant
from rtcroom.aiortc_ext.ice import use_host_addresses
from rtcroom.bot import Bot, BotOptions
from rtcroom.client.room import Room
from rtcroom.errors import TwilioError
from rtcroom.server.app import start_server
from rtcroom.server.config import (
    ConfigError,
    Credentials,
    ServerConfig,
    credentials_path,
    development_credentials,
    load_config,
    load_saved_credentials,
)
from rtcroom.server.demo import find_twilio_video

__all__ = ["main"]

_CREDENTIAL_VARS = ("RTCROOM_ACCOUNT_SID", "RTCROOM_API_KEY_SID", "RTCROOM_API_KEY_SECRET")


def _env_credentials() -> Credentials | None:
    """Credentials from the environment: all three variables, or none of them."""
    values = [os.environ.get(v) for v in _CREDENTIAL_VARS]
    if all(values):
        return Credentials(*values)  # type: ignore[arg-type]
    if any(values):
        missing = [v for v, x in zip(_CREDENTIAL_VARS, values) if not x]
        raise ConfigError(f"set all of {', '.join(_CREDENTIAL_VARS)}; missing {', '.join(missing)}")
    return None


def _credentials() -> Credentials:
    """For minting tokens: the environment's credentials, else the saved development ones."""
    creds = _env_credentials() or load_saved_credentials()
    if creds is None:
        raise ConfigError(f"no credentials: set {', '.join(_CREDENTIAL_VARS)}, or run "
                          f"`rtcroom serve` once to create development credentials in "
                          f"{credentials_path()}")
    return creds


def mint(identity: str, room: str | None, ttl: int = 3600,
         creds: Credentials | None = None) -> str:
    creds = creds or _credentials()
    token = AccessToken(creds.account_sid, creds.api_key_sid, creds.api_key_secret,
                        identity=identity, ttl=ttl)
    token.add_grant(VideoGrant(room=room))
    return token.to_jwt()


async def _wait_for_stop(duration: float | None) -> None:
    """Until Ctrl-C / SIGTERM, or ``duration`` seconds."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), duration)
    except asyncio.TimeoutError:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


# --- serve --------------------------------------------------------------------------------------


def _server_config(args: argparse.Namespace) -> tuple[ServerConfig, bool]:
    """The server's config, and whether it runs on generated development credentials."""
    config = load_config(args.config, host=args.host, port=args.port, room_type=args.room_type,
                         video_codecs=args.video_codecs)
    if config.credentials is not None:
        return config, False
    if any(os.environ.get(v) for v in _CREDENTIAL_VARS) or any(
            (config.account_sid, config.api_key_sid, config.api_key_secret)):
        raise ConfigError(f"incomplete credentials: set all of {', '.join(_CREDENTIAL_VARS)}")
    creds = development_credentials()
    return replace(config, account_sid=creds.account_sid, api_key_sid=creds.api_key_sid,
                   api_key_secret=creds.api_key_secret), True


async def _serve(args: argparse.Namespace) -> int:
    config, development = _server_config(args)
    # Room activity (joins, leaves, completions) on stderr; stdout stays for the banner.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server = await start_server(config)
    if development:
        print(f"using development credentials saved in {credentials_path()}")
        print("mint a token with: rtcroom token --identity alice --room my-room")
    print(f"room type {config.room_type}; REST API {server.http_url}/v1/Rooms "
          f"(Basic auth: API key SID and secret); OpenAPI {server.http_url}/openapi.json")
    if config.demo_enabled:
        missing = "" if find_twilio_video(config) else " (twilio-video.js is not installed: " \
            "the page says how to add it)"
        print(f"browser demo {server.http_url}/demo{missing}")
    print(f"listening on {server.url}", flush=True)
    try:
        await _wait_for_stop(None)
    finally:
        await server.stop()
    return 0


# --- token --------------------------------------------------------------------------------------


def _token(args: argparse.Namespace) -> int:
    print(mint(args.identity, args.room, args.ttl))
    return 0


# --- join ---------------------------------------------------------------------------------------


def _bot_options(args: argparse.Namespace) -> BotOptions:
    return BotOptions(audio=not args.no_audio, video=not args.no_video, data=not args.no_data,
                      tone_frequency=args.tone, audio_file=args.audio_file,
                      video_file=args.video_file, record_dir=args.record,
                      message_interval=args.message_interval)


async def _join(args: argparse.Namespace) -> int:
    if args.ice_address:
        with use_host_addresses(args.ice_address):
            return await _run_join(args)
    return await _run_join(args)


async def _run_join(args: argparse.Namespace) -> int:
    token = args.token or mint(args.identity, args.room)
    if args.record:
        os.makedirs(args.record, exist_ok=True)
    bot = Bot(args.url, token, args.room, _bot_options(args),
              on_event=lambda line: print(line, flush=True))
    room = await bot.start()
    ended = asyncio.Event()
    room.on("disconnected", lambda r, error: ended.set())
    stopper = asyncio.create_task(_wait_for_stop(args.duration))
    waiter = asyncio.create_task(ended.wait())
    await asyncio.wait([stopper, waiter], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    waiter.cancel()
    await bot.stop()
    return 0


# --- demo ---------------------------------------------------------------------------------------

_BAR = 20


def _level_bar(level: int | None) -> str:
    if level is None:
        return "-" * _BAR
    filled = min(_BAR, int(_BAR * (level / 32767) ** 0.5))
    return "#" * filled + "." * (_BAR - filled)


def render(room: Room, started: float, log: list[str]) -> str:
    """One frame of the demo's live view, as seen by the room's local participant."""
    title = (f"rtcroom demo - room '{room.name}' ({room.sid}), {room.state.value}, "
             f"{time.monotonic() - started:.0f} s - Ctrl-C to stop")
    lines = [title, ""]
    me = room.local_participant
    lines.append(f"{me.identity} (this view) sees {len(room.participants)} participant(s):")
    for p in room.participants.values():
        lines.append(f"  {p.identity}  [{p.state.value}]  {p.sid}")
        for pub in p.tracks.values():
            track = pub.track
            detail = "not subscribed"
            if track is not None and str(pub.kind) == "audio":
                level = getattr(track, "audio_level", None)
                detail = f"level {_level_bar(level)} {level if level is not None else '-'}"
            elif track is not None and str(pub.kind) == "video":
                dims = getattr(track, "dimensions", None)
                detail = f"{dims.width}x{dims.height}" if dims else "waiting for frames"
            elif track is not None:
                detail = "subscribed"
            lines.append(f"    {pub.kind!s:5}  {pub.track_name:10} {detail}")
    lines.append("")
    lines.append("recent events:")
    lines.extend(f"  {line}" for line in log[-8:])
    return "\n".join(lines)


async def _demo(args: argparse.Namespace) -> int:
    # Every participant of the demo runs in this process: keep their media on loopback.
    with use_host_addresses(["127.0.0.1"]):
        return await _run_demo(args)


async def _run_demo(args: argparse.Namespace) -> int:
    creds = Credentials("AC" + "d" * 32, "SK" + "d" * 32, os.urandom(24).hex())
    config = ServerConfig(host=args.host, port=args.port, account_sid=creds.account_sid,
                          api_key_sid=creds.api_key_sid, api_key_secret=creds.api_key_secret,
                          room_type="group")
    server = await start_server(config)
    log: list[str] = []
    tty = sys.stdout.isatty()

    def record(line: str) -> None:
        log.append(line)
        if not tty:
            print(line, flush=True)

    print(f"listening on {server.url}", flush=True)
    bots: list[Bot] = []
    try:
        viewer = Bot(server.url, mint("viewer", args.room, creds=creds), args.room,
                     BotOptions(audio=False, video=False, data=False), on_event=record)
        frequencies = [330.0, 440.0, 550.0, 660.0, 770.0, 880.0]
        for i in range(args.bots):
            bot = Bot(server.url, mint(f"bot-{i + 1}", args.room, creds=creds), args.room,
                      BotOptions(tone_frequency=frequencies[i % len(frequencies)],
                                 width=160, height=120, frame_rate=10), on_event=record)
            await bot.start()
            bots.append(bot)
        room = await viewer.start()
        bots.append(viewer)
        started = time.monotonic()

        async def show() -> None:
            while True:
                if tty:
                    sys.stdout.write("\x1b[2J\x1b[H" + render(room, started, log) + "\n")
                    sys.stdout.flush()
                await asyncio.sleep(args.refresh)

        shower = asyncio.create_task(show())
        await _wait_for_stop(args.duration)
        shower.cancel()
        print(render(room, started, log), flush=True)
    finally:
        for bot in reversed(bots):
            await bot.stop()
        await server.stop()
    return 0


# --- entry point --------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtcroom", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the room server")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None,
                       help="port (default 8080; 0 picks a free one and prints it)")
    serve.add_argument("--config", default=None, help="JSON or TOML config file "
                       "(default $RTCROOM_CONFIG)")
    serve.add_argument("--room-type", default=None,
                       help="type of rooms created on first connect (default $RTCROOM_ROOM_TYPE "
                            "or group)")
    serve.add_argument("--video-codecs", default=None, metavar="LIST",
                       help="video codecs publishers may send in group rooms created without "
                            "VideoCodecs, e.g. VP8,H264 (default $RTCROOM_VIDEO_CODECS or every "
                            "codec the server forwards)")

    token = sub.add_parser("token", help="print an access token (JWT) and nothing else")
    token.add_argument("--identity", required=True)
    token.add_argument("--room", required=True)
    token.add_argument("--ttl", type=int, default=3600, help=f"seconds (max {MAX_TOKEN_TTL})")

    join = sub.add_parser("join", help="join a room as a bot participant")
    join.add_argument("url", help="signaling URL, e.g. ws://127.0.0.1:8080/signaling")
    join.add_argument("--identity", required=True)
    join.add_argument("--room", required=True)
    join.add_argument("--token", default=None, help="use this token instead of minting one")
    join.add_argument("--no-audio", action="store_true", help="do not publish the tone")
    join.add_argument("--no-video", action="store_true", help="do not publish the test pattern")
    join.add_argument("--no-data", action="store_true", help="do not publish a data track")
    join.add_argument("--tone", type=float, default=440.0, help="tone frequency in Hz")
    join.add_argument("--audio-file", default=None, help="publish this file's audio instead")
    join.add_argument("--video-file", default=None, help="publish this file's video instead")
    join.add_argument("--record", default=None, metavar="DIR",
                      help="record every received audio/video track into DIR")
    join.add_argument("--message-interval", type=float, default=2.0,
                      help="seconds between data-track messages (0: none)")
    join.add_argument("--duration", type=float, default=None, help="leave after this many s")
    join.add_argument("--ice-address", action="append", default=[], metavar="ADDR",
                      help="gather ICE host candidates on this address only (repeatable; "
                           "e.g. 127.0.0.1 to keep media on loopback; default: all interfaces "
                           "but loopback)")

    demo = sub.add_parser("demo", help="embedded server + bots, shown live until Ctrl-C")
    demo.add_argument("--bots", type=int, default=2, help="bot participants (default 2)")
    demo.add_argument("--room", default="demo")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    demo.add_argument("--duration", type=float, default=None, help="stop after this many s")
    demo.add_argument("--refresh", type=float, default=1.0, help="seconds between redraws")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "token":
            return _token(args)
        runner: dict[str, Any] = {"serve": _serve, "join": _join, "demo": _demo}
        return asyncio.run(runner[args.command](args))
    except (ConfigError, TwilioError, ValueError) as exc:
        print(f"rtcroom {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
