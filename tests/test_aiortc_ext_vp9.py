"""rtcroom.aiortc_ext.vp9: what it relies on in aiortc is still there (an upgrade that moves it
fails here, by name); the RTP payload format (RFC 9628) round trip and the SFU's VP9 keyframe
test against generated descriptors (hypothesis); negotiation (VP8 stays the default, VP9
profiles match exactly); and two real aiortc peers sending VP9 over loopback."""

from __future__ import annotations

import asyncio
import fractions
import inspect

import aiortc.codecs
import aiortc.rtcpeerconnection
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.codecs.base import Decoder, Encoder
from aiortc.codecs.vpx import number_of_threads
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback_peers import (
    PatternTrack,
    looks_like_pattern,
    loopback_only,
    negotiate,
    wait_connected,
)
from rtcroom.aiortc_ext import vp9
from rtcroom.aiortc_ext.encoder import encoder_of
from rtcroom.aiortc_ext.rtp import negotiated_codecs
from rtcroom.aiortc_ext.vp9 import (
    PACKET_MAX,
    GroupPicture,
    ScalabilityStructure,
    Vp9Decoder,
    Vp9Encoder,
    Vp9PayloadDescriptor,
    keyframe_size,
    vp9_depayload,
    vp9_packetize,
)
from rtcroom.client.codecs import codec_preferences
from rtcroom.media.keyframe import KEYFRAME_TESTS, is_vp9_keyframe

# --- what vp9 relies on in aiortc ---------------------------------------------------------------


def test_aiortc_internals_vp9_relies_on() -> None:
    # The codec table offers and answers are built from, shared with the peer connection.
    assert aiortc.rtcpeerconnection.CODECS is aiortc.codecs.CODECS
    video = aiortc.codecs.CODECS["video"]
    assert all(isinstance(c, RTCRtpCodecParameters) for c in video)
    assert "CODECS[transceiver.kind]" in inspect.getsource(RTCPeerConnection.createOffer)
    assert "CODECS[media.kind]" in inspect.getsource(RTCPeerConnection.setRemoteDescription)
    # The factories are looked up by module-level name where they are called.
    assert "get_encoder(codec)" in inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert "get_decoder(codec)" in inspect.getsource(aiortc.rtcrtpreceiver.decoder_worker)
    assert "depayload(codec, packet.payload)" in inspect.getsource(
        aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet)
    assert "is_codec_compatible(codec, c)" in inspect.getsource(
        aiortc.rtcpeerconnection.find_common_codecs)
    for name in ("get_encoder", "get_decoder", "depayload"):
        assert getattr(aiortc.codecs, name).__wrapped__.__module__ == "aiortc.codecs"
    assert aiortc.rtcrtpsender.get_encoder is aiortc.codecs.get_encoder
    assert aiortc.rtcrtpreceiver.get_decoder is aiortc.codecs.get_decoder
    assert aiortc.rtcrtpreceiver.depayload is aiortc.codecs.depayload
    assert getattr(aiortc.rtcpeerconnection.is_codec_compatible, "_rtcroom_vp9", False)
    assert list(inspect.signature(number_of_threads).parameters) == ["pixels", "cpus"]
    assert inspect.isabstract(Encoder) and inspect.isabstract(Decoder)
    frame = JitterFrame(data=b"x", timestamp=1)
    assert (frame.data, frame.timestamp) == (b"x", 1)


def test_vp9_follows_the_other_video_codecs_with_its_rtx() -> None:
    assert vp9.libvpx_vp9()  # this PyAV has it, so VP9 is registered
    video = aiortc.codecs.CODECS["video"]
    [entry] = [c for c in video if c.mimeType == "video/VP9"]
    vp8 = next(c for c in video if c.mimeType == "video/VP8")
    assert entry.parameters == {"profile-id": "0"} and entry.clockRate == 90000
    assert entry.rtcpFeedback == vp8.rtcpFeedback
    [rtx] = [c for c in video if c.parameters.get("apt") == entry.payloadType]
    assert rtx.mimeType == "video/rtx"
    payload_types = [c.payloadType for c in video]
    assert len(set(payload_types)) == len(payload_types)
    names = [c.mimeType for c in RTCRtpSender.getCapabilities("video").codecs]
    assert names[0] == "video/VP8" and "video/VP9" in names
    assert [c.mimeType for c in codec_preferences("video", ["VP9"])][:2] == ["video/VP9",
                                                                         "video/VP8"]
    assert KEYFRAME_TESTS["video/vp9"] is is_vp9_keyframe


