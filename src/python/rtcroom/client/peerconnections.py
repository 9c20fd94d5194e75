"""Peer-to-peer media: the one-way RTCPeerConnections of a peer-to-peer room.

The server pairs participants with one connection per direction, each named by an id it
chose: on an *outgoing* connection (the server sent ``create-offer``) this participant sends
every track it publishes and always makes the offers; on an *incoming* one (an ``offer``
arrived for an id it does not know) it only receives and answers. Because one side always
offers, publishing while the other side publishes can never cause an offer collision. Group
rooms use one connection to the SFU instead (:mod:`rtcroom.client.groupconnection`).

aiortc gathers all ICE candidates before ``setLocalDescription`` returns, so every description
this end sends carries its candidates. Browsers trickle theirs in ``ice`` updates (each revision
repeating all candidates so far); those are added to the connection once its remote description
is set, and a candidate for other ICE credentials (a connection since replaced) is dropped.
A browser (twilio-video.js) also offers on the connections it receives on, to add its own
tracks; on an outgoing connection such an offer is answered without receiving anything.

When a connection fails (ICE or DTLS), the publisher's end replaces it with a fresh one under the
same id and offers again; the subscriber's end asks for that by sending ``create-offer`` back
through the server's relay, and replaces its own dead connection when the new offer arrives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from rtcroom.aiortc_ext.dscp import enable_dscp
from rtcroom.client.codecs import prefer_codecs
from rtcroom.client.localtrack import LocalDataTrack, LocalMediaTrack, LocalTrack
from rtcroom.client.mediaconnections import MediaConnections
from rtcroom.signaling.messages import IceState, PeerConnectionState, SessionDescription
from rtcroom.signaling.sdp import msid_track_ids

__all__ = ["PeerConnections"]

logger = logging.getLogger("rtcroom.webrtc")

# How long an offer may wait for its answer before the next negotiation is allowed.
ANSWER_TIMEOUT = 20.0


@dataclass
class _Outgoing:
    pc: RTCPeerConnection
    revision: int = 0
    senders: dict[LocalTrack, tuple[RTCRtpSender, MediaStreamTrack]] = field(default_factory=dict)
    channels: dict[LocalTrack, RTCDataChannel] = field(default_factory=dict)
    dirty: bool = True
    answer: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None
    remote_candidates: set[str] = field(default_factory=set)


@dataclass
class _Incoming:
    pc: RTCPeerConnection
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    remote_candidates: set[str] = field(default_factory=set)
    # Tracks announced by the offer being applied, until its m-lines name them.
    new_tracks: list[MediaStreamTrack] = field(default_factory=list)


class PeerConnections(MediaConnections):
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
        super().__init__(configuration, send, on_track, on_channel, on_state, dscp, codecs)
        self._outgoing: dict[str, _Outgoing] = {}
        self._incoming: dict[str, _Incoming] = {}
        # The latest trickled ICE state per connection id, until it can be applied.
        self._remote_ice: dict[str, IceState] = {}

    # --- what we publish -----------------------------------------------------------------------

    def add_track(self, track: LocalTrack) -> None:
        if track not in self._tracks:
            self._tracks.append(track)
            self._renegotiate_all()

    def remove_track(self, track: LocalTrack) -> None:
        if track not in self._tracks:
            return
        self._tracks.remove(track)
        for out in self._outgoing.values():
            self._detach(out, track)

    def _detach(self, out: _Outgoing, track: LocalTrack) -> None:
        sent = out.senders.pop(track, None)
        if sent is not None:
            sender, tap = sent
            # The m-line stays (aiortc cannot remove one); it just carries nothing.
            sender.replaceTrack(None)
            tap.stop()
        channel = out.channels.pop(track, None)
        if channel is not None:
            self._close_channel(track, channel)

    def _renegotiate_all(self) -> None:
        for pc_id in self._outgoing:
            self._negotiate_soon(pc_id)

    def _negotiate_soon(self, pc_id: str) -> None:
        out = self._outgoing[pc_id]
        out.dirty = True
        if out.task is None or out.task.done():
            out.task = asyncio.create_task(self._negotiate(pc_id, out))

    async def _negotiate(self, pc_id: str, out: _Outgoing) -> None:
        while out.dirty and self._outgoing.get(pc_id) is out:
            out.dirty = False
            added = self._attach_tracks(out)
            if not added and out.revision > 0:
                continue
            if not out.senders and not out.channels:
                return  # nothing to send yet: offer once something is published
            try:
                await out.pc.setLocalDescription(await out.pc.createOffer())
            except Exception:
                logger.exception("creating an offer on %s failed", pc_id)
                return
            out.revision += 1
            out.answer = asyncio.get_running_loop().create_future()
            self._send(PeerConnectionState(id=pc_id, description=SessionDescription(
                type="offer", revision=out.revision, sdp=out.pc.localDescription.sdp)))
            try:
                await asyncio.wait_for(out.answer, ANSWER_TIMEOUT)
            except asyncio.TimeoutError:
                logger.warning("no answer on %s for revision %d", pc_id, out.revision)
                return

    def _attach_tracks(self, out: _Outgoing) -> bool:
        added = False
        for track in self._tracks:
            if isinstance(track, LocalMediaTrack) and track not in out.senders:
                tap = track._sender_track()
                sender = out.pc.addTrack(tap)
                prefer_codecs(next(t for t in out.pc.getTransceivers() if t.sender is sender),
                              self._codecs)
                out.senders[track] = (sender, tap)
                added = True
            elif isinstance(track, LocalDataTrack) and track not in out.channels:
                out.channels[track] = self._open_channel(out.pc, track)
                added = True
        return added

    # --- what the server relays ----------------------------------------------------------------

    async def handle(self, state: PeerConnectionState) -> None:
        if state.description is not None:
            await self._handle_description(state.id, state.description)
        if state.ice is not None:
            ice = self._remote_ice.get(state.id)
            if ice is None or state.ice.revision >= ice.revision:
                self._remote_ice[state.id] = state.ice
        await self._apply_remote_ice(state.id)

    async def _handle_description(self, pc_id: str, description: SessionDescription) -> None:
        if description.type == "create-offer":
            out = self._outgoing.get(pc_id)
            if out is None:
                self._outgoing[pc_id] = _Outgoing(self._new_pc(pc_id))
            elif _dead(out.pc):
                await self._restart_outgoing(pc_id)
                return
            elif out.pc.signalingState == "have-local-offer":
                # Asked again while our offer is unanswered (it or its answer was lost with
                # the signaling connection): say it again.
                self._send(PeerConnectionState(id=pc_id, description=SessionDescription(
                    type="offer", revision=out.revision, sdp=out.pc.localDescription.sdp)))
                return
            self._negotiate_soon(pc_id)
        elif description.type == "answer":
            await self._handle_answer(pc_id, description)
        elif description.type == "offer":
            await self._handle_offer(pc_id, description)
        elif description.type == "close":
            await self._close_one(pc_id)

    async def _apply_remote_ice(self, pc_id: str) -> None:
        ice = self._remote_ice.get(pc_id)
        one: _Outgoing | _Incoming | None = self._outgoing.get(pc_id) or self._incoming.get(pc_id)
        if ice is None or one is None or one.pc.remoteDescription is None:
            return
        if ice.ufrag is not None and ice.ufrag != _ufrag(one.pc.remoteDescription):
            return
        for c in ice.candidates:
            if c.candidate in one.remote_candidates or not c.candidate.startswith("candidate:"):
                continue
            one.remote_candidates.add(c.candidate)
            try:
                candidate = candidate_from_sdp(c.candidate[len("candidate:"):])
                candidate.sdpMid, candidate.sdpMLineIndex = c.sdpMid, c.sdpMLineIndex
                await one.pc.addIceCandidate(candidate)
            except (ValueError, IndexError):
                logger.warning("could not add ICE candidate %r on %s", c.candidate, pc_id)

    async def _handle_answer(self, pc_id: str, description: SessionDescription) -> None:
        out = self._outgoing.get(pc_id)
        if out is None or description.revision != out.revision or out.answer is None:
            return  # an answer to an offer we have since replaced
        if out.pc.signalingState != "have-local-offer":
            return
        try:
            await out.pc.setRemoteDescription(RTCSessionDescription(description.sdp or "",
                                                                    "answer"))
        except Exception:
            logger.exception("applying the answer on %s failed", pc_id)
        if not out.answer.done():
            out.answer.set_result(None)

    async def _handle_offer(self, pc_id: str, description: SessionDescription) -> None:
        out = self._outgoing.get(pc_id)
        if out is not None:
            await self._answer_on_outgoing(pc_id, out, description)
            return
        incoming = self._incoming.get(pc_id)
        if incoming is not None and (_dead(incoming.pc) or _ufrag(incoming.pc.remoteDescription)
                                     != _ufrag(description.sdp)):
            # The publisher started over on a new connection after a failure (aiortc has no ICE
            # restart, so new ICE credentials mean a new connection): so do we.
            del self._incoming[pc_id]
            await _close_incoming(incoming.pc)
            incoming = None
        if incoming is None:
            incoming = self._incoming[pc_id] = _Incoming(self._new_pc(pc_id))
            incoming.pc.on("track", incoming.new_tracks.append)
            incoming.pc.on("datachannel", self._on_channel)
        async with incoming.lock:
            pc = incoming.pc
            try:
                await pc.setRemoteDescription(RTCSessionDescription(description.sdp or "",
                                                                    "offer"))
                self._announce_tracks(incoming, description.sdp or "")
                await pc.setLocalDescription(await pc.createAnswer())
            except Exception:
                logger.exception("answering the offer on %s failed", pc_id)
                return
            self._send(PeerConnectionState(id=pc_id, description=SessionDescription(
                type="answer", revision=description.revision, sdp=pc.localDescription.sdp)))

    def _announce_tracks(self, incoming: _Incoming, sdp: str) -> None:
        """Hand on the offer's new tracks, each under the track id its m-line signals."""
        signaled = msid_track_ids(sdp)
        mids = {t.receiver.track: t.mid for t in incoming.pc.getTransceivers()}
        for track in incoming.new_tracks:
            mid = mids.get(track)
            self._on_track(track, signaled.get(mid, track.id) if mid else track.id)
        incoming.new_tracks.clear()

    async def _answer_on_outgoing(self, pc_id: str, out: _Outgoing,
                                  description: SessionDescription) -> None:
        """The subscriber offered on our connection: twilio-video.js sends its own tracks on
        every connection it has, even on m-lines it reuses from our offer. We get them on its
        own connection, so here we only send: our m-lines are answered sendonly, its new ones
        inactive. While our offer is unanswered we ignore its offer: the SDK rolls back,
        answers ours, and offers again."""
        pc = out.pc
        if pc.signalingState != "stable":
            return
        try:
            await pc.setRemoteDescription(RTCSessionDescription(description.sdp or "", "offer"))
            for transceiver in pc.getTransceivers():
                transceiver.direction = ("inactive" if transceiver.sender.track is None
                                         else "sendonly")
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception:
            logger.exception("answering the subscriber's offer on %s failed", pc_id)
            return
        # One revision counter per connection, whichever end offered last.
        out.revision = description.revision
        self._send(PeerConnectionState(id=pc_id, description=SessionDescription(
            type="answer", revision=description.revision, sdp=pc.localDescription.sdp)))

    def _new_pc(self, pc_id: str) -> RTCPeerConnection:
        pc = RTCPeerConnection(self._configuration())
        if self._dscp:
            enable_dscp(pc)

        @pc.on("connectionstatechange")
        def state_changed() -> None:
            if not self._current(pc_id, pc):
                return  # replaced or closed by us
            state = pc.connectionState
            self._on_state(pc_id, state)
            if state == "failed":
                self._failed(pc_id, pc)

        return pc

    def _current(self, pc_id: str, pc: RTCPeerConnection) -> bool:
        out, incoming = self._outgoing.get(pc_id), self._incoming.get(pc_id)
        return (out is not None and out.pc is pc) or (incoming is not None
                                                        and incoming.pc is pc)

    def _failed(self, pc_id: str, pc: RTCPeerConnection) -> None:
        out = self._outgoing.get(pc_id)
        if out is not None and out.pc is pc:
            asyncio.create_task(self._restart_outgoing(pc_id))
        else:
            self._send(PeerConnectionState(id=pc_id, description=SessionDescription(
                type="create-offer", revision=0)))

    async def _restart_outgoing(self, pc_id: str) -> None:
        old = self._outgoing.get(pc_id)
        if old is None:
            return
        for track in list(old.senders) + list(old.channels):
            self._detach(old, track)
        if old.task is not None:
            old.task.cancel()
        fresh = _Outgoing(self._new_pc(pc_id), revision=old.revision)
        self._outgoing[pc_id] = fresh
        await old.pc.close()
        self._negotiate_soon(pc_id)

    # --- ending --------------------------------------------------------------------------------

    async def _close_one(self, pc_id: str) -> None:
        out = self._outgoing.pop(pc_id, None)
        if out is not None:
            for track in list(out.senders) + list(out.channels):
                self._detach(out, track)
            if out.task is not None:
                out.task.cancel()
            await out.pc.close()
        incoming = self._incoming.pop(pc_id, None)
        if incoming is not None:
            await _close_incoming(incoming.pc)
        self._remote_ice.pop(pc_id, None)

    async def close(self) -> None:
        for pc_id in list(self._outgoing) + list(self._incoming):
            await self._close_one(pc_id)

    def failed(self) -> list[str]:
        """Ids of the connections that are down right now."""
        return [pc_id for pc_id, pc in self.connections() if _dead(pc)]

    def connections(self) -> list[tuple[str, RTCPeerConnection]]:
        """Every live connection with its id, outgoing first."""
        return ([(pc_id, o.pc) for pc_id, o in self._outgoing.items()]
                + [(pc_id, i.pc) for pc_id, i in self._incoming.items()])


async def _close_incoming(pc: RTCPeerConnection) -> None:
    """Close a receiving connection and end its remote tracks: aiortc ends one only when a
    reader sees its end, and a track nobody reads (or whose decoder never started) would stay
    live, held by whoever keeps live tracks."""
    await pc.close()
    for transceiver in pc.getTransceivers():
        track = transceiver.receiver.track
        if track is not None:
            track.stop()


def _dead(pc: RTCPeerConnection) -> bool:
    return pc.connectionState in ("failed", "closed")


def _ufrag(sdp: RTCSessionDescription | str | None) -> str | None:
    text = sdp.sdp if isinstance(sdp, RTCSessionDescription) else sdp
    for line in (text or "").splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line[len("a=ice-ufrag:"):].strip()
    return None
