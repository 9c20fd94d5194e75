"""Coverage-guided fuzz targets (atheris, libFuzzer) for the parsers that read what a client
sends: signaling frames and messages, RTP headers and payload descriptors, SDP, access tokens.

Each target says which exceptions are the parser's way of refusing input (they name the field
or the problem); anything else escaping is a finding, and atheris stops on it. Run one with
``python tests/atheris_targets.py <target> [libFuzzer flags]``, e.g. ``-runs=100000``;
tests/test_hardening_atheris.py runs each with seed inputs, in CI a quick run.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable
from types import ModuleType

import atheris
from aiortc.sdp import SessionDescription
from rtcroom.accesstoken import verify_token
from rtcroom.aiortc_ext.vp9 import Vp9PayloadDescriptor
from rtcroom.errors import TwilioError
from rtcroom.media.keyframe import is_h264_keyframe, is_vp8_keyframe, is_vp9_keyframe
from rtcroom.server.sfu.rtpheader import parse_header, unwrap_rtx, wrap_rtx
from rtcroom.server.sfu.simulcast import rtx_ssrcs, simulcast_ssrcs
from rtcroom.signaling.fields import MessageFormatError
from rtcroom.signaling.framing import Msg, parse_frame
from rtcroom.signaling.messages import parse_client_message
from rtcroom.signaling.sdp import inactive_mids, ip_candidates_only, msid_track_ids

SECRET = "s" * 32


def signaling(data: bytes) -> None:
    """A WebSocket text frame, as the server's read loop handles it."""
    try:
        frame = parse_frame(data.decode("utf-8", "replace"))
        if isinstance(frame, Msg):
            parse_client_message(frame.body)
    except MessageFormatError:
        pass


def rtp(data: bytes) -> None:
    """A decrypted RTP packet, as the SFU reads it before forwarding."""
    try:
        h = parse_header(data)
    except ValueError:
        return
    is_vp8_keyframe(data, h.payload_offset, h.payload_end)
    is_h264_keyframe(data, h.payload_offset, h.payload_end)
    is_vp9_keyframe(data, h.payload_offset, h.payload_end)
    try:
        Vp9PayloadDescriptor.parse(data[h.payload_offset:h.payload_end])
    except ValueError:
        pass
    wrapped = wrap_rtx(data, h, 97, 1, 2)
    try:
        unwrap_rtx(wrapped, parse_header(wrapped), h.payload_type, h.ssrc)
    except ValueError:
        pass


def sdp(data: bytes) -> None:
    """A participant's SDP as the SFU takes it: less the candidates it will not use, then
    parsed by aiortc (any exception there is a refusal, answered with 53403); what aiortc
    accepted, the SFU's own readings must take without an exception."""
    text = ip_candidates_only(data.decode("utf-8", "replace"))
    try:
        SessionDescription.parse(text)
    except Exception:  # noqa: BLE001 - aiortc's refusals come as many kinds
        return
    inactive_mids(text)
    for mid in msid_track_ids(text):
        simulcast_ssrcs(text, mid)
        rtx_ssrcs(text, mid)


def token(data: bytes) -> None:
    """A token in ``connect``: refused only with the Twilio 2010x errors."""
    try:
        verify_token(data.decode("utf-8", "replace"), SECRET)
    except TwilioError as exc:
        assert 20101 <= exc.code <= 20107, exc


TARGETS: dict[str, Callable[[bytes], None]] = {
    "signaling": signaling, "rtp": rtp, "sdp": sdp, "token": token}


def seeds() -> dict[str, list[bytes]]:
    """Well-formed inputs of each target, for libFuzzer to start from (random bytes would
    rarely get past the first check)."""
    import json

    from rtcroom.accesstoken import AccessToken, VideoGrant
    from rtcroom.server.sfu.rtpheader import write_extensions, write_header

    lines = [
        "v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE 0",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "c=IN IP4 127.0.0.1", "a=mid:0", "a=msid:s v1",
        "a=sendonly", "a=rtcp-mux", "a=ssrc-group:SIM 1 2 3", "a=ssrc-group:FID 1 4",
        "a=ssrc:1 cname:c", "a=ssrc:2 cname:c", "a=ssrc:3 cname:c", "a=ssrc:4 cname:c",
        "a=rtpmap:96 VP8/90000", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", "a=inactive",
        "a=ice-ufrag:abcd", "a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa", ""]
    offer = "\r\n".join(lines)
    update = {"type": "update", "session": "SS1", "participant": {"revision": 2, "tracks": [
        {"id": "v1", "kind": "video", "name": "cam", "enabled": True, "priority": "high"}]},
        "peer_connections": [{"id": "pc", "description": {"type": "offer", "sdp": offer,
                                                          "revision": 2},
                              "ice": {"candidates": [{"candidate": "candidate:1 1 udp 1 "
                                                      "127.0.0.1 9 typ host"}],
                                      "revision": 1, "ufrag": "abcd"}}]}
    frames = [{"type": "msg", "body": update}, {"type": "heartbeat"},
              {"type": "hello", "id": "h", "timeout": 3000, "version": 2}]
    ext = write_extensions([(1, b"\x80"), (3, b"abc")])
    vp8_key = bytes([0x90, 0x80, 0x01, 0x10, 0x00, 0x00, 0x9D, 0x01, 0x2A])
    # I, L, B, E, V; picture id, layers, TL0PICIDX; SS of 320x240 and one picture; key frame.
    vp9_key = bytes([0xAE, 0x80, 0x01, 0x00, 0x05, 0x18, 0x01, 0x40, 0x00, 0xF0, 0x01, 0x04,
                     0x01, 0x82, 0x49, 0x83, 0x42, 0x00])
    rtp = [write_header(0, 1, 96, 7, 1234, 1) + vp8_key,
           write_header(0x10, 0, 111, 8, 1234, 2) + ext + b"opus",
           write_header(0x20, 0, 102, 9, 1, 3) + bytes([0x65, 1, 2, 0, 0, 3]),
           write_header(0, 1, 98, 10, 1234, 4) + vp9_key]
    tok = AccessToken("AC" + "0" * 32, "SK" + "1" * 32, SECRET, identity="alice",
                      grants=[VideoGrant(room="r")]).to_jwt()
    return {"signaling": [json.dumps(f).encode() for f in frames], "rtp": rtp,
            "sdp": [offer.encode()], "token": [tok.encode()]}


def instrument(modules: Iterable[ModuleType]) -> None:
    """Coverage for the parsers' own code only: instrument_imports() misses modules an
    editable install loads through its finder, and instrument_all() takes a minute."""
    for module in modules:
        for obj in list(vars(module).values()):
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            functions = [obj] if inspect.isfunction(obj) else (
                [getattr(a, "__func__", a) for a in vars(obj).values()]
                if inspect.isclass(obj) else [])
            for f in functions:
                if inspect.isfunction(f):
                    atheris.instrument_func(f)


def main() -> None:
    target = TARGETS[sys.argv[1]]
    instrument(sys.modules[name] for name in list(sys.modules)
               if name.startswith(("rtcroom.signaling", "rtcroom.server.sfu", "rtcroom.accesstoken",
                                   "rtcroom.media.keyframe", "rtcroom.aiortc_ext.vp9",
                                   "aiortc.sdp", "jwt.")))
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