# --- payload format -------------------------------------------------------------------------

group_pictures = st.builds(GroupPicture, tid=st.integers(0, 7), switching_up=st.booleans(),
                           p_diffs=st.lists(st.integers(1, 255), max_size=3).map(tuple))


@st.composite
def scalability_structures(draw: st.DrawFn) -> ScalabilityStructure:
    layers = draw(st.integers(1, 8))
    sizes = st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
    return ScalabilityStructure(
        spatial_layers=layers,
        resolutions=draw(st.none() | st.lists(sizes, min_size=layers, max_size=layers)
                         .map(tuple)),
        group=draw(st.none() | st.lists(group_pictures, max_size=8).map(tuple)))


@st.composite
def descriptors(draw: st.DrawFn) -> Vp9PayloadDescriptor:
    flexible = draw(st.booleans())
    predicted = draw(st.booleans())
    long_id = draw(st.booleans())
    layers = draw(st.booleans())
    picture_id = draw(st.none() | st.integers(0, 0x7FFF if long_id else 0x7F))
    return Vp9PayloadDescriptor(
        start_of_frame=draw(st.booleans()), end_of_frame=draw(st.booleans()),
        inter_picture_predicted=predicted, flexible=flexible,
        not_reference_for_upper=draw(st.booleans()),
        picture_id=picture_id, long_picture_id=long_id or picture_id is None,
        tid=draw(st.integers(0, 7)) if layers else None,
        switching_up=draw(st.booleans()) if layers else False,
        sid=draw(st.integers(0, 7)) if layers else 0,
        inter_layer_dependency=draw(st.booleans()) if layers else False,
        tl0picidx=draw(st.integers(0, 255)) if layers and not flexible else None,
        p_diffs=tuple(draw(st.lists(st.integers(1, 127), min_size=1, max_size=3)))
        if flexible and predicted else (),
        scalability=draw(st.none() | scalability_structures()))


def frame_header(profile: int, show_existing: bool, keyframe: bool) -> int:
    """The first byte of a VP9 uncompressed header."""
    bits = [1, 0, profile & 1, profile >> 1] + ([0] if profile == 3 else [])
    bits += [int(show_existing), int(not keyframe)] + [0] * 3
    return int("".join(map(str, bits[:8])), 2)


@settings(max_examples=400, deadline=None)
@given(descriptors(), st.integers(0, 3), st.booleans(), st.booleans(), st.binary(max_size=20))
def test_descriptor_round_trip_and_keyframe_test(
        descriptor: Vp9PayloadDescriptor, profile: int, show_existing: bool, key: bool,
        rest: bytes) -> None:
    data = bytes([frame_header(profile, show_existing, key)]) + rest
    payload = bytes(descriptor) + data
    parsed, tail = Vp9PayloadDescriptor.parse(payload)
    assert parsed == descriptor and tail == data
    assert vp9_depayload(payload) == data
    # The oracle: RFC 9628's fields as parsed, and the header's frame_type.
    expected = (descriptor.start_of_frame and not descriptor.inter_picture_predicted
                and descriptor.sid == 0 and not show_existing and key)
    assert is_vp9_keyframe(payload, 0, len(payload)) == expected
    # Inside a larger buffer, as the SFU calls it (RTP header before, padding after).
    framed = bytes(12) + payload + bytes(3)
    assert is_vp9_keyframe(framed, 12, 12 + len(payload)) == expected


@settings(max_examples=300, deadline=None)
@given(descriptors())
def test_a_truncated_descriptor_is_an_error_never_a_keyframe(
        descriptor: Vp9PayloadDescriptor) -> None:
    head = bytes(descriptor)
    for cut in range(len(head)):
        with pytest.raises(ValueError):
            Vp9PayloadDescriptor.parse(head[:cut])
        # What follows the end looks like a keyframe's header: the test must not read it.
        assert not is_vp9_keyframe(head[:cut] + bytes([0x82]) * 64, 0, cut)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=40))
