"""Re-offers keep the payload types and header extension ids the connection negotiated: the
SFU answers a browser's offer (numbered the browser's way) and later offers it new m-lines, which
Chromium refuses when a number changed meaning."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.codecs import is_rtx
from loopback_peers import (
    PatternTrack,
    ToneTrack,
    dominant_frequency,
    loopback_only,
    wait_connected,
)
from rtcroom.aiortc_ext.numbering import RenumberingPeerConnection
from rtcroom.aiortc_ext.peerconnection import bundled_peer_connection

# Chromium's numbering where aiortc's differs: opus 111, VP8 96 (RTX 97), H264 102-105, VP9 98
# (RTX 99); audio level 1, abs-send-time 2, mid 4.
BROWSER_PAYLOAD_TYPES = {96: 111, 97: 96, 98: 97, 99: 102, 100: 103, 101: 104, 102: 105,
                         103: 98, 104: 99}
BROWSER_EXTENSION_IDS = {1: 4, 2: 1, 3: 2}


@pytest.fixture(autouse=True)
def _loopback():
    with loopback_only():
        yield


def renumbered(sdp: str) -> str:
    description = aiortc_sdp.SessionDescription.parse(sdp)
    for media in description.media:
        if media.kind not in ("audio", "video"):
            continue
        media.fmt = [BROWSER_PAYLOAD_TYPES.get(pt, pt) for pt in media.fmt]
        for codec in media.rtp.codecs:
            codec.payloadType = BROWSER_PAYLOAD_TYPES.get(codec.payloadType, codec.payloadType)
            if is_rtx(codec):
                codec.parameters["apt"] = BROWSER_PAYLOAD_TYPES[codec.parameters["apt"]]
        for extension in media.rtp.headerExtensions:
            extension.id = BROWSER_EXTENSION_IDS[extension.id]
    return str(description)


def numbering(sdp: str) -> tuple[dict[int, set[str]], dict[str, set[int]]]:
    """Across all m-lines: payload type -> codecs it names, extension uri -> ids it has."""
    payload_types: dict[int, set[str]] = {}
    extensions: dict[str, set[int]] = {}
    for media in aiortc_sdp.SessionDescription.parse(sdp).media:
        if media.kind not in ("audio", "video"):
            continue
        for codec in media.rtp.codecs:
            name = f"{codec.mimeType.lower()}/{codec.clockRate}/{sorted(codec.parameters.items())}"
            payload_types.setdefault(codec.payloadType, set()).add(name)
        for extension in media.rtp.headerExtensions:
            extensions.setdefault(extension.uri, set()).add(extension.id)
    return payload_types, extensions


async def answer_then_reoffer(answerer: RTCPeerConnection) -> tuple[RTCPeerConnection, str]:
    """A "browser" (aiortc speaking Chromium's numbers) offers audio and video; ``answerer``
    answers, then adds an audio and a video m-line of its own and re-offers."""
    browser = RTCPeerConnection()
    browser.addTransceiver(ToneTrack(500), direction="sendonly")
    browser.addTransceiver(PatternTrack(), direction="sendonly")
    offer = await browser.createOffer()
    await browser.setLocalDescription(RTCSessionDescription(renumbered(offer.sdp), "offer"))
    await answerer.setRemoteDescription(browser.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await browser.setRemoteDescription(answerer.localDescription)
    answerer.addTransceiver(ToneTrack(900), direction="sendonly")
    answerer.addTransceiver(PatternTrack(), direction="sendonly")
    reoffer = await answerer.createOffer()
    return browser, reoffer.sdp


async def test_plain_aiortc_renumbers_a_reoffer() -> None:
    answerer = RTCPeerConnection()
    browser, sdp = await answer_then_reoffer(answerer)
    try:
        # The audio m-line negotiated with opus as 111 and mid as extension 4 is re-offered
        # with aiortc's own numbers.
        payload_types, extensions = numbering(sdp)
        assert 111 not in payload_types or extensions["urn:ietf:params:rtp-hdrext:sdes:mid"] != {
            4}, "aiortc now keeps the negotiated numbering: aiortc_ext.numbering may be unneeded"
    finally:
        await browser.close()
        await answerer.close()


async def test_reoffer_keeps_the_numbering_and_media_flows() -> None:
    answerer = bundled_peer_connection()
    assert isinstance(answerer, RenumberingPeerConnection)
    browser, sdp = await answer_then_reoffer(answerer)
    try:
        payload_types, extensions = numbering(sdp)
        # One meaning per payload type and one id per extension across the BUNDLE group, and
        # the ones the browser chose are kept.
        assert all(len(names) == 1 for names in payload_types.values()), payload_types
        assert all(len(ids) == 1 for ids in extensions.values()), extensions
        assert payload_types[111] == {"audio/opus/48000/[]"}
        assert next(iter(payload_types[96])).startswith("video/vp8/")
        assert extensions["urn:ietf:params:rtp-hdrext:sdes:mid"] == {4}
        assert extensions["urn:ietf:params:rtp-hdrext:ssrc-audio-level"] == {1}
        media = aiortc_sdp.SessionDescription.parse(sdp).media
        assert [m.kind for m in media] == ["audio", "video", "audio", "video"]
        assert media[2].fmt[0] == 111 and media[3].fmt[0] == 96

        # The renegotiation completes and the new audio m-line's tone arrives.
        await answerer.setLocalDescription(RTCSessionDescription(sdp, "offer"))
        await browser.setRemoteDescription(answerer.localDescription)
        await browser.setLocalDescription(await browser.createAnswer())
        await answerer.setRemoteDescription(browser.localDescription)
        await wait_connected(browser, answerer)
        track = browser.getTransceivers()[2].receiver.track
        samples = []
        for _ in range(50):
            frame = await asyncio.wait_for(track.recv(), 10)
            samples.append(frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0])
        tone = np.concatenate(samples[10:]).astype(np.float64)
        assert abs(dominant_frequency(tone, frame.sample_rate) - 900) < 10
    finally:
        await browser.close()
        await answerer.close()


async def test_first_offer_is_aiortcs_own() -> None:
    pc = bundled_peer_connection()
    pc.addTransceiver(ToneTrack(440), direction="sendonly")
    plain = RTCPeerConnection()
    plain.addTransceiver(ToneTrack(440), direction="sendonly")
    try:
        ours, theirs = await pc.createOffer(), await plain.createOffer()
        assert numbering(ours.sdp) == numbering(theirs.sdp)
    finally:
        await pc.close()
        await plain.close()
