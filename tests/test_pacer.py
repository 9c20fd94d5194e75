"""The native pacer against its plain-Python twin (tests/reference_pacer.py) under a simulated
clock, properties of the pacing rules themselves, the asyncio driver on loopback UDP, and the
native socket sender (PacedSocket) on loopback UDP against the same twin."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_pacer import MICRO_BITS_PER_BYTE, ReferencePacer
from rtcroom import pacer
from rtcroom._native import pacer as native_pacer
from rtcroom.pacer import PacedSender, PacedSocket, Pacer, PacketClass

AUDIO, RTX, VIDEO = PacketClass.AUDIO, PacketClass.RETRANSMISSION, PacketClass.VIDEO

configs = st.fixed_dictionaries({
    "pacing_factor": st.sampled_from([1.0, 2.5, 1.7, 3.3]),
    "burst_us": st.sampled_from([0, 0, 1_000, 40_000]),
    "queue_time_limit_us": st.sampled_from([0, 2_000_000, 50_000]),
    "max_packets": st.tuples(*[st.integers(1, 12)] * 3),
})
bitrates = st.integers(1, 50_000_000)
# One step of a scenario: time passes, then one call.
steps = st.one_of(
    st.tuples(st.just("enqueue"), st.one_of(st.integers(0, 5_000), st.integers(0, 300_000)),
              st.integers(0, 1500),
              st.sampled_from(list(PacketClass))),
    # Queued by size only (the caller keeps the packet: PacedSender), released by class.
    st.tuples(st.just("enqueue_size"), st.integers(0, 5_000), st.integers(0, 1500),
              st.sampled_from(list(PacketClass))),
    # A frame's packets in one call.
    st.tuples(st.just("enqueue_sizes"), st.integers(0, 5_000),
              st.lists(st.integers(0, 1500), max_size=20), st.sampled_from(list(PacketClass))),
    st.tuples(st.just("pop"), st.integers(0, 20_000)),
    st.tuples(st.just("pop_due"), st.integers(0, 50_000)),
    st.tuples(st.just("pop_due_classes"), st.integers(0, 50_000)),
    st.tuples(st.just("bitrate"), st.integers(0, 10_000), bitrates),
    st.tuples(st.just("late_pop"), st.integers(-3_000, 0)),  # a caller whose clock lags
    # The SFU's fast path: sent at once when nothing waits and it fits the budget.
    st.tuples(st.just("send_now"), st.integers(0, 20_000), st.integers(0, 1500)),
)


def run(p: Any, start: int, scenario: list[tuple[Any, ...]]) -> list[object]:
    """Applies the scenario; returns everything observable after every step."""
    now, seen = start, []
    for step in scenario:
        op = step[0]
        if op == "enqueue":
            now += step[1]
            result: object = p.enqueue(b"\x80" * step[2], int(step[3]), now)
        elif op == "pop":
            now += step[1]
            result = p.pop(now)
        elif op == "enqueue_size":
            now += step[1]
            result = p.enqueue_size(step[2], int(step[3]), now)
        elif op == "enqueue_sizes":
            now += step[1]
            result = p.enqueue_sizes(step[2], int(step[3]), now)
        elif op == "pop_due":
            now += step[1]
            result = p.pop_due(now)
        elif op == "pop_due_classes":
            now += step[1]
            result = p.pop_due_classes(now)
        elif op == "late_pop":
            result = p.pop(now + step[1])
        elif op == "send_now":
            now += step[1]
            result = p.send_now(step[2], now)
        else:
            now += step[1]
            result = p.set_target_bitrate(step[2], now)
        seen.append((op, result, p.next_send_time(), p.pacing_rate, p.target_bitrate,
                     p.queued_bytes, [p.queued_packets(c) for c in range(3)],
                     [p.dropped_packets(c) for c in range(3)]))
    return seen


@given(config=configs, bitrate=bitrates, start=st.integers(0, 2**40),
       scenario=st.lists(steps, max_size=80))
@settings(max_examples=500, deadline=None)
def test_native_matches_reference(config: dict[str, Any], bitrate: int, start: int,
                                  scenario: list[tuple[Any, ...]]) -> None:
    native = Pacer(bitrate, start, **config)
    reference = ReferencePacer(bitrate, start, **config)
    assert run(native, start, scenario) == run(reference, start, scenario)


@given(config=configs, bitrate=bitrates, scenario=st.lists(steps, max_size=80))
@settings(max_examples=300, deadline=None)
def test_order_and_queue_limits(config: dict[str, Any], bitrate: int,
                                scenario: list[tuple[Any, ...]]) -> None:
    """Whatever happens, queues stay within their limits and every release is of the highest
    class queued at that moment, oldest first (checked against a model of the queues)."""
    p = Pacer(bitrate, 0, **config)
    model: list[list[bytes]] = [[], [], []]
    now, serial = 0, 0
    for step in scenario:
        if step[0] == "enqueue":
            now += step[1]
            serial += 1
            data = serial.to_bytes(4, "big") + b"\0" * step[2]
            dropped = p.enqueue(data, int(step[3]), now)
            queue = model[step[3]]
            assert dropped == (len(queue) == config["max_packets"][step[3]])
            if dropped:
                queue.pop(0)
            queue.append(data)
        elif step[0] == "enqueue_size":
            now += step[1]
            dropped = p.enqueue_size(step[2], int(step[3]), now)
            queue = model[step[3]]
            assert dropped == (len(queue) == config["max_packets"][step[3]])
            if dropped:
                queue.pop(0)
            queue.append(b"")  # the native pacer hands out b"" for it
        elif step[0] == "enqueue_sizes":
            now += step[1]
            queue = model[step[3]]
            expected = max(0, len(queue) + len(step[2]) - config["max_packets"][step[3]])
            assert p.enqueue_sizes(step[2], int(step[3]), now) == expected
            queue += [b""] * len(step[2])
            del queue[:expected]
        elif step[0] == "pop_due_classes":
            now += step[1]
            for cls, due in p.pop_due_classes(now):
                assert cls == min(c for c in range(3) if model[c])
                model[cls].pop(0)
                assert due <= now
        elif step[0] in ("pop", "pop_due"):
            now += step[1]
            released = p.pop_due(now) if step[0] == "pop_due" else [p.pop(now)]
            for data, cls, due in filter(None, released):
                assert cls == min(c for c in range(3) if model[c])
                assert data == model[cls].pop(0)
                assert due <= now
        for c in range(3):
            assert p.queued_packets(c) == len(model[c]) <= config["max_packets"][c]


def test_pop_of_nothing_is_none() -> None:
    p = Pacer(1_000_000, 0)
    assert p.next_send_time() is None
    assert p.pop(10**9) is None
    assert p.pop_due(10**9) == []


@given(bitrate=st.integers(8_000, 20_000_000), factor=st.sampled_from([1.0, 2.5]),
       burst_us=st.sampled_from([0, 5_000, 40_000]),
       sizes=st.lists(st.integers(1, 1500), min_size=2, max_size=200),
       wakes=st.lists(st.integers(0, 30_000), min_size=1, max_size=60))
@settings(max_examples=200, deadline=None)
def test_release_rate(bitrate: int, factor: float, burst_us: int, sizes: list[int],
                      wakes: list[int]) -> None:
    """With everything queued at once (no queue time limit), however irregularly the caller wakes,
    the bytes released up to any slot never exceed rate x elapsed + the burst allowance + one
    packet, and once the caller has caught up each slot follows the previous one by exactly the
    previous packet's drain time (beyond the burst allowance)."""
    p = Pacer(bitrate, 0, pacing_factor=factor, burst_us=burst_us, queue_time_limit_us=0,
              max_packets=(1, 1, 1000))
    rate = int(bitrate * factor)
    for size in sizes:
        p.enqueue(bytes(size), VIDEO, 0)
    released: list[tuple[int, int]] = []
    now = 0
    for wake in wakes:
        now += wake
        released += [(len(d), due) for d, _, due in p.pop_due(now)]
    released += [(len(d), due) for d, _, due in p.pop_due(10**15)]
    assert [n for n, _ in released] == sizes
    sent = 0
    for size, due in released:
        sent += size
        # The debt after this packet: bytes so far minus what drained since 0, at most
        # allowance + this packet.
        assert sent * MICRO_BITS_PER_BYTE - rate * due <= rate * burst_us + size * \
            MICRO_BITS_PER_BYTE
    if burst_us == 0:
        for (size, due), (_, next_due) in itertools.pairwise(released):
            assert next_due - due == -(-size * MICRO_BITS_PER_BYTE // rate)


def test_keyframe_spacing_at_1_mbps() -> None:
    # 1 Mbps x 2.5 = 2.5 Mbps: a 1250-byte packet drains in 4 ms.
    p = Pacer(1_000_000, 0)
    for _ in range(10):
        p.enqueue(bytes(1250), VIDEO, 0)
    assert p.pacing_rate == 2_500_000
    assert [due for _, _, due in p.pop_due(10**9)] == [4_000 * i for i in range(10)]


def test_target_bitrate_change_applies_from_then_on() -> None:
    p = Pacer(1_000_000, 0)
    for _ in range(3):
        p.enqueue(bytes(1250), VIDEO, 0)
    assert p.pop(0) is not None  # 4 ms of debt at 2.5 Mbps
    p.set_target_bitrate(2_000_000, 2_000)  # half of it drained; the other half at 5 Mbps
    assert p.next_send_time() == 3_000


def test_audio_first_then_retransmissions_then_video() -> None:
    p = Pacer(1_000_000, 0)
    for cls, tag in [(VIDEO, b"v1"), (RTX, b"r1"), (VIDEO, b"v2"), (AUDIO, b"a1"), (RTX, b"r2"),
                     (AUDIO, b"a2")]:
        p.enqueue(tag, cls, 0)
    assert [d for d, _, _ in p.pop_due(10**9)] == [b"a1", b"a2", b"r1", b"r2", b"v1", b"v2"]


def test_full_queue_drops_oldest() -> None:
    p = Pacer(1_000_000, 0, max_packets=(2, 2, 3))
    drops = [p.enqueue(bytes([i]), VIDEO, 0) for i in range(5)]
    assert drops == [False, False, False, True, True]
    assert p.dropped_packets(VIDEO) == 2 and p.dropped_packets(AUDIO) == 0
    assert [d for d, _, _ in p.pop_due(10**9)] == [b"\x02", b"\x03", b"\x04"]


def test_queue_time_limit_raises_the_rate() -> None:
    # 1 kbps x 2.5 would need 16 s for 5000 bytes; the 2 s limit makes it 20 kbps.
    p = Pacer(1_000, 0)
    for _ in range(5):
        p.enqueue(bytes(1000), VIDEO, 0)
    assert p.pacing_rate == 20_000
    assert [due for _, _, due in p.pop_due(10**12)] == [0, 400_000, 800_000, 1_200_000, 1_600_000]
    assert p.pacing_rate == 2_500  # back to the paced rate once the queue is empty


@given(bitrate=st.integers(1_000, 2_000_000), limit_ms=st.integers(10, 2_000),
       arrivals=st.lists(st.tuples(st.integers(0, 100_000), st.integers(1, 1500),
                                   st.sampled_from(list(PacketClass))), min_size=1, max_size=60),
       wakes=st.lists(st.integers(0, 30_000), min_size=1, max_size=60))
@settings(max_examples=200, deadline=None)
def test_queue_time_limit_is_kept(bitrate: int, limit_ms: int,
                                  arrivals: list[tuple[int, int, PacketClass]],
                                  wakes: list[int]) -> None:
    """However slow the target and whatever the mix of classes, no packet is scheduled later
    than its enqueue time + the limit (+ 1 us of rounding per packet)."""
    limit = limit_ms * 1000
    p = Pacer(bitrate, 0, queue_time_limit_us=limit, max_packets=(1000, 1000, 1000))
    enqueued: dict[bytes, int] = {}
    now = 0
    released: list[tuple[bytes, int, int]] = []
    for (gap, size, cls), wake in zip(arrivals, wakes * len(arrivals)):
        now += gap
        released += p.pop_due(now)
        tag = len(enqueued).to_bytes(4, "big")
        enqueued[tag] = now
        p.enqueue(tag + bytes(size), cls, now)
        released += p.pop_due(now + wake)
        now = max(now, now + wake)
    released += p.pop_due(10**15)
    assert len(released) == len(enqueued)
    for data, _, due in released:
        assert due <= enqueued[data[:4]] + limit + len(released)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"target_bitrate": 0}, "target bitrate"),
    ({"pacing_factor": 0.0}, "pacing rate"),
    ({"pacing_factor": float("nan")}, "pacing rate"),
    ({"burst_us": -1}, "burst interval"),
    ({"queue_time_limit_us": -1}, "queue time limit"),
    ({"max_packets": (1, 0, 1)}, "at least 1 packet"),
])
def test_bad_configuration(kwargs: dict[str, Any], match: str) -> None:
    args = {"target_bitrate": 1_000_000, "now_us": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        Pacer(**args)
    with pytest.raises(ValueError, match=match):
        ReferencePacer(**args)


def test_bad_packet_size() -> None:
    for p in (Pacer(1_000_000, 0), ReferencePacer(1_000_000, 0)):
        for size in (-1, 65_536):
            with pytest.raises(ValueError, match="packet size must be 0 to 65535"):
                p.enqueue_size(size, VIDEO, 0)
            # A bad size anywhere in a batch queues none of it.
            with pytest.raises(ValueError, match="packet size must be 0 to 65535"):
                p.enqueue_sizes([100, size], VIDEO, 0)
            assert p.queued_packets() == 0
    with pytest.raises(ValueError, match="packet size must be 0 to 65535"):
        Pacer(1_000_000, 0).enqueue_sizes([2**70], VIDEO, 0)
    for p in (Pacer(1_000_000, 0), ReferencePacer(1_000_000, 0)):
        with pytest.raises(TypeError):
            p.enqueue_sizes([b"x"], VIDEO, 0)  # type: ignore[list-item]


def test_bad_packet_class() -> None:
    with pytest.raises(ValueError, match="packet class"):
        Pacer(1_000_000, 0).enqueue(b"x", 3, 0)
    with pytest.raises(ValueError, match="media kind"):
        pacer.packet_class("data")  # type: ignore[arg-type]
    assert pacer.packet_class("audio", retransmission=True) is AUDIO
    assert pacer.packet_class("video", retransmission=True) is RTX


# --- the asyncio driver, on real loopback UDP ------------------------------------------------

class Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, bytes]] = []
        self.done = asyncio.Event()
        self.expected = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.arrivals.append((asyncio.get_running_loop().time(), data))
        if len(self.arrivals) >= self.expected:
            self.done.set()