def test_any_bytes_parse_or_raise_value_error_and_never_break_the_keyframe_test(
        payload: bytes) -> None:
    keyframe = is_vp9_keyframe(payload, 0, len(payload))  # the SFU calls it on every packet
    try:
        descriptor, data = Vp9PayloadDescriptor.parse(payload)
    except ValueError:
        assert not keyframe
        return
    if keyframe:
        assert descriptor.start_of_frame and not descriptor.inter_picture_predicted
        assert descriptor.sid == 0 and data


def keyframe_bytes(width: int, height: int, tail: bytes) -> bytes:
    """The start of a profile 0 VP9 keyframe of that size (BT.601, studio range)."""
    bits = "10" "0" "0" "0" "0" "1" "0"  # marker, profile 0, not existing, key, shown, not ER
    bits += format(0x498342, "024b") + "010" "0"  # sync code, color space BT.601, range
    bits += format(width - 1, "016b") + format(height - 1, "016b")
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") + tail


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 0x10000), st.integers(1, 0x10000), st.binary(max_size=5000),
       st.booleans(), st.integers(0, 0x7FFF), st.integers(0, 255))
def test_packetize_depayload_round_trip(width: int, height: int, tail: bytes, key: bool,
                                        picture_id: int, tl0picidx: int) -> None:
    frame = keyframe_bytes(width, height, tail) if key else bytes([0x86]) + tail
    assert keyframe_size(frame) == ((width, height) if key else None)
    payloads = vp9_packetize(frame, picture_id, tl0picidx)
    assert b"".join(vp9_depayload(p) for p in payloads) == frame
    assert all(len(p) <= PACKET_MAX for p in payloads)
    parsed = [Vp9PayloadDescriptor.parse(p)[0] for p in payloads]
    assert [d.start_of_frame for d in parsed] == [True] + [False] * (len(parsed) - 1)
    assert [d.end_of_frame for d in parsed] == [False] * (len(parsed) - 1) + [True]
    for d in parsed:
        assert (d.picture_id, d.long_picture_id, d.tid, d.sid, d.tl0picidx, d.flexible) == (
            picture_id, True, 0, 0, tl0picidx, False)
        assert d.inter_picture_predicted is not key
    fits = max(width, height) <= 0xFFFF
    assert parsed[0].scalability == (ScalabilityStructure(
        resolutions=((width, height),) if fits else None,
        group=(GroupPicture(0, False, (1,)),)) if key else None)
    assert all(d.scalability is None for d in parsed[1:])
    assert [is_vp9_keyframe(p, 0, len(p)) for p in payloads] == [key] + [False] * (
        len(payloads) - 1)


def test_malformed_descriptors_are_refused() -> None:
    with pytest.raises(ValueError):  # flexible, predicted, a fourth reference difference
        Vp9PayloadDescriptor.parse(bytes([0x58, 0x03, 0x05, 0x07, 0x09]))
    with pytest.raises(ValueError):
        bytes(Vp9PayloadDescriptor(tid=0))  # non-flexible layer indices without TL0PICIDX
    with pytest.raises(ValueError):
        bytes(ScalabilityStructure(spatial_layers=2, resolutions=((1, 1),)))


# --- encoder and decoder ------------------------------------------------------------------------

