"""The rtcroom room server: WebSocket signaling, REST API and health on one aiohttp app."""
