"""The SFU's pacing of a subscriber connection in its native sink (src/native/forward/): packets
that fit the budget leave inside the forwarding call, a keyframe's burst over it waits and is
spread at the pacing rate, in order, with its abs-send-time rewritten when it leaves. Time is
simulated (forward_all's `now`, the sink's `now_us`); the packets go through real SRTP and a
real loopback socket."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pylibsrtp
import pylibsrtp._binding
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rtcroom.pacer import Pacer, PacketClass
from rtcroom.server.sfu.forwarder import Forwarder, LegExtensions, Sink, forward_all
from rtcroom.server.sfu.pacing import BURST, release
from rtcroom.server.sfu.rtpheader import parse_header, unwrap_rtx, wrap_rtx
from test_sfu_native_forward import rtp, vp8_descriptor

ABS_SEND_TIME_ID = 2
BITRATE = 1_000_000  # x 2.5: 2.5 Mbps, a 1000-byte packet every 3.2 ms; 12,500 bytes of burst
SIZE = 1000
GAP_US = 3_200
FIRST_WAIT_US = 1_600  # 13 packets sent: 500 bytes over the allowance to drain first


@pytest.fixture
def leg() -> Iterator[tuple[Forwarder, Sink, socket.socket, pylibsrtp.Session]]:
    """A video forwarder attached to a paced sink that sends to a loopback socket, and the
    SRTP session to read what arrives."""
    ffi = pylibsrtp._binding.ffi
    protect = int(ffi.cast("uintptr_t", ffi.addressof(pylibsrtp._binding.lib, "srtp_protect")))
    key = bytes(range(30))
    tx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    rx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    sink = Sink(protect, int(ffi.cast("uintptr_t", tx._srtp[0])), sender.fileno(),
                *receiver.getsockname())
    sender.close()
    sink.pace(BITRATE, 0, burst_us=round(BURST * 1e6))
    forwarder = Forwarder(ssrc=0xABCD, clock_rate=90000, payload_types={96: 100},
                          extensions=LegExtensions(mid_id=1, mid="1",
                                                   abs_send_time_id=ABS_SEND_TIME_ID),
                          wait_for_keyframe=True, first_sequence_number=1000,
                          first_timestamp=5000, vp8_payload_types=(96,))
    forwarder.select(1)
    forwarder.attach(sink)
    try:
        yield forwarder, sink, receiver, rx
    finally:
        sink.close()
        receiver.close()


def arrived(receiver: socket.socket, rx: pylibsrtp.Session) -> list[bytes]:
    """Every packet waiting at the receiver, decrypted (the loopback delivers synchronously)."""
    out = []
    while True:
        try:
            out.append(rx.unprotect(receiver.recv(4096)))
        except BlockingIOError:
            return out


def abs_send_time(data: bytes) -> int:
    return int.from_bytes(parse_header(data).extensions[ABS_SEND_TIME_ID], "big")


def frame(seq: int, count: int, keyframe: bool) -> list[bytes]:
    payload = vp8_descriptor(seq & 0x7FFF, True, None)
    tag = b"\x00" if keyframe else b"\x01"  # VP8 frame tag: P bit clear on a keyframe
    # SIZE bytes once rewritten (the leg's mid and abs-send-time extensions add 12).
    return [rtp(1, seq + i, 3000 * seq, payload=payload + tag + bytes(SIZE - 30))
            for i in range(count)]


def test_ordinary_frames_leave_inside_the_forwarding_call(leg) -> None:
    """30 fps of 3-packet frames (720 kbit/s, under the 2.5 Mbit/s pace): every packet reaches
    the socket during forward_all, nothing waits, no timer is asked for."""
    forwarder, sink, receiver, rx = leg
    seq = 0
    for i in range(60):
        for data in frame(seq, 3, keyframe=i == 0):
            unsent, _, queued = forward_all(data, i == 0, i / 30, None, [forwarder])
            assert (unsent, queued) == ([], [])
            assert len(arrived(receiver, rx)) == 1
        seq += 3
    assert (sink.sent_packets, sink.delayed_packets, sink.queued_packets) == (180, 0, 0)
    assert sink.next_send_time() is None
    assert forwarder.sent_packets == 180


def test_keyframe_burst_is_spread_at_the_pacing_rate(leg) -> None:
    """A 40-packet keyframe at once: the burst allowance (12,500 bytes: 13 packets) leaves at
    once, the rest waits (the first until the 500 bytes over the allowance drained) and leaves
    one packet per 3.2 ms of the sink's clock, in order, each
    with the abs-send-time of when it left; the next frame waits behind it."""
    forwarder, sink, receiver, rx = leg
    t0 = 10_000_000  # us
    started = []
    for data in frame(0, 40, keyframe=True):
        _, _, queued = forward_all(data, True, t0 / 1e6, None, [forwarder])
        started += queued
    assert started == [sink]  # the timer is asked for once, when the queue starts
    first = arrived(receiver, rx)
    assert {len(p) for p in first} == {SIZE}
    assert len(first) == 13 and sink.queued_packets == 27
    assert sink.next_send_time() == t0 + FIRST_WAIT_US
    # A frame arriving meanwhile waits behind the keyframe.
    for data in frame(40, 2, keyframe=False):
        _, _, queued = forward_all(data, False, (t0 + 1000) / 1e6, None, [forwarder])
        assert queued == []
    assert arrived(receiver, rx) == [] and sink.queued_packets == 29
    released: list[tuple[int, bytes]] = []
    now = t0
    while sink.queued_packets:
        now += 1000  # a 1 ms timer
        sink.drain(now)
        released += [(now, p) for p in arrived(receiver, rx)]
    assert len(released) == 29
    # One packet per 3.2 ms: by each drain at most what the rate allows since t0.
    for i, (at, _) in enumerate(released):
        assert t0 + FIRST_WAIT_US + i * GAP_US <= at < t0 + FIRST_WAIT_US + i * GAP_US + 1000
    seqs = [parse_header(p).sequence_number for p in first + [p for _, p in released]]
    assert seqs == list(range(1000, 1042))
    for at, data in released:
        assert abs_send_time(data) == int(at / 1e6 * (1 << 18)) & 0xFFFFFF
    assert all(abs_send_time(p) == int(t0 / 1e6 * (1 << 18)) & 0xFFFFFF for p in first)
    assert (sink.sent_packets, sink.delayed_packets, sink.dropped_packets) == (42, 29, 0)


async def test_release_drains_waiting_packets_on_the_event_loop(leg) -> None:
    """On the real clock: what a keyframe left waiting leaves from the event loop's timer."""
    forwarder, sink, receiver, rx = leg
    started = []
    for data in frame(0, 40, keyframe=True):
        started += forward_all(data, True, time.monotonic(), None, [forwarder])[2]
    assert started == [sink] and sink.queued_packets > 0
    release(started)
    for _ in range(500):  # bounded: 2.5 Mbit/s drains the 27 packets in about 90 ms
        if sink.queued_packets == 0:
            break
        await asyncio.sleep(0.01)
    out = arrived(receiver, rx)
    assert [parse_header(p).sequence_number for p in out] == list(range(1000, 1040))
    assert sink.delayed_packets == 27


