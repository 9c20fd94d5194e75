"""The native forwarder (src/native/forward/) against its plain-Python twin
(tests/sfu_forwarder_reference.py) on arbitrary packets and control sequences; VP8 picture ids
across layer switches; the native SRTP sink against pylibsrtp."""

from __future__ import annotations

import socket

import pylibsrtp
import pylibsrtp._binding
import pytest
from aiortc.rtp import RtpPacket
from hypothesis import given, settings
from hypothesis import strategies as st
from rtcroom.server.sfu.forwarder import Forwarder, LegExtensions, Sink, forward_all
from sfu_forwarder_reference import ReferenceForwarder, vp8_fields

VP8_PT = 96


def vp8_descriptor(picture_id: int | None, long_id: bool, tl0: int | None,
                   start: bool = True) -> bytes:
    """An RFC 7741 payload descriptor, then a VP8 frame tag byte."""
    x = (0x80 if picture_id is not None else 0) | (0x40 if tl0 is not None else 0)
    out = bytes([(0x80 if x else 0) | (0x10 if start else 0)])
    if x:
        out += bytes([x])
    if picture_id is not None:
        out += (0x8000 | picture_id & 0x7FFF).to_bytes(2, "big") if long_id else bytes(
            [picture_id & 0x7F])
    if tl0 is not None:
        out += bytes([tl0 & 0xFF])
    return out + b"\x00"


def rtp(ssrc: int, seq: int, ts: int, pt: int = VP8_PT, payload: bytes = b"\x00" * 8,
        marker: int = 0, padding: int = 0, csrc: int = 0, extension: bytes | None = None) -> bytes:
    p = RtpPacket(payload_type=pt, sequence_number=seq & 0xFFFF, timestamp=ts & 0xFFFFFFFF,
                  ssrc=ssrc, payload=payload, marker=marker)
    p.padding_size = padding
    p.csrc = list(range(1, csrc + 1))
    data = bytearray(p.serialize())
    if extension is not None:  # an opaque block in the one-byte profile
        words = (len(extension) + 3) // 4
        block = b"\xbe\xde" + words.to_bytes(2, "big") + extension.ljust(4 * words, b"\x00")
        at = 12 + 4 * csrc
        data[0] |= 0x10
        data[at:at] = block
    return bytes(data)


def pair(**kw) -> tuple[Forwarder, ReferenceForwarder]:
    args = {"ssrc": 0xABCD, "clock_rate": 90000, "payload_types": {VP8_PT: 100, 0: 0},
            "extensions": LegExtensions(mid_id=1, mid="3", abs_send_time_id=2),
            "wait_for_keyframe": True, "first_sequence_number": 1000,
            "first_timestamp": 5000, "vp8_payload_types": (VP8_PT,)}
    args.update(kw)
    return Forwarder(**args), ReferenceForwarder(**args)


def state(f: Forwarder | ReferenceForwarder) -> tuple:
    return (f.source, f.target, f.wants_keyframe, f.ts_delta, f.packets, f.octets)


packets = st.builds(
    lambda ssrc, seq, ts, pt, desc, marker, padding, csrc, ext: rtp(
        ssrc, seq, ts, pt, vp8_descriptor(*desc) + b"\x01\x02", marker, padding, csrc, ext),
    st.sampled_from([1, 2, 3]), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF),
    st.sampled_from([VP8_PT, VP8_PT, 0, 97]),
    st.tuples(st.one_of(st.none(), st.integers(0, 0x7FFF)), st.booleans(),
              st.one_of(st.none(), st.integers(0, 255))),
    st.integers(0, 1), st.sampled_from([0, 0, 3]), st.sampled_from([0, 0, 2]),
    st.one_of(st.none(), st.binary(min_size=1, max_size=9)))

