"""rtcroom: video rooms for Python, compatible with the Twilio Video model."""

from rtcroom.audiolevel import audio_level, audio_level_dbov, audio_levels, audio_levels_dbov

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "audio_level",
    "audio_level_dbov",
    "audio_levels",
    "audio_levels_dbov",
]