def test_retransmissions_go_before_waiting_video(leg) -> None:
    """A retransmission over the budget waits too, but leaves before the video waiting."""
    forwarder, sink, receiver, rx = leg
    for data in frame(0, 20, keyframe=True):
        forward_all(data, True, 1.0, None, [forwarder])
    arrived(receiver, rx)
    resend = forwarder.retransmission(frame(0, 1, keyframe=True)[0], 1.0)
    assert resend is not None
    # In an RTX stream, as a leg with RTX sends it (libsrtp protects an index only once).
    resend = wrap_rtx(resend, parse_header(resend), 101, 0, 0xEEEE)
    assert sink.send_paced(resend, PacketClass.RETRANSMISSION, 1_000_000,
                           ABS_SEND_TIME_ID) == 1  # queued behind the waiting video
    sink.drain(2_000_000)
    out = arrived(receiver, rx)
    original = unwrap_rtx(out[0], parse_header(out[0]), 100, 0xABCD)
    assert parse_header(original).sequence_number == 1000
    assert abs_send_time(original) == int(2.0 * (1 << 18))  # when it left
    assert [parse_header(p).sequence_number for p in out[1:]] == list(range(1013, 1020))


def test_audio_is_never_paced(leg) -> None:
    _, sink, receiver, rx = leg
    for i in range(30):  # 30 kB at one instant, far over the budget
        assert sink.send_paced(rtp(7, i, 0, pt=111, payload=bytes(SIZE)), PacketClass.AUDIO,
                               0) == 0
    assert len(arrived(receiver, rx)) == 30 and sink.queued_packets == 0


def test_a_closed_sink_sends_and_keeps_nothing(leg) -> None:
    forwarder, sink, receiver, rx = leg
    for data in frame(0, 20, keyframe=True):
        forward_all(data, True, 1.0, None, [forwarder])
    arrived(receiver, rx)
    sink.close()
    assert sink.closed and sink.queued_packets == 0 and sink.drain(10**9) is None
    forward_all(frame(20, 1, keyframe=False)[0], False, 2.0, None, [forwarder])
    assert arrived(receiver, rx) == [] and forwarder.send_errors == 1


@given(bitrate=st.integers(8_000, 20_000_000), burst_us=st.sampled_from([0, 5_000, 40_000]),
       packets=st.lists(st.tuples(st.integers(0, 20_000), st.integers(1, 1500)), max_size=120))
@settings(max_examples=300, deadline=None)
def test_pacing_only_what_waits_keeps_the_schedule(bitrate: int, burst_us: int,
                                                   packets: list[tuple[int, int]]) -> None:
    """send_now first, queueing only what it refuses, releases every packet at the time a
    pacer that queues everything releases it (no queue time limit, which raises the rate by the
    queue's age): the fast path changes the cost, not the pacing."""
    fast = Pacer(bitrate, 0, burst_us=burst_us, queue_time_limit_us=0)
    slow = Pacer(bitrate, 0, burst_us=burst_us, queue_time_limit_us=0)
    now, fast_times, slow_times = 0, [], []
    for gap, size in packets:
        now += gap
        fast_times += [due for _, _, due in fast.pop_due(now)]
        if fast.send_now(size, now):
            fast_times.append(now)
        else:
            fast.enqueue_size(size, PacketClass.VIDEO, now)
            fast_times += [due for _, _, due in fast.pop_due(now)]
        # Both release what fell due before the new packet arrives, as their timer would.
        slow_times += [due for _, _, due in slow.pop_due(now)]
        slow.enqueue_size(size, PacketClass.VIDEO, now)
        slow_times += [due for _, _, due in slow.pop_due(now)]
    assert fast_times == slow_times
    assert fast.next_send_time() == slow.next_send_time()
