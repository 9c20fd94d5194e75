"""The rtcroom room server: WebSocket signaling, REST API and health on one aiohttp app.

Embedding it (what ``rtcroom demo`` and the tests do)::

    server = await start_server(load_config(port=0))
    print(server.url)        # ws://127.0.0.1:PORT/signaling
    ...
    await server.stop()
"""

from rtcroom.server.app import RunningServer, create_app, start_server
from rtcroom.server.config import ConfigError, ServerConfig, load_config

__all__ = ["ConfigError", "RunningServer", "ServerConfig", "create_app", "load_config",
           "start_server"]
