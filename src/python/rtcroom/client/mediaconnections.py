"""What the client's two ways of carrying media share: one connection to the server's SFU in
group rooms (:class:`rtcroom.client.groupconnection.GroupPeerConnection`), one per direction and
remote participant in peer-to-peer rooms (:class:`rtcroom.client.peerconnections.PeerConnections`).
Both tell the room about tracks, data channels and connection states through the same callbacks,
and give a data track one data channel per connection that carries it."""

from __future__ import annotations

from collections.abc import Callable

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from rtcroom.client.localtrack import LocalDataTrack, LocalTrack
from rtcroom.signaling.messages import PeerConnectionState

__all__ = ["MediaConnections"]


class MediaConnections:
    def __init__(
        self,
        configuration: Callable[[], RTCConfiguration],
        send: Callable[[PeerConnectionState], None],
        on_track: Callable[[MediaStreamTrack, str], None],
        on_channel: Callable[[RTCDataChannel], None],
        on_state: Callable[[str, str], None],
        dscp: bool = False,
        codecs: dict[str, list[str]] | None = None,
    ) -> None:
        self._configuration = configuration
        self._codecs = codecs or {}
        self._send = send
        self._on_track = on_track
        self._on_channel = on_channel
        self._on_state = on_state
        self._dscp = dscp
        self._tracks: list[LocalTrack] = []

    @staticmethod
    def _open_channel(pc: RTCPeerConnection, track: LocalDataTrack) -> RTCDataChannel:
        channel = pc.createDataChannel(
            track.id, ordered=track.ordered, maxPacketLifeTime=track.max_packet_life_time,
            maxRetransmits=track.max_retransmits)
        track._add_data_channel(channel)
        return channel

    @staticmethod
    def _close_channel(track: LocalTrack, channel: RTCDataChannel) -> None:
        if isinstance(track, LocalDataTrack):
            track._remove_data_channel(channel)
        channel.close()
