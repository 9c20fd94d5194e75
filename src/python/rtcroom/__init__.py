"""rtcroom: video rooms for Python, compatible with the Twilio Video model."""

from rtcroom import errors
from rtcroom.accesstoken import AccessToken, VideoGrant, verify_token
from rtcroom.audiolevel import audio_level, audio_level_dbov, audio_levels, audio_levels_dbov
from rtcroom.errors import TwilioError

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "AccessToken",
    "TwilioError",
    "VideoGrant",
    "errors",
    "verify_token",
    "audio_level",
    "audio_level_dbov",
    "audio_levels",
    "audio_levels_dbov",
]