steps = st.lists(st.one_of(
    st.tuples(st.just("packet"), packets, st.booleans(), st.floats(0, 0.1),
              st.one_of(st.none(), st.binary(min_size=1, max_size=2))),
    st.tuples(st.just("retransmit"), packets),
    st.tuples(st.just("select"), st.one_of(st.none(), st.sampled_from([1, 2, 3]))),
    st.tuples(st.just("restart"), st.sampled_from([1, 2, 3])),
    st.tuples(st.just("nack"), st.integers(0, 0xFFFF)),
    st.tuples(st.just("garbage"), st.binary(max_size=20)),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(steps, st.booleans(), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF),
       st.sampled_from([LegExtensions(), LegExtensions(mid_id=1, mid="3", abs_send_time_id=2),
                        LegExtensions(mid_id=15, mid="x" * 20, audio_level_id=3),
                        LegExtensions(audio_level_id=4, abs_send_time_id=200)]))
def test_native_forwarder_equals_reference(steps, video, seq0, ts0, extensions) -> None:
    native, reference = pair(wait_for_keyframe=video, first_sequence_number=seq0,
                             first_timestamp=ts0, extensions=extensions)
    now = 100.0
    for step in steps:
        if step[0] == "packet":
            _, data, keyframe, dt, level = step
            now += dt
            assert native.rewrite(data, keyframe, now, level) == reference.rewrite(
                data, keyframe, now, level)
        elif step[0] == "retransmit":
            assert native.retransmission(step[1], now) == reference.retransmission(step[1], now)
        elif step[0] == "select":
            native.select(step[1])
            reference.select(step[1])
        elif step[0] == "restart":
            native.restart(step[1])
            reference.restart(step[1])
        elif step[0] == "nack":
            assert native.source_sequence_number(step[1]) == reference.source_sequence_number(
                step[1])
        else:
            assert native.rewrite(step[1], True, now) == reference.rewrite(step[1], True, now)
        assert state(native) == state(reference)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.one_of(st.none(), st.sampled_from([1, 2])),
                          st.booleans()), min_size=1, max_size=6),
       st.lists(st.tuples(packets, st.booleans()), max_size=20))
def test_forward_all_equals_each_reference(legs, stream) -> None:
    """One call for every leg: what each forwarder would return, and the keyframe wanted."""
    natives, references = [], []
    for ssrc_kind, target, video in legs:
        n, r = pair(wait_for_keyframe=video, first_sequence_number=ssrc_kind * 100)
        n.select(target)
        r.select(target)
        natives.append(n)
        references.append(r)
    for i, (data, keyframe) in enumerate(stream):
        unsent, wanted, _ = forward_all(data, keyframe, float(i), None, natives)
        expected, expected_wanted = [], None
        for j, r in enumerate(references):
            out = r.rewrite(data, keyframe, float(i))
            if out is not None:
                expected.append((j, out))
            elif r.wants_keyframe:
                expected_wanted = r.target
        assert unsent == expected and wanted == expected_wanted


def _picture_ids(out: list[bytes]) -> list[tuple[int | None, int | None]]:
    ids = []
    for data in out:
        p = RtpPacket.parse(data)
        at, long_id, tl0_at = vp8_fields(p.payload, 0, len(p.payload))
        pid = None if at is None else (
            int.from_bytes(p.payload[at:at + 2], "big") & 0x7FFF if long_id else p.payload[at])
        ids.append((pid, None if tl0_at is None else p.payload[tl0_at]))
    return ids


