"""The SDP reading of rtcroom.signaling.sdp that aiortc does not offer."""

from __future__ import annotations

from rtcroom.signaling.sdp import sending_mids

SECTIONS = {"0": "a=sendrecv", "1": "a=sendonly", "2": "a=recvonly", "3": "a=inactive", "4": ""}


def test_sending_mids_are_those_whose_author_sends() -> None:
    sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" + "".join(
        f"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{mid}\r\n{direction}\r\n"
        for mid, direction in SECTIONS.items())
    # No direction attribute means sendrecv (RFC 4566).
    assert sending_mids(sdp) == {"0", "1", "4"}
