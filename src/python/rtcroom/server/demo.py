"""The browser demo at ``/demo``: a page that joins a room with the unmodified twilio-video.js and
shows every participant's video, audio level and network quality.

The page mints its own token (``POST /demo/token``), which is why the demo is on by default only
for a server listening on loopback (:attr:`ServerConfig.demo_enabled`).

twilio-video.js is not part of the repository and is never fetched at run time. The build copies
the npm package's ``dist/twilio-video.min.js`` (version :data:`TWILIO_VIDEO_VERSION`) into this
package's ``static/twilio-video/`` when npm is available (CMakeLists.txt); a development checkout
also finds the copy the browser tests install in ``.cache/npm``; ``twilio_video_dir`` (or
``$RTCROOM_TWILIO_VIDEO_DIR``) names any other directory holding the file.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from aiohttp import web

from rtcroom.accesstoken import AccessToken, VideoGrant
from rtcroom.server.config import ServerConfig
from rtcroom.server.service import SERVICE

__all__ = ["SDK_FILE", "TWILIO_VIDEO_VERSION", "add_demo_routes", "find_twilio_video"]

TWILIO_VIDEO_VERSION = "2.36.0"
SDK_FILE = "twilio-video.min.js"
TOKEN_TTL = 3600
MAX_FIELD = 128

_HERE = Path(__file__).resolve().parent
_CHECKOUT_COPY = Path("node_modules") / "twilio-video" / "dist"


def find_twilio_video(config: ServerConfig) -> Path | None:
    """The directory holding twilio-video.min.js, or None when it was not installed."""
    if config.twilio_video_dir is not None:
        candidates = [Path(config.twilio_video_dir)]
    else:
        # Every directory of this package: an editable install's files installed by the build
        # live beside the source tree, not in it.
        package_dirs = [Path(p) for p in sys.modules[__package__ or ""].__path__]
        candidates = [d / "static" / "twilio-video" for d in package_dirs]
        candidates.append(_HERE.parents[3] / ".cache" / "npm" / _CHECKOUT_COPY)
    for directory in candidates:
        if (directory / SDK_FILE).is_file():
            return directory
    return None


def _missing(config: ServerConfig) -> str:
    where = config.twilio_video_dir or str(_HERE / "static" / "twilio-video")
    return (f"The demo needs twilio-video.js {TWILIO_VIDEO_VERSION}, which is not installed "
            f"({SDK_FILE} is not in {where}).\n"
            "Rebuild rtcroom with npm on the PATH (pip install .), or run\n"
            f"  npm install --prefix DIR twilio-video@{TWILIO_VIDEO_VERSION}\n"
            "and start the server with RTCROOM_TWILIO_VIDEO_DIR=DIR/node_modules/twilio-video/dist\n")


def add_demo_routes(app: web.Application, config: ServerConfig) -> None:
    sdk = find_twilio_video(config)
    page = resources.files("rtcroom.server").joinpath("static/demo.html").read_text()

    async def index(_: web.Request) -> web.Response:
        if sdk is None:
            return web.Response(status=503, text=_missing(config))
        return web.Response(text=page, content_type="text/html")

    async def script(_: web.Request) -> web.StreamResponse:
        if sdk is None:
            raise web.HTTPNotFound(text=_missing(config))
        return web.FileResponse(sdk / SDK_FILE)

    async def token(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        identity = body.get("identity") if isinstance(body, dict) else None
        room = body.get("room") if isinstance(body, dict) else None
        for name, value in (("identity", identity), ("room", room)):
            if not isinstance(value, str) or not 0 < len(value) <= MAX_FIELD:
                return web.json_response(
                    {"message": f"{name} must be a string of 1 to {MAX_FIELD} characters"},
                    status=400)
        creds = request.app[SERVICE].credentials
        access = AccessToken(creds.account_sid, creds.api_key_sid, creds.api_key_secret,
                             identity=identity, ttl=TOKEN_TTL)
        access.add_grant(VideoGrant(room=room))
        return web.json_response({"token": access.to_jwt()})

    app.router.add_get("/demo", index)
    app.router.add_get(f"/demo/{SDK_FILE}", script)
    app.router.add_post("/demo/token", token)
