"""The SDP reading of rtcroom.signaling.sdp that aiortc does not offer."""

from __future__ import annotations

import pytest
from rtcroom.signaling.sdp import description_problem, sending_mids

SECTIONS = {"0": "a=sendrecv", "1": "a=sendonly", "2": "a=recvonly", "3": "a=inactive", "4": ""}


def test_sending_mids_are_those_whose_author_sends() -> None:
    sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" + "".join(
        f"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{mid}\r\n{direction}\r\n"
        for mid, direction in SECTIONS.items())
    # No direction attribute means sendrecv (RFC 4566).
    assert sending_mids(sdp) == {"0", "1", "4"}


BUNDLED = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=fingerprint:sha-256 AB\r\n"
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=fingerprint:sha-256 AB\r\n")


def test_description_problem_accepts_a_bundled_description() -> None:
    assert description_problem(BUNDLED) is None
    assert description_problem(BUNDLED, ["0", "1"]) is None


@pytest.mark.parametrize(("sdp", "known", "words"), [
    (BUNDLED.replace("BUNDLE 0 1", "BUNDLE 0 1 2"), [], "no m-line has: 2"),
    (BUNDLED.replace("a=mid:1\r\n", "a=mid:1\r\na=mid:3\r\n"), [], "2 a=mid lines"),
    (BUNDLED.replace("a=mid:1\r\na=fingerprint:sha-256 AB\r\n", "a=mid:1\r\n"), [],
     "m-line 1 has no a=fingerprint"),
    (BUNDLED, ["0", "1", "2"], "missing: 2"),
])
def test_description_problem_names_what_aiortc_would_fail_on(sdp: str, known: list[str],
                                                             words: str) -> None:
    problem = description_problem(sdp, known)
    assert problem is not None and words in problem


def test_a_session_level_fingerprint_covers_every_m_line() -> None:
    sdp = BUNDLED.replace("a=fingerprint:sha-256 AB\r\n", "").replace(
        "t=0 0\r\n", "t=0 0\r\na=fingerprint:sha-256 AB\r\n")
    assert description_problem(sdp) is None
