"""The enums: the reference's values, plain values accepted, clear refusals."""

from __future__ import annotations

import pytest

from rtcroom.constants import (
    AudioCodec,
    BandwidthProfileMode,
    EventListenerGroup,
    EventListenerLevel,
    LogLevel,
    NetworkQualityLevel,
    NetworkQualityVerbosity,
    TrackPriority,
    TrackSwitchOffMode,
    VideoCodec,
)


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        (AudioCodec, ["isac", "opus", "PCMA", "PCMU"]),
        (VideoCodec, ["H264", "VP8", "VP9"]),
        (BandwidthProfileMode, ["grid", "collaboration", "presentation"]),
        (EventListenerGroup, ["signaling"]),
        (EventListenerLevel, ["debug", "info", "warning", "error"]),
        (LogLevel, ["debug", "info", "warn", "error", "off"]),
        (TrackSwitchOffMode, ["detected", "predicted", "disabled"]),
        (TrackPriority, ["low", "standard", "high"]),
        (NetworkQualityVerbosity, [0, 1, 2, 3]),
        (NetworkQualityLevel, [0, 1, 2, 3, 4, 5]),
    ],
)
def test_values_and_plain_equivalents(enum: type, values: list[object]) -> None:
    assert [m.value for m in enum] == values  # type: ignore[attr-defined]
    for value in values:
        member = enum.coerce(value, "x")  # type: ignore[attr-defined]
        assert member == value and str(member) == str(value)
        assert enum.coerce(member, "x") is member  # type: ignore[attr-defined]


def test_refusals_name_the_path_and_the_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"^codec: 'opus2' is not one of isac, opus, PCMA, PCMU$"):
        AudioCodec.coerce("opus2", "codec")
    with pytest.raises(TypeError, match=r"^codec: expected a string"):
        AudioCodec.coerce(1, "codec")
    with pytest.raises(ValueError, match=r"^level: 6 is not one of 0, 1, 2, 3, 4, 5$"):
        NetworkQualityLevel.coerce(6, "level")
    with pytest.raises(TypeError, match=r"^verbosity: expected an integer"):
        NetworkQualityVerbosity.coerce(True, "verbosity")
    with pytest.raises(ValueError):
        VideoCodec.coerce("vp8", "codec")  # names are case-sensitive, as in twilio-video.js
