"""Why rtcroom's peer connections use max-bundle: with aiortc's default policy the second track
of a kind (after one of another kind) is left on a transport that never connects."""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection
from loopback_peers import PatternTrack, ToneTrack, loopback_only, negotiate, wait_connected
from rtcroom.aiortc_ext.peerconnection import bundled_peer_connection


@pytest.fixture(autouse=True)
def _loopback():
    with loopback_only():
        yield


async def _transport_states(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> list:
    for track in (ToneTrack(440), PatternTrack(), PatternTrack()):
        offerer.addTransceiver(track, direction="sendonly")
    await negotiate(offerer, answerer)
    try:
        await wait_connected(offerer, answerer)
        return [t.sender.transport.state for t in offerer.getTransceivers()]
    finally:
        await offerer.close()
        await answerer.close()


async def test_default_bundle_policy_strands_later_tracks_of_a_kind() -> None:
    states = await _transport_states(RTCPeerConnection(), RTCPeerConnection())
    assert states[:2] == ["connected"] * 2 and states[2] != "connected", (
        "aiortc now bundles every transceiver with the default policy: "
        "rtcroom.aiortc_ext.peerconnection may be unnecessary")


async def test_max_bundle_connects_every_track() -> None:
    states = await _transport_states(bundled_peer_connection(), bundled_peer_connection())
    assert states == ["connected"] * 3
