"""The Twilio error-code table: completeness, lookup, and agreement with twilio-video.js."""

from __future__ import annotations

import pathlib
import re

import pytest
from rtcroom import errors

RANGES = {
    "access token": range(20101, 20108),
    "signaling": range(53000, 53007),
    "room": range(53100, 53126),
    "participant": range(53200, 53206),
    "track": range(53300, 53306),
    "media": range(53400, 53408),
    "configuration": range(53500, 53502),
}

SDK_ERRORS = pathlib.Path(
    "/work/cache/npm/node_modules/twilio-video/lib/util/twilio-video-errors.js"
)


def test_every_code_lies_in_a_documented_range() -> None:
    for code in errors.ERRORS_BY_CODE:
        assert any(code in r for r in RANGES.values()), code


def test_each_range_starts_at_its_first_code() -> None:
    for name, codes in RANGES.items():
        assert codes.start in errors.ERRORS_BY_CODE, name


@pytest.mark.parametrize("code", sorted(errors.ERRORS_BY_CODE))
def test_from_code_gives_the_class_with_its_code_and_default_message(code: int) -> None:
    cls = errors.ERRORS_BY_CODE[code]
    err = errors.from_code(code)
    assert type(err) is cls
    assert isinstance(err, errors.TwilioError)
    assert err.code == code == cls.code
    assert err.message == cls.default_message and err.message
    assert getattr(errors, cls.__name__) is cls
    assert cls.__name__ in errors.__all__
    assert cls.__doc__


def test_explicit_message_replaces_default_but_keeps_code() -> None:
    err = errors.from_code(53105, "room 'x' is full (max 4)")
    assert isinstance(err, errors.RoomMaxParticipantsExceededError)
    assert err.code == 53105
    assert err.message == "room 'x' is full (max 4)"
    assert str(err) == "room 'x' is full (max 4) (53105)"
    assert err.to_dict() == {"code": 53105, "message": "room 'x' is full (max 4)"}


def test_empty_message_falls_back_to_default() -> None:
    assert errors.from_code(20104, "").message == errors.AccessTokenExpiredError.default_message


def test_unknown_code_is_a_plain_twilio_error() -> None:
    err = errors.from_code(12345, "something")
    assert type(err) is errors.TwilioError
    assert (err.code, err.message) == (12345, "something")
    assert errors.from_code(54321).message == "Unknown error"


def test_errors_are_catchable_by_class_and_base() -> None:
    with pytest.raises(errors.TwilioError) as info:
        raise errors.SignalingConnectionError()
    assert info.value.code == 53000
    assert repr(info.value) == (
        "SignalingConnectionError(code=53000, message='Signaling connection error')"
    )


@pytest.mark.skipif(not SDK_ERRORS.exists(), reason="twilio-video@2.36.0 not in /work/cache/npm")
def test_table_matches_twilio_video_js() -> None:
    text = SDK_ERRORS.read_text()
    sdk = {
        int(code): (name, message)
        for name, code, message in re.findall(
            r"class (\w+) extends TwilioError \{\s*constructor\(\) \{\s*super\((\d+), '([^']*)'\)",
            text,
        )
    }
    assert len(sdk) > 50
    ours = {
        code: (cls.__name__, cls.default_message) for code, cls in errors.ERRORS_BY_CODE.items()
    }
    assert ours == sdk