async def udp_pair() -> tuple[asyncio.DatagramTransport, Receiver, socket.socket]:
    loop = asyncio.get_running_loop()
    transport, receiver = await loop.create_datagram_endpoint(Receiver,
                                                              local_addr=("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setblocking(False)
    sender.connect(transport.get_extra_info("sockname"))
    return transport, receiver, sender


KEYFRAME, PACKET, BURSTS = 40_000, 1000, 3


@pytest.mark.parametrize("pacer_type", [Pacer, ReferencePacer], ids=["native", "python"])
async def test_paced_keyframe_bursts_arrive_spread_out(pacer_type: Any) -> None:
    """Three 40 kB keyframes queued at once at 1 Mbps: packet i cannot arrive before its slot,
    i x 1000 bytes / 2.5 Mbps = i x 3.2 ms after the burst was queued (minus the early margin),
    so the 120 packets are spread over at least ~380 ms, however loaded the machine is."""
    loop = asyncio.get_running_loop()
    transport, receiver, sock = await udp_pair()
    n = BURSTS * KEYFRAME // PACKET
    receiver.expected = n
    try:
        async with PacedSender(lambda d, c, t: sock.send(d) and None, 1_000_000,
                               pacer_type=pacer_type) as paced:
            start = loop.time()
            for i in range(n):
                paced.enqueue(i.to_bytes(4, "big") + bytes(PACKET - 4), "video")
            await asyncio.wait_for(receiver.done.wait(), 30)
    finally:
        transport.close()
        sock.close()
    order = [int.from_bytes(d[:4], "big") for _, d in receiver.arrivals]
    assert order == list(range(n))
    slot = PACKET * 8 / 2_500_000
    # A loaded machine can only make packets later, so this holds however busy it is.
    for i, (arrival, _) in enumerate(receiver.arrivals):
        assert arrival - start >= i * slot - 0.0005 - 1e-6, f"packet {i} arrived before its slot"


async def test_audio_overtakes_queued_video_on_the_wire() -> None:
    transport, receiver, sock = await udp_pair()
    receiver.expected = 12
    try:
        async with PacedSender(lambda d, c, t: sock.send(d) and None, 100_000) as paced:
            for i in range(10):
                paced.enqueue(b"v%d" % i + bytes(500), "video")
            paced.enqueue(b"a", "audio")
            paced.enqueue(b"r", "video", retransmission=True)
            await asyncio.wait_for(receiver.done.wait(), 30)
    finally:
        transport.close()
        sock.close()
    # All were queued before the sender's task first ran.
    tags = [d[:2].rstrip(b"\0") for _, d in receiver.arrivals]
    assert tags == [b"a", b"r"] + [b"v%d" % i for i in range(10)]


@pytest.mark.parametrize("pacer_type", [Pacer, ReferencePacer], ids=["native", "python"])
async def test_enqueue_many_keeps_order_and_drops_oldest(pacer_type: Any) -> None:
    """A frame's packets queued in one call leave in order after the audio queued with them;
    past the queue bound the oldest are dropped, as one enqueue() per packet would."""
    sent: list[bytes] = []
    done = asyncio.Event()

    def send(data: bytes, cls: PacketClass, due_us: int) -> None:
        sent.append(data)
        if len(sent) == 6:
            done.set()

    async with PacedSender(send, 1_000_000, max_packets=(100, 500, 5),
                           pacer_type=pacer_type) as paced:
        paced.enqueue_many([b"v%d" % i for i in range(3)], "video")
        paced.enqueue_many([b"v%d" % i for i in range(3, 7)], "video")  # drops v0 and v1
        paced.enqueue_many([b"a"], "audio")
        paced.enqueue_many([], "video")
        assert paced.dropped_packets(VIDEO) == 2
        await asyncio.wait_for(done.wait(), 30)
    assert sent == [b"a", b"v2", b"v3", b"v4", b"v5", b"v6"]


async def test_disabled_pacing_sends_at_once() -> None:
    sent: list[tuple[bytes, PacketClass]] = []
    async with PacedSender(lambda d, c, t: sent.append((d, c)), 1_000, enabled=False) as paced:
        for i in range(50):
            paced.enqueue(bytes([i]) * 1200, "video")
        paced.enqueue(b"a", "audio")
        # No await in between: nothing waited for a slot.
        assert len(sent) == 51 and sent[-1] == (b"a", AUDIO)
        assert paced.queued_packets() == 0


async def test_raising_the_target_wakes_the_sender() -> None:
    loop = asyncio.get_running_loop()
    sent: list[float] = []
    async with PacedSender(lambda d, c, t: sent.append(loop.time()), 8, pacing_factor=1.0,
                           queue_time_limit=0) as paced:
        paced.enqueue(bytes(1000), "video")
        paced.enqueue(bytes(1000), "video")  # due 1000 s after the first at 8 bps
        while not sent:
            await asyncio.sleep(0.001)
        paced.target_bitrate = 80_000_000  # now due 100 us after the first
        for _ in range(5000):
            if len(sent) == 2:
                break
            await asyncio.sleep(0.001)
        assert len(sent) == 2
        assert paced.target_bitrate == 80_000_000


async def test_enqueue_before_start_is_an_error() -> None:
    paced = PacedSender(lambda d, c, t: None, 1_000_000)
    with pytest.raises(RuntimeError, match="not started"):
        paced.enqueue(b"x", "video")


# --- the native socket sender, on real loopback UDP ------------------------------------------

KIND_OF = {AUDIO: ("audio", False), RTX: ("video", True), VIDEO: ("video", False)}


def socket_pair() -> tuple[socket.socket, socket.socket]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(30)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.connect(receiver.getsockname())
    return receiver, sender


def receive(sock: socket.socket, n: int) -> list[tuple[float, bytes]]:
    """n datagrams, each with the time it was read (never before it arrived)."""
    arrived = []
    for _ in range(n):
        data = sock.recv(2048)
        arrived.append((time.monotonic(), data))
    return arrived


def tagged(i: int, size: int) -> bytes:
    return i.to_bytes(4, "big") + bytes(size - 4)


@settings(max_examples=30, deadline=None)
# Runs of equal sizes, as a frame's packets, go out as one segmented datagram (UDP GSO).
@given(packets=st.lists(st.tuples(st.one_of(st.integers(4, 1200), st.sampled_from([1200, 300])),
                                  st.sampled_from(list(PacketClass))),
                        min_size=1, max_size=100),
       max_packets=st.tuples(*[st.integers(1, 12)] * 3),
       bitrate=st.integers(2_000_000, 50_000_000))
def test_socket_sender_sends_what_the_twin_releases(
        packets: list[tuple[int, PacketClass]], max_packets: tuple[int, int, int],
        bitrate: int) -> None:
    """Everything queued before the thread starts: what reaches the wire, in what order, at
    what scheduled spacing, and what the queue limits drop, all as the plain-Python twin says."""
    receiver, sender = socket_pair()
    twin = ReferencePacer(bitrate, 0, queue_time_limit_us=0, max_packets=max_packets)
    paced = PacedSocket(sender, bitrate, queue_time_limit=0, max_packets=max_packets,
                        record=True)
    with receiver, sender:
        for i, (size, cls) in enumerate(packets):
            twin.enqueue(tagged(i, size), cls, 0)
            kind, retransmission = KIND_OF[cls]
            paced.enqueue(tagged(i, size), kind, retransmission=retransmission)
        expected = twin.pop_due(10**15)
        with paced:
            arrived = receive(receiver, len(expected))
        receiver.setblocking(False)
        with pytest.raises(BlockingIOError):
            receiver.recv(2048)  # nothing beyond what the twin released
    assert [d for _, d in arrived] == [d for d, _, _ in expected]
    releases = paced.take_releases()
    assert [(c, size) for _, _, c, size in releases] == [(c, len(d)) for d, c, _ in expected]
    first, twin_first = releases[0][0], expected[0][2]
    assert [due - first for due, _, _, _ in releases] == [due - twin_first
                                                          for _, _, due in expected]
    assert [paced.dropped_packets(c) for c in PacketClass] == twin.dropped
    assert (paced.sent_packets, paced.send_errors, paced.queued_packets()) == (len(expected), 0, 0)


def test_socket_sender_spreads_keyframe_bursts() -> None:
    """As the asyncio driver's test: 120 packets of three 40 kB keyframes queued at once at
    1 Mbps cannot arrive before their slots (minus the tolerance), however loaded the machine."""
    receiver, sender = socket_pair()
    n = BURSTS * KEYFRAME // PACKET
    with receiver, sender, PacedSocket(sender, 1_000_000) as paced:
        start = time.monotonic()
        for burst in range(BURSTS):
            per_frame = KEYFRAME // PACKET
            paced.enqueue_many((tagged(burst * per_frame + i, PACKET) for i in range(per_frame)),
                               "video")
        arrived = receive(receiver, n)
    assert [int.from_bytes(d[:4], "big") for _, d in arrived] == list(range(n))
    slot = PACKET * 8 / 2_500_000
    for i, (arrival, _) in enumerate(arrived):
        assert arrival - start >= i * slot - 0.0005 - 1e-6, f"packet {i} arrived before its slot"


def test_socket_sender_audio_overtakes_queued_video() -> None:
    receiver, sender = socket_pair()
    paced = PacedSocket(sender, 100_000)
    with receiver, sender:
        paced.enqueue_many((b"v%d" % i + bytes(500) for i in range(10)), "video")
        paced.enqueue(b"a", "audio")
        paced.enqueue(b"r", "video", retransmission=True)
        with paced:
            arrived = receive(receiver, 12)
    assert [d[:2].rstrip(b"\0") for _, d in arrived] == [b"a", b"r"] + [b"v%d" % i
                                                                        for i in range(10)]


def test_socket_sender_wakes_for_a_higher_target() -> None:
    receiver, sender = socket_pair()
    with receiver, sender, PacedSocket(sender, 8, pacing_factor=1.0, queue_time_limit=0) as paced:
        paced.enqueue_many([bytes(1000), bytes(1000)], "video")  # the second due 1000 s later
        receive(receiver, 1)
        paced.target_bitrate = 80_000_000  # now due 100 us after the first
        receive(receiver, 1)
    # Counted once the thread has stopped: a packet can arrive before its send returns.
    assert paced.target_bitrate == 80_000_000 and paced.sent_packets == 2


def test_socket_sender_keeps_its_own_descriptor() -> None:
    """Closing the caller's socket neither stops the sender nor lets a reused descriptor number
    receive its packets."""
    receiver, sender = socket_pair()
    with receiver, PacedSocket(sender, 1_000_000) as paced:
        sender.close()
        paced.enqueue_many([b"x" * 100] * 3, "audio")
        assert [d for _, d in receive(receiver, 3)] == [b"x" * 100] * 3


def test_socket_sender_on_a_unix_datagram_socket() -> None:
    """Not UDP, so no segmentation offload: equal-sized packets still arrive one per datagram."""
    receiver, sender = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.settimeout(30)
    with receiver, sender, PacedSocket(sender, 100_000_000) as paced:
        paced.enqueue_many([tagged(i, 500) for i in range(10)], "video")
        assert [d for _, d in receive(receiver, 10)] == [tagged(i, 500) for i in range(10)]


def test_socket_sender_disabled_sends_at_once() -> None:
    receiver, sender = socket_pair()
    with receiver, sender, PacedSocket(sender, 1_000, enabled=False) as paced:
        paced.enqueue_many([bytes([i]) * 1200 for i in range(20)], "video")
        assert paced.sent_packets == 20 and paced.queued_packets() == 0
        assert [d[0] for _, d in receive(receiver, 20)] == list(range(20))


def test_socket_sender_bad_arguments() -> None:
    receiver, sender = socket_pair()
    unconnected = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver, sender, unconnected:
        with pytest.raises(ValueError, match="must be connected"):
            PacedSocket(unconnected, 1_000_000)
        stream, other_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with stream, other_end, pytest.raises(ValueError, match="datagram socket"):
            PacedSocket(stream, 1_000_000)
        with pytest.raises(ValueError, match="tolerance"):
            PacedSocket(sender, 1_000_000, tolerance=0.05)
        with pytest.raises(ValueError, match="target bitrate"):
            PacedSocket(sender, 0)
        with pytest.raises(ValueError, match="media kind"):
            PacedSocket(sender, 1_000_000).enqueue(b"x", "data")  # type: ignore[arg-type]
        with PacedSocket(sender, 1_000_000) as paced, pytest.raises(RuntimeError, match="already"):
            paced.start()
    with pytest.raises(ValueError, match="closed or not a socket"):
        PacedSocket(sender, 1_000_000)


# --- the floors benchmarks/pacer_cpu.py measures ----------------------------------------------

@pytest.mark.parametrize("batch", [1, 10, 100])
def test_send_cpu_sends_every_packet(batch: int) -> None:
    """The send floor sends what a loop of sock.send would: count datagrams of size bytes."""
    receiver, sender = socket_pair()
    with receiver, sender:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        assert native_pacer.send_cpu(sender.fileno(), 300, 150, batch) >= 0
        assert [d for _, d in receive(receiver, 150)] == [bytes(300)] * 150


@pytest.mark.parametrize("method", ["condvar", "nanosleep", "timerfd", "epoll"])
def test_wake_cpu_sleeps_until_each_deadline(method: str) -> None:
    start = time.monotonic()
    cpu, late_us = native_pacer.wake_cpu(2_000, 20, method, 100_000 if method == "condvar" else 0)
    assert time.monotonic() - start >= 0.04  # 20 deadlines 2 ms apart, the first 2 ms away
    assert cpu > 0 and late_us >= 0


def test_wake_cpu_sends_at_every_wake_up() -> None:
    receiver, sender = socket_pair()
    with receiver, sender:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        start = time.monotonic()
        native_pacer.wake_cpu(1_000, 12, "nanosleep", fd=sender.fileno(), packets=5, size=200)
        assert time.monotonic() - start >= 0.012  # slept until each of the 12 deadlines
        arrived = receive(receiver, 60)
    assert [d for _, d in arrived] == [bytes(200)] * 60


def test_wake_cpu_bad_arguments() -> None:
    with pytest.raises(ValueError, match="method must be"):
        native_pacer.wake_cpu(1_000, 1, "spin")
    with pytest.raises(ValueError, match="at least 1"):
        native_pacer.wake_cpu(0, 1)
    with pytest.raises(ValueError, match="at least 1 packet"):
        native_pacer.send_cpu(0, 100, 1, 0)
    with pytest.raises(ValueError, match="at most 65507"):
        native_pacer.send_cpu(0, 70_000, 1, 1)
