"""Group-room media: one RTCPeerConnection to the server's SFU carries everything.

The server decides whose turn it is to offer (see :mod:`rtcroom.server.grouproom`): it sends
``create-offer`` when this participant's published tracks changed, and then this end adds a
sendonly transceiver (a data channel) for each new track, stops the unpublished ones and offers;
it sends an ``offer`` when what this participant receives changed, and this end answers, handing
each new m-line's track on under the track id its ``a=msid`` names. This end never offers unasked,
so the two ends' offers never collide (aiortc cannot roll one back).

With ``simulcast`` (VP8 simulcast among the preferred video codecs), each video track goes out
as three VP8 layers (a quarter, half and the full size of the source) on one m-line
(:class:`rtcroom.aiortc_ext.simulcast.SimulcastSender`), announced in every offer this end sends
and started once the connection is up (one full-size stream instead where the server answers
another codec first). Only here: a group room's SFU forwards each subscriber
the layer that fits it, while in a peer-to-peer room the receiving end would get every layer.

Same interface as :class:`rtcroom.client.peerconnections.PeerConnections`, which the room
connection uses in peer-to-peer rooms.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from rtcroom.aiortc_ext.dscp import enable_dscp
from rtcroom.aiortc_ext.peerconnection import bundled_peer_connection
from rtcroom.aiortc_ext.rtp import ForwardedTrack
from rtcroom.aiortc_ext.simulcast import SimulcastSender
from rtcroom.aiortc_ext.transceiver import renew, retire
from rtcroom.client.codecs import prefer_codecs
from rtcroom.client.localtrack import LocalDataTrack, LocalMediaTrack, LocalTrack, LocalVideoTrack
from rtcroom.client.mediaconnections import MediaConnections
from rtcroom.signaling.messages import PeerConnectionState, SessionDescription
from rtcroom.signaling.sdp import inactive_mids, msid_track_ids

__all__ = ["GroupPeerConnection"]

logger = logging.getLogger("rtcroom.webrtc")


class GroupPeerConnection(MediaConnections):
    def __init__(
        self,
        configuration: Callable[[], RTCConfiguration],
        send: Callable[[PeerConnectionState], None],
        on_track: Callable[[MediaStreamTrack, str], None],
        on_channel: Callable[[RTCDataChannel], None],
        on_state: Callable[[str, str], None],
        dscp: bool = False,
        codecs: dict[str, list[str]] | None = None,
        simulcast: bool = False,
    ) -> None:
        super().__init__(configuration, send, on_track, on_channel, on_state, dscp, codecs)
        self._simulcast = simulcast
        self._senders: dict[LocalTrack, tuple[RTCRtpTransceiver, MediaStreamTrack]] = {}
        self._channels: dict[LocalTrack, RTCDataChannel] = {}
        self._layered: dict[LocalTrack, SimulcastSender] = {}
        self.pc_id: str | None = None
        """The wire id of the connection to the server; a fresh connection gets a fresh one."""
        self._state_id: str | None = None
        """The id its states are reported under: the first one, so that a fresh connection's
        "connected" ends the reconnecting its predecessor's failure started."""
        self.pc: RTCPeerConnection | None = None
        self._offered_revision = 0
        self._answer: SessionDescription | None = None
        self._lock = asyncio.Lock()
        self._new_tracks: list[MediaStreamTrack] = []

    # --- what we publish (sent when the server asks for an offer) -------------------------------

    def add_track(self, track: LocalTrack) -> None:
        if track not in self._tracks:
            self._tracks.append(track)

    def remove_track(self, track: LocalTrack) -> None:
        if track in self._tracks:
            self._tracks.remove(track)
        sent = self._senders.pop(track, None)
        if sent is not None:
            transceiver, tap = sent
            layered = self._layered.pop(track, None)
            if layered is not None:
                layered.close()
            transceiver.sender.replaceTrack(None)
            transceiver.direction = "inactive"
            tap.stop()
        channel = self._channels.pop(track, None)
        if channel is not None:
            self._close_channel(track, channel)

    def _attach_tracks(self, pc: RTCPeerConnection) -> None:
        for track in self._tracks:
            if isinstance(track, LocalMediaTrack) and track not in self._senders:
                tap = track._sender_track()
                layered = self._simulcast and isinstance(track, LocalVideoTrack)
                transceiver = pc.addTransceiver(
                    ForwardedTrack("video", id=tap.id) if layered else tap, direction="sendonly")
                prefer_codecs(transceiver, self._codecs)
                self._senders[track] = (transceiver, tap)
                if layered:
                    self._layered[track] = SimulcastSender(transceiver, tap)
            elif isinstance(track, LocalDataTrack) and track not in self._channels:
                self._channels[track] = self._open_channel(pc, track)

    # --- what the server sends ------------------------------------------------------------------

    async def handle(self, state: PeerConnectionState) -> None:
        description = state.description
        if self.pc_id is None and description is not None and description.type in (
                "create-offer", "offer"):
            self.pc_id = state.id
            self._state_id = self._state_id or state.id
        if state.id != self.pc_id or description is None:
            return  # aiortc's descriptions carry their candidates: no trickle to apply
        async with self._lock:
            try:
                if description.type == "create-offer":
                    await self._offer(description.revision)
                elif description.type == "offer":
                    await self._answer_offer(description)
                elif description.type == "answer":
                    await self._apply_answer(description)
                elif description.type == "close" and self.pc is not None:
                    # The server's end failed: start over (its create-offer or offer follows,
                    # for a connection of a new id).
                    self._on_state(self._state_id or "", "failed")
                    await self._drop(self.pc)
            except Exception:
                logger.exception("negotiating %s with the server failed", description.type)

    def _ensure_pc(self) -> RTCPeerConnection:
        if self.pc is None:
            pc = self.pc = bundled_peer_connection(configuration=self._configuration())
            if self._dscp:
                enable_dscp(pc)
            pc.on("track", self._new_tracks.append)
            pc.on("datachannel", self._on_channel)
            pc_id = self._state_id or ""
            pc.on("connectionstatechange", self._start_layers)

            @pc.on("connectionstatechange")
            def state_changed() -> None:
                if self.pc is not pc:
                    return  # closed by us
                # A lost ICE path can close the DTLS transport, and so the connection,
                # without a "failed" first.
                state = "failed" if pc.connectionState == "closed" else pc.connectionState
                self._on_state(pc_id, state)
                if state == "failed":
                    asyncio.ensure_future(self._failed(pc))

        return self.pc

    async def _offer(self, revision: int) -> None:
        pc = self._ensure_pc()
        if pc.signalingState == "have-local-offer":
            # Asked again (after a resumed session): our offer or its answer was lost.
            self._offered_revision = revision
        else:
            self._attach_tracks(pc)
            await pc.setLocalDescription(await pc.createOffer())
            self._offered_revision = revision
        sdp = pc.localDescription.sdp
        for layered in self._layered.values():
            sdp = layered.announce(sdp)
        self._send(PeerConnectionState(id=self.pc_id or "", description=SessionDescription(
            type="offer", revision=revision, sdp=sdp)))

    async def _apply_answer(self, description: SessionDescription) -> None:
        pc = self.pc
        if (pc is None or description.revision != self._offered_revision
                or pc.signalingState != "have-local-offer"):
            return  # an answer to an offer since replaced
        await pc.setRemoteDescription(RTCSessionDescription(description.sdp or "", "answer"))
        self._start_layers()

    def _start_layers(self) -> None:
        """Start the simulcast senders negotiated on a connected connection: before it is up,
        their first keyframes would be lost."""
        pc = self.pc
        if pc is None or pc.connectionState != "connected":
            return
        for layered in self._layered.values():
            if not layered.started and layered.transceiver.currentDirection == "sendonly":
                layered.start()

    async def _answer_offer(self, description: SessionDescription) -> None:
        answered = self._answer
        if answered is not None and description.revision <= answered.revision:
            self._send(PeerConnectionState(id=self.pc_id or "", description=answered))
            return  # seen already; our answer may have been lost with the signaling connection
        pc = self._ensure_pc()
        if pc.signalingState != "stable":
            logger.warning("ignoring the server's offer %d: our own is unanswered",
                           description.revision)
            return
        sdp = description.sdp or ""
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        track_ids = msid_track_ids(sdp)
        mids = {t.receiver.track: t.mid for t in pc.getTransceivers()}
        for track in self._new_tracks:
            mid = mids.get(track)
            self._on_track(track, track_ids.get(mid, track.id) if mid else track.id)
        self._new_tracks.clear()
        await pc.setLocalDescription(await pc.createAnswer())
        self._answer = SessionDescription(type="answer", revision=description.revision,
                                          sdp=pc.localDescription.sdp)
        self._send(PeerConnectionState(id=self.pc_id or "", description=self._answer))
        # The server stopped forwarding on these m-lines (unsubscribed): stop their receivers,
        # whose RTCP loops would otherwise run for as long as the connection, and ready each
        # m-line for the new track the server may put on it later.
        ended = inactive_mids(sdp)
        for transceiver in pc.getTransceivers():
            if (transceiver.mid in ended and transceiver.sender.track is None
                    and transceiver.receiver.track is not None):
                await retire(transceiver)
                renew(transceiver)

    # --- starting over --------------------------------------------------------------------------

    async def _failed(self, pc: RTCPeerConnection) -> None:
        """Our connection failed (ICE or DTLS) and aiortc cannot restart ICE: drop it and tell
        the server, which starts over on a fresh one."""
        async with self._lock:
            if self.pc is not pc:
                return  # the server's close came first
            closed = self.pc_id
            await self._drop(pc)
        self._send(PeerConnectionState(id=closed or "", description=SessionDescription(
            type="close", revision=0)))

    async def _drop(self, pc: RTCPeerConnection) -> None:
        """Forget ``pc`` and what ran on it; the tracks stay, for the next connection (the
        server's next create-offer or offer names its id)."""
        self.pc = None
        self.pc_id = None
        for layered in self._layered.values():
            layered.close()
        self._layered.clear()
        for track, (_, tap) in list(self._senders.items()):
            tap.stop()
        self._senders.clear()
        for track, channel in list(self._channels.items()):
            if isinstance(track, LocalDataTrack):
                track._remove_data_channel(channel)
        self._channels.clear()
        self._new_tracks.clear()
        self._answer = None
        self._offered_revision = 0
        await pc.close()

    # --- ending ---------------------------------------------------------------------------------

    async def close(self) -> None:
        for track in list(self._senders) + list(self._channels):
            self.remove_track(track)
        pc, self.pc = self.pc, None
        if pc is not None:
            await pc.close()

    def failed(self) -> list[str]:
        return [pc_id for pc_id, pc in self.connections()
                if pc.connectionState in ("failed", "closed")]

    def connections(self) -> list[tuple[str, RTCPeerConnection]]:
        return [(self.pc_id, self.pc)] if self.pc is not None and self.pc_id else []
