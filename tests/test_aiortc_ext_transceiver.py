"""rtcroom.aiortc_ext.transceiver: an m-line made inactive carries a new track after
retire + renew, on both ends of a real aiortc connection; and what it relies on in aiortc is
still there (an upgrade that moves it fails here first)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from loopback_peers import (
    ToneTrack,
    dominant_frequency,
    loopback_only,
    negotiate,
    wait_connected,
)
from rtcroom.aiortc_ext.peerconnection import bundled_peer_connection
from rtcroom.aiortc_ext.transceiver import renew, retire


@pytest.fixture(autouse=True)
def _loopback():
    with loopback_only():
        yield


async def test_what_renew_relies_on_is_still_in_aiortc() -> None:
    pc = bundled_peer_connection()
    transceiver = pc.addTransceiver("audio")
    # Name-mangled slots the transceiver's sender and receiver properties read.
    assert transceiver.sender is transceiver._RTCRtpTransceiver__sender  # type: ignore[attr-defined]
    assert transceiver.receiver is transceiver._RTCRtpTransceiver__receiver  # type: ignore[attr-defined]
    assert isinstance(transceiver.sender._ssrc, int)
    assert isinstance(transceiver.sender._stream_id, str)
    assert callable(RTCRtpReceiver._set_rtcp_ssrc)
    # The peer connection reaches a transceiver's sender and receiver through these properties
    # every time it starts them (not through references kept from creation).
    assert isinstance(RTCRtpTransceiver.sender, property)
    assert isinstance(RTCRtpTransceiver.receiver, property)
    assert [type(s) for s in pc.getSenders()] == [RTCRtpSender]


async def test_renew_refuses_a_transceiver_still_negotiated_active() -> None:
    offerer, answerer = bundled_peer_connection(), bundled_peer_connection()
    try:
        transceiver = offerer.addTransceiver(ToneTrack(440), direction="sendonly")
        await negotiate(offerer, answerer)
        await retire(transceiver)
        with pytest.raises(ValueError, match="not inactive"):
            renew(transceiver)
    finally:
        await offerer.close()
        await answerer.close()


async def _frequency(track, frames: int = 30) -> float:
    chunks = []
    for i in range(frames + 10):
        frame = await asyncio.wait_for(track.recv(), 10)
        if i >= 10:  # the decoder's first output may still ramp up
            chunks.append(frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0])
    return dominant_frequency(np.concatenate(chunks).astype(np.float64), frame.sample_rate)


async def test_an_inactive_m_line_carries_a_new_track_after_retire_and_renew() -> None:
    offerer, answerer = bundled_peer_connection(), bundled_peer_connection()
    tracks = []
    answerer.on("track", tracks.append)
    try:
        sending = offerer.addTransceiver(ToneTrack(500), direction="sendonly")
        await negotiate(offerer, answerer)
        await wait_connected(offerer, answerer)
        assert abs(await _frequency(tracks[0]) - 500) < 10
        first_ssrc = sending.sender._ssrc

        # The offerer ends the stream; the answerer retires and renews its end.
        sending.direction = "inactive"
        await retire(sending)
        await negotiate(offerer, answerer)
        receiving = answerer.getTransceivers()[0]
        assert receiving.currentDirection == "inactive"
        await retire(receiving)
        assert tracks[0].readyState == "ended"
        renew(receiving)
        assert receiving.receiver.track is None

        # A new track on the same m-line: a new msid and SSRC, and the answerer sees a new track.
        renew(sending)
        sending.sender.replaceTrack(ToneTrack(900))
        sending.direction = "sendonly"
        await negotiate(offerer, answerer)
        assert len(offerer.getTransceivers()) == len(answerer.getTransceivers()) == 1
        assert sending.sender._ssrc != first_ssrc
        assert len(tracks) == 2 and tracks[1] is receiving.receiver.track
        assert abs(await _frequency(tracks[1]) - 900) < 10
    finally:
        await offerer.close()
        await answerer.close()
