"""The SFU's receive bookkeeping per incoming packet, native vs the Python path it replaced.

200 SRTP packets of one publisher (Opus with the audio level extension, VP8 with mid and
transport-wide sequence numbers) go through what the SFU does for each before forwarding:
decrypt with the connection's libsrtp session, parse the header, check the sequence number and
count the receive statistics. "native": ``srtp_source`` (libsrtp by pointer), the native
``parse_header`` and ``ReceiveStream``. "python": pylibsrtp's ``Session.unprotect``, the Python
parse (tests/sfu_rtpheader_reference.py), ``SequenceCheck`` and aiortc's ``StreamStatistics``,
as the router did before. Each round starts a fresh receiving session (SRTP refuses replays).
"""

from __future__ import annotations

import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pylibsrtp
from aiortc.rtcrtpreceiver import StreamStatistics
from rtcroom._native.forward import ReceiveStream
from rtcroom.aiortc_ext.rtp import srtp_source
from rtcroom.server.sfu.rtpheader import parse_header

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from sfu_rtpheader_reference import parse_header as python_parse_header
from sfu_sequence_reference import SequenceCheck, Verdict

KEY = bytes(range(30))
COUNT = 200


def _packets() -> list[bytes]:
    sender = pylibsrtp.Session(pylibsrtp.Policy(
        key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    out = []
    for i in range(COUNT):
        video = i % 3 == 0
        if video:  # mid "1" (id 1), transport-wide sequence number (id 3)
            ext = b"\xbe\xde\x00\x02" + b"\x10\x31" + b"\x31" + struct.pack("!H", i) + b"\x00" * 3
            head = struct.pack("!BBHII", 0x90, 96, i // 3, 3000 * i, 1111)
            payload = bytes(1000)
        else:  # audio level (id 2)
            ext = b"\xbe\xde\x00\x01" + b"\x20\xa5" + b"\x00\x00"
            head = struct.pack("!BBHII", 0x90, 111, i, 960 * i, 2222)
            payload = bytes(80)
        out.append(sender.protect(head + ext + payload))
    return out


PACKETS = _packets()


def _inbound() -> pylibsrtp.Session:
    return pylibsrtp.Session(pylibsrtp.Policy(
        key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))


def native_round() -> int:
    session = _inbound()
    source = srtp_source(session)
    streams: dict[int, ReceiveStream] = {}
    accepted = 0
    for datagram in PACKETS:
        data = source.unprotect(datagram)
        if data is None:
            continue
        h = parse_header(data)
        stream = streams.get(h.ssrc)
        if stream is None:
            stream = streams[h.ssrc] = ReceiveStream(90000)
        if stream.add(h.sequence_number, h.timestamp, time.monotonic()) != 2:
            accepted += 1
    return accepted


def python_round() -> int:
    session = _inbound()
    checks: dict[int, SequenceCheck] = {}
    statistics: dict[int, StreamStatistics] = {}
    accepted = 0
    for datagram in PACKETS:
        try:
            data = session.unprotect(datagram)
        except pylibsrtp.Error:
            continue
        h = python_parse_header(data)
        check = checks.get(h.ssrc)
        if check is None:
            check = checks[h.ssrc] = SequenceCheck()
        if check.check(h.sequence_number) is Verdict.DROP:
            continue
        stats = statistics.get(h.ssrc)
        if stats is None:
            stats = statistics[h.ssrc] = StreamStatistics(90000)
        stats.add(h)  # type: ignore[arg-type]  # reads sequence_number and timestamp only
        accepted += 1
    return accepted


def test_receive_native(compare: Callable[..., Any], benchmark: Any) -> None:
    assert compare("SFU receive bookkeeping, 200 SRTP packets", "native", benchmark,
                   native_round) == COUNT


def test_receive_python(compare: Callable[..., Any], benchmark: Any) -> None:
    assert compare("SFU receive bookkeeping, 200 SRTP packets", "python", benchmark,
                   python_round) == COUNT