def pattern_frame(i: int) -> av.VideoFrame:
    rng = np.random.default_rng(i)
    image = np.full((120, 160, 3), 60, np.uint8)
    image[:, (i * 4) % 140:(i * 4) % 140 + 20] = 220
    image += rng.integers(0, 8, image.shape, dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    frame.pts, frame.time_base = i, fractions.Fraction(1, 30)
    return frame


def test_encoder_keyframes_on_request_and_decoder_reads_them() -> None:
    encoder, decoder = Vp9Encoder(), Vp9Decoder()
    keyframes, decoded = [], []
    picture_ids = []
    for i in range(12):
        payloads, timestamp = encoder.encode(pattern_frame(i), force_keyframe=i == 6)
        assert timestamp == convert_timebase(i, fractions.Fraction(1, 30), VIDEO_TIME_BASE)
        keyframes.append(is_vp9_keyframe(payloads[0], 0, len(payloads[0])))
        picture_ids.append(Vp9PayloadDescriptor.parse(payloads[0])[0].picture_id)
        data = b"".join(vp9_depayload(p) for p in payloads)
        decoded += decoder.decode(JitterFrame(data, timestamp))
    assert keyframes == [True] + [False] * 5 + [True] + [False] * 5
    assert all((b - a) % (1 << 15) == 1 for a, b in zip(picture_ids, picture_ids[1:]))
    assert len(decoded) == 12 and (decoded[-1].width, decoded[-1].height) == (160, 120)
    # A packet of another encoder passes through pack() with the same payload format.
    packet = av.Packet(keyframe_bytes(160, 120, bytes(10)))
    packet.pts, packet.time_base = 30, fractions.Fraction(1, 30)
    payloads, timestamp = encoder.pack(packet)
    assert timestamp == convert_timebase(30, fractions.Fraction(1, 30), VIDEO_TIME_BASE)
    assert is_vp9_keyframe(payloads[0], 0, len(payloads[0]))


def test_encoder_bitrate_follows_aiortcs_vp8_clamp_and_reopens() -> None:
    encoder = Vp9Encoder()
    encoder.encode(pattern_frame(0))
    first = encoder.codec
    encoder.target_bitrate = 10_000_000
    assert encoder.target_bitrate == vp9.MAX_BITRATE
    payloads, _ = encoder.encode(pattern_frame(1))
    # A new context for the new rate, which starts with a keyframe.
    assert encoder.codec is not first and encoder.codec is not None
    assert encoder.codec.bit_rate == vp9.MAX_BITRATE
    assert is_vp9_keyframe(payloads[0], 0, len(payloads[0]))


# --- negotiation ----------------------------------------------------------------------------

def video_formats(sdp: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in sdp.splitlines()
            if line.startswith("a=rtpmap:") and "/90000" in line]


async def test_vp8_stays_the_default_and_vp9_is_chosen_when_preferred() -> None:
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        offerer.addTransceiver("video")
        answerer.addTransceiver("video")
        await negotiate(offerer, answerer)
        assert negotiated_codecs(offerer.getTransceivers()[0])[0].mimeType == "video/VP8"
        assert "VP9/90000" in video_formats(offerer.localDescription.sdp)
    finally:
        await offerer.close()
        await answerer.close()


async def test_vp9_profiles_match_exactly() -> None:
    # A browser-like offer: VP9 profile 2 first, then profile 0.
    source = RTCPeerConnection()
    source.addTransceiver("video")
    await source.setLocalDescription(await source.createOffer())
    offer = source.localDescription.sdp
    await source.close()
    vp9_pt = next(c.payloadType for c in aiortc.codecs.CODECS["video"]
                  if c.mimeType == "video/VP9")
    m_line = next(line for line in offer.splitlines() if line.startswith("m=video"))
    offer = offer.replace(m_line, m_line.replace(" 97 ", " 120 97 ", 1)).replace(
        f"a=rtpmap:{vp9_pt} VP9/90000",
        f"a=rtpmap:120 VP9/90000\r\na=fmtp:120 profile-id=2\r\na=rtpmap:{vp9_pt} VP9/90000")
    answerer = RTCPeerConnection()
    try:
        await answerer.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await answerer.setLocalDescription(await answerer.createAnswer())
        assert "a=rtpmap:120 " not in answerer.localDescription.sdp
        # aiortc alone would answer 120 (offered first) with profile 0's parameters.
        [entry] = [c for c in negotiated_codecs(answerer.getTransceivers()[0])
                   if c.mimeType == "video/VP9"]
        assert (entry.payloadType, entry.parameters) == (vp9_pt, {"profile-id": "0"})
    finally:
        await answerer.close()


async def test_two_aiortc_peers_send_and_decode_vp9() -> None:
    with loopback_only():
        offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        transceiver = offerer.addTransceiver(PatternTrack(160, 120), direction="sendonly")
        transceiver.setCodecPreferences(codec_preferences("video", ["VP9"]))
        received: asyncio.Queue = asyncio.Queue()
        answerer.on("track", received.put_nowait)
        await negotiate(offerer, answerer)
        await wait_connected(offerer, answerer)
        track = await asyncio.wait_for(received.get(), 10)
        patterns = 0
        while patterns < 5:
            frame = await asyncio.wait_for(track.recv(), 10)
            patterns += looks_like_pattern(frame)
        assert negotiated_codecs(transceiver)[0].mimeType == "video/VP9"
        assert isinstance(encoder_of(transceiver.sender), Vp9Encoder)
    finally:
        await offerer.close()
        await answerer.close()