@pytest.mark.parametrize("long_id", [True, False])
def test_vp8_picture_ids_continue_across_layer_switches(long_id: bool) -> None:
    """Three simulcast layers number their pictures independently; whatever layer the
    subscriber gets, its picture ids and TL0PICIDX go up by one per frame, also where
    the forwarder switched layers (at a keyframe) or paused and resumed."""
    f, _ = pair()
    base = {1: (100, 7), 2: (30000, 200), 3: (5, 255)}
    modulus = 0x8000 if long_id else 0x80
    out: list[bytes] = []
    layers_sent = set()
    selected = [1] * 10 + [2] * 10 + [None] * 3 + [3] * 10 + [1] * 10
    for frame, choice in enumerate(selected):
        f.select(choice)
        for ssrc, (pid0, tl00) in base.items():
            keyframe = frame % 10 == 0
            payload = vp8_descriptor((pid0 + frame) % modulus, long_id, (tl00 + frame) & 0xFF)
            for part in range(2):  # two packets per frame, the same ids
                data = rtp(ssrc, 1000 * ssrc + 2 * frame + part, 3000 * frame,
                           payload=payload if part == 0 else b"\x80" + payload[1:])
                result = f.rewrite(data, keyframe and part == 0, frame / 30)
                if result is not None:
                    out.append(result)
                    layers_sent.add(ssrc)
    ids = _picture_ids(out)[::2]
    assert layers_sent == {1, 2, 3} and len(ids) > 30
    first_pid, first_tl0 = ids[0]
    assert ids == [((first_pid + i) % modulus, (first_tl0 + i) & 0xFF) for i in range(len(ids))]
    assert first_pid == 100 and first_tl0 == 7  # the first stream's own numbering


def test_vp8_picture_id_rewriting_leaves_other_codecs_alone() -> None:
    f, _ = pair(payload_types={100: 101}, vp8_payload_types=())
    f.select(1)
    payload = vp8_descriptor(1234, True, 9)
    assert RtpPacket.parse(f.rewrite(rtp(1, 5, 0, 100, payload), True, 0.0)).payload == payload
    f.select(2)
    later = f.rewrite(rtp(2, 9, 0, 100, payload), True, 1.0)
    assert RtpPacket.parse(later).payload == payload


def _srtp_pair() -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    key = bytes(range(30))
    tx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    rx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    return tx, rx


def test_native_sink_sends_what_pylibsrtp_protects() -> None:
    """Attached, a forwarder protects with the leg's own libsrtp session and sends to the
    leg's address; the receiver unprotects exactly the packets rewrite() returns unattached."""
    ffi = pylibsrtp._binding.ffi
    protect = int(ffi.cast("uintptr_t", ffi.addressof(pylibsrtp._binding.lib, "srtp_protect")))
    tx, rx = _srtp_pair()
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    try:
        (sent, _), (twin, _) = pair(), pair()
        sent.attach(Sink(protect, int(ffi.cast("uintptr_t", tx._srtp[0])), sender.fileno(),
                         *receiver.getsockname()))
        sender.close()  # the forwarder sends on its own duplicate
        assert sent.attached
        for f in (sent, twin):
            f.select(1)
        stream = [rtp(1, 7 + i, 3000 * i, payload=vp8_descriptor(i, True, i)) for i in range(5)]
        size = 0
        for i, data in enumerate(stream):
            unsent, _, _ = forward_all(data, i == 0, i / 30, None, [sent, twin])
            assert len(unsent) == 1 and unsent[0][0] == 1
            assert rx.unprotect(receiver.recv(2048)) == unsent[0][1]
            size += len(unsent[0][1])
        assert (sent.sent_packets, sent.sent_bytes, sent.send_errors) == (5, size, 0)
        sent.detach()
        assert not sent.attached
        unsent, _, _ = forward_all(rtp(1, 12, 15000), False, 1.0, None, [sent])
        assert [i for i, _ in unsent] == [0]  # handed back once detached
        # A sink on its own, as the pacer of a connection sends through it.
        sink = Sink(protect, int(ffi.cast("uintptr_t", tx._srtp[0])), receiver.fileno(),
                    *receiver.getsockname())
        assert sink.send(unsent[0][1])
        assert rx.unprotect(receiver.recv(2048)) == unsent[0][1]
    finally:
        receiver.close()


def test_sink_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        Sink(0, 0, 0, "127.0.0.1", 9)
    with pytest.raises(ValueError):
        Sink(1, 1, 0, "not an address", 9)
    with pytest.raises(ValueError):
        Forwarder(ssrc=1, clock_rate=90000, payload_types={200: 1}, extensions=LegExtensions(),
                  wait_for_keyframe=False, first_sequence_number=0, first_timestamp=0)
