"""The aiohttp application, and running it: signaling, REST, health and OpenAPI on one port."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from aiohttp import web

from rtcroom.server.config import ServerConfig
from rtcroom.server.demo import add_demo_routes
from rtcroom.server.limits import CONNECTIONS, ConnectionCounter
from rtcroom.server.openapi import openapi_document
from rtcroom.server.rest import auth_middleware, routes
from rtcroom.server.service import SERVICE, RoomService
from rtcroom.server.signaling import signaling_handler
from rtcroom.server.store import RoomStore

__all__ = ["RunningServer", "create_app", "start_server"]

SIGNALING_PATH = "/signaling"


async def _health(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return web.json_response({"status": "ok",
                              "rooms_in_progress": await service.store.count_in_progress()})


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def create_app(config: ServerConfig, store: RoomStore | None = None) -> web.Application:
    app = web.Application(middlewares=[auth_middleware])
    service = RoomService(config, store)
    app[SERVICE] = service
    app[CONNECTIONS] = ConnectionCounter(config.max_connections_per_ip)
    app.router.add_get(SIGNALING_PATH, signaling_handler)
    app.router.add_get("/health", _health)
    app.router.add_get("/openapi.json", _openapi)
    app.add_routes(routes)
    if config.demo_enabled:
        add_demo_routes(app, config)

    async def close_service(app: web.Application) -> None:
        await service.close()

    app.on_shutdown.append(close_service)
    return app


@dataclass
class RunningServer:
    """A server started with :func:`start_server`; ``await stop()`` to shut it down."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        """The signaling URL clients connect to."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{SIGNALING_PATH}"

    @property
    def http_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def service(self) -> RoomService:
        return self.runner.app[SERVICE]

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_server(config: ServerConfig, store: RoomStore | None = None) -> RunningServer:
    """Start serving on ``config.host:config.port`` (port 0: a free port, see ``.port``)."""
    app = create_app(config, store)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    site = web.SockSite(runner, sock)
    await site.start()
    port = sock.getsockname()[1]
    return RunningServer(runner=runner, host=config.host, port=port)
