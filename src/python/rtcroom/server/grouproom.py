"""A group room's media on the server: one peer connection per participant, and the SFU
:class:`~rtcroom.server.sfu.Router` between them.

The room state machine (:mod:`rtcroom.server.rooms`) says who publishes what and who subscribes
to what; after every change the service hands the room to :meth:`GroupMedia.apply`, which brings
each participant's connection in step with it. One negotiation at a time per connection, and the
server decides whose turn it is, so offers never collide:

- when a participant's set of published tracks changed since its last offer, the server asks it
  to offer (``create-offer`` with the next revision), answers, and starts receiving (``Router
  .publish``) every new m-line whose ``a=msid`` names one of its tracks, and every data channel
  whose label does;
- when what a participant should receive changed, the server adds a sendonly ``ForwardedTrack``
  transceiver per new subscription (its ``a=msid`` track id is the publisher's track id, which
  ``subscribed`` maps the track's sid to), stops the ones no longer wanted, opens or closes data
  channels, and offers the next revision; the participant answers.

An offer the client sends unasked is answered when the connection is idle (twilio-video.js
offers on connect and on publishing); while the server waits for an answer it is ignored, since
twilio-video.js, the polite side of a collision, rolls its own offer back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiortc import RTCDataChannel, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from rtcroom.aiortc_ext.dscp import enable_dscp
from rtcroom.aiortc_ext.peerconnection import bundled_peer_connection
from rtcroom.aiortc_ext.transceiver import renew, retire
from rtcroom.errors import (
    MediaNoSupportedCodecError,
    MediaServerLocalDescFailedError,
    MediaServerRemoteDescFailedError,
    TwilioError,
)
from rtcroom.options import NetworkQualityConfiguration
from rtcroom.server.dominantspeaker import INTERVAL as SPEAKER_INTERVAL
from rtcroom.server.dominantspeaker import DominantSpeakerChange, DominantSpeakerDetector
from rtcroom.server.estimator import DownlinkEstimator
from rtcroom.server.linkquality import LinkMeter
from rtcroom.server.networkquality import NetworkQualityScorer, build_report
from rtcroom.server.rooms import Room, Track
from rtcroom.server.sfu import (
    ForwardedTrack,
    PublishedDataTrack,
    Router,
    SubscriberPacer,
    Subscription,
    rtx_ssrcs,
    simulcast_ssrcs,
)
from rtcroom.server.subscriberbandwidth import (
    SubscribedVideo,
    SubscriberBandwidth,
    profile_from_wire,
)
from rtcroom.server.videocodecs import restrict_video_codecs
from rtcroom.signaling.messages import (
    Connect,
    IceState,
    PeerConnectionState,
    RoomState,
    SessionDescription,
)
from rtcroom.signaling.sdp import (
    description_problem,
    ip_candidates_only,
    is_ip_candidate,
    msid_track_ids,
    sending_mids,
)

__all__ = ["GroupMedia", "GroupPeer", "GroupRoom"]

log = logging.getLogger(__name__)


async def _every(interval: float, tick: Callable[[], None], what: str) -> None:
    """Call ``tick`` every ``interval`` seconds until cancelled. An exception is logged and the
    next tick runs: the room holds the task, so asyncio would never report it ending, and the
    room would silently go without that signal for good."""
    while True:
        await asyncio.sleep(interval)
        try:
            tick()
        except Exception:
            log.exception("a room's %s tick failed", what)


# Queued when the participant's connection failed.
_RESTART = ("restart", 0)
# How long the server waits for the offer it asked for before it may ask again.
OFFER_TIMEOUT = 20.0
# Seconds between bandwidth allocations of the subscribers that sent a bandwidth profile.
ALLOCATION_INTERVAL = 1.0
# Seconds between network quality levels (twilio-video.js reports its stats every second).
NETWORK_QUALITY_INTERVAL = 2.0
# Seconds a REMB counts towards a subscriber's estimate without being renewed.
REMB_TTL = 3.0

MEDIA_SIGNALING = ("active_speaker", "network_quality", "track_priority", "track_switch_off",
                   "render_hints", "publisher_hints")
"""The media signaling channels the server provides (each on a data channel of that label)."""


class _Delivery(Protocol):
    def send_body(self, body: dict[str, Any]) -> None: ...

    def fail(self, error: TwilioError) -> None:
        """End the participant's session with ``error`` (sent to it first)."""


Deliveries = Callable[[str], "_Delivery | None"]
"""Participant sid -> its signaling connection, if it has one now."""
SubscriptionFailed = Callable[[str, str, str, TwilioError], None]


@dataclass
class _MediaLeg:
    transceiver: RTCRtpTransceiver
    subscription: Subscription

    async def close(self) -> bool:
        self.subscription.close()
        # An m-line cannot be removed: it stays, inactive, until a subscription reuses it.
        self.transceiver.direction = "inactive"
        await retire(self.transceiver)
        return True

    async def stop_forwarding(self) -> bool:
        """End the subscription on an m-line the subscriber also sends on: the server goes on
        receiving there."""
        self.subscription.close()
        self.transceiver.direction = "recvonly"
        await self.transceiver.sender.stop()
        return True


@dataclass
class _DataLeg:
    track: PublishedDataTrack
    channel: RTCDataChannel

    async def close(self) -> bool:
        self.track.unsubscribe(self.channel)
        self.channel.close()
        return False  # closing a channel needs no renegotiation


class GroupPeer:
    """One participant's connection to the server, and what flows on it."""

    def __init__(self, group: GroupRoom, sid: str, dscp: bool) -> None:
        self.group = group
        self.sid = sid
        self.pc_id = str(uuid.uuid4())
        self.closed_ids: set[str] = set()
        """Ids of its connections that ended: twilio-video.js never opens one again, so a fresh
        connection gets a fresh id, and what still comes for an old one is ignored."""
        self.pc: RTCPeerConnection | None = None
        self.revision = 0
        self.expected: dict[str, Track] = {}
        """The participant's published tracks, by track id, as the room last said."""
        self.offered_ids: set[str] = set()
        """Its track ids as of its last offer: a difference means it must offer again."""
        self.legs: dict[str, _MediaLeg | _DataLeg] = {}
        """What it receives, by published track sid."""
        self.spare: list[RTCRtpTransceiver] = []
        """Transceivers of ended subscriptions, for new ones of their kind to reuse."""
        self.recycled: set[RTCRtpTransceiver] = set()
        """Transceivers the server added whose m-line the participant has sent on."""
        self.failed: dict[str, float | None] = {}
        """Tracks it cannot receive (no codec in common), by sid, with the time of the
        subscribe rules they failed under: offered again only under new rules."""
        self.channels: dict[str, RTCDataChannel] = {}
        """Data channels it opened, by label (its data track's id)."""
        self.awaiting: tuple[str, int] | None = None
        """("offer" | "answer", revision) while a negotiation is under way."""
        self.pending: SessionDescription | None = None
        """The description sent that the participant has not yet answered (sent again with
        ``synced``, in case it was lost with the signaling connection)."""
        self.media_signaling: list[str] = []
        """The media signaling channels the participant asked for and the server provides."""
        self.msp: dict[str, RTCDataChannel] = {}
        self.msp_ready: set[str] = set()
        self.bandwidth: SubscriberBandwidth | None = None
        self.pacer: SubscriberPacer | None = None
        """Paces the video sent to it, when the server paces (``Config.pacing``)."""
        self.render_hints: dict[str, dict[str, Any]] = {}
        """Its last render hint (``enabled``, ``render_dimensions``) for each track of the room,
        by track sid."""
        self.priorities: dict[str, str] = {}
        """Its own priorities for tracks it receives (``track_priority``), by track sid."""
        self.link_remb = False
        """Whether its REMBs estimate the whole downlink (browsers: one REMB naming every
        stream), rather than one stream each (aiortc, whose REMB follows that stream's rate)."""
        self._reset_link()
        self.network_quality = NetworkQualityConfiguration()
        """The verbosities of its last ``network_quality`` report."""
        self.closed = False
        self._dscp = dscp
        self._remote_ice: IceState | None = None
        self._remote_candidates: set[str] = set()
        self._events: asyncio.Queue[PeerConnectionState | tuple[str, int] | None] = \
            asyncio.Queue()
        self._task = asyncio.ensure_future(self._run())

    # --- what the group calls ------------------------------------------------------------------

    def kick(self) -> None:
        """Something changed: negotiate if it is needed and nothing else is under way."""
        self._events.put_nowait(None)

    def received(self, state: PeerConnectionState) -> None:
        self._events.put_nowait(state)

    def opened(self, states: list[PeerConnectionState]) -> None:
        """The connection the client offered with ``connect`` (twilio-video.js does) is its
        connection to the SFU: the server answers that offer before anything else, rather than
        asking for one on a connection of its own, which the SDK would open beside it."""
        offer = next((s for s in states if s.description is not None
                      and s.description.type == "offer"), None)
        if offer is None or self.pc is not None:
            return
        assert offer.description is not None
        self.pc_id = offer.id
        self.awaiting = ("offer", offer.description.revision)

    async def close(self) -> None:
        self.closed = True
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._drop_legs()
        if self.pc is not None:
            await self.pc.close()

    def _drop_legs(self) -> None:
        """Stop forwarding anything to this participant (its m-lines go with its connection)."""
        for leg in self.legs.values():
            if isinstance(leg, _MediaLeg):
                leg.subscription.close()
            else:
                leg.track.unsubscribe(leg.channel)
        self.legs.clear()
        self.spare.clear()

    # --- negotiation ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            event = await self._events.get()
            try:
                if isinstance(event, PeerConnectionState):
                    await self._remote(event)
                elif event == _RESTART:
                    await self._restart()
                elif isinstance(event, tuple) and self.awaiting == event:
                    self.awaiting = None  # the offer we asked for never came: ask again
                await self._next()
            except asyncio.CancelledError:
                raise
            except TwilioError as exc:
                log.info("participant %s: %s", self.sid, exc)
                delivery = self.group.deliveries(self.sid)
                if delivery is not None:
                    delivery.fail(exc)
                return
            except Exception:
                log.exception("negotiating with participant %s failed", self.sid)

    def _send(self, description: SessionDescription) -> None:
        delivery = self.group.deliveries(self.sid)
        if delivery is not None:
            state = PeerConnectionState(id=self.pc_id, description=description)
            # Named again with each description: twilio-video.js sets a media signaling
            # channel up only from a room update naming it, and a fresh connection (after a
            # failed one) brings fresh channels.
            delivery.send_body(RoomState(type="update", peer_connections=[state],
                                         media_signaling=self.media_signaling_transports())
                               .to_wire())

    def media_signaling_transports(self) -> dict[str, Any] | None:
        """The ``media_signaling`` of a room message: the channels the server opens for it."""
        return {name: {"transport": {"type": "data-channel", "label": name}}
                for name in self.media_signaling} or None

    def _ensure_pc(self) -> RTCPeerConnection:
        if self.pc is None:
            # No STUN servers: aiortc's default (a public Google server) is unreachable from a
            # closed network, and the SFU is reached at its own host candidates anyway.
            # Publishers get transport-wide congestion control feedback (the router sends it).
            pc = self.pc = bundled_peer_connection(ice_servers=[], transport_cc=True)
            if self._dscp:
                enable_dscp(pc)
            if self.group.pacing:
                self.pacer = self.group.router.pace(pc, self.estimator.estimate.bitrate)
                self.group.start_allocation()  # its tick moves the pacer with the estimate
            pc.on("datachannel", self._on_channel)

            @pc.on("connectionstatechange")
            def state_changed() -> None:
                # A lost ICE path can close the DTLS transport, and so the connection, without
                # a "failed" first; one closed by us is no longer self.pc.
                if pc.connectionState in ("failed", "closed") and self.pc is pc:
                    self._events.put_nowait(_RESTART)

        return self.pc

    def _reset_link(self) -> None:
        """What it measures of its connection's path starts over (a new connection may take
        another path, and what the failed one measured ended in the failure)."""
        self.estimator = DownlinkEstimator()
        self._rembs: dict[tuple[int, ...], tuple[int, float]] = {}
        self._sent: tuple[int, float] | None = None
        self.meter = LinkMeter()
        self.scorer = NetworkQualityScorer()

    def forget_tracks(self, live: set[str]) -> None:
        """Drop its priorities and render hints for tracks no longer in the room."""
        self.priorities = {k: v for k, v in self.priorities.items() if k in live}
        self.render_hints = {k: v for k, v in self.render_hints.items() if k in live}

    async def _restart(self) -> None:
        """Its connection failed (ICE or DTLS). aiortc cannot restart ICE, so the participant
        starts over on a fresh connection under the same id, told with ``close``: it offers its
        tracks again (received anew: the others' legs of them are dropped and made again once
        they arrive) and is offered again what it receives."""
        old, self.pc = self.pc, None
        if old is None:
            return
        log.warning("participant %s's connection to the SFU %s; starting it over", self.sid,
                    old.connectionState)
        self._drop_legs()
        for track in self.expected.values():
            self.group.router.unpublish(track.sid)
        self.channels.clear()
        self.msp.clear()
        self.msp_ready.clear()
        self.offered_ids = set()
        self.awaiting = self.pending = None
        self._remote_ice = None
        self._remote_candidates.clear()
        self._reset_link()
        self._send(SessionDescription(type="close", revision=self.revision))
        self.closed_ids.add(self.pc_id)
        self.pc_id = str(uuid.uuid4())
        await old.close()
        self.group.changed()

    async def _remote(self, state: PeerConnectionState) -> None:
        description = state.description
        if state.id in self.closed_ids:
            return
        if state.id != self.pc_id:
            if self.pc is not None or description is None or description.type != "offer":
                return  # not this participant's connection to the SFU
            self.pc_id = state.id  # the client opened it (twilio-video.js offers on connect)
        if state.ice is not None and (self._remote_ice is None
                                      or state.ice.revision >= self._remote_ice.revision):
            self._remote_ice = state.ice
        if description is not None:
            await self._description(description)
        await self._add_remote_candidates()

    async def _add_remote_candidates(self) -> None:
        """Browsers trickle their candidates (each ``ice`` revision repeats all so far); they
        apply once a remote description is set."""
        ice, pc = self._remote_ice, self.pc
        if ice is None or pc is None or pc.remoteDescription is None:
            return
        for c in ice.candidates:
            if c.candidate in self._remote_candidates or not c.candidate.startswith("candidate:") \
                    or not is_ip_candidate(c.candidate):
                continue
            self._remote_candidates.add(c.candidate)
            try:
                candidate = candidate_from_sdp(c.candidate[len("candidate:"):])
            except (ValueError, IndexError):
                log.info("participant %s sent a malformed ICE candidate", self.sid)
                continue
            candidate.sdpMid, candidate.sdpMLineIndex = c.sdpMid, c.sdpMLineIndex
            await pc.addIceCandidate(candidate)

    async def _description(self, description: SessionDescription) -> None:
        if description.type == "close":
            # The participant's end failed first; a connection still coming up is already
            # the fresh one.
            if self.pc is not None and self.pc.connectionState not in ("new", "connecting"):
                await self._restart()
        elif description.type == "offer":
            if self.awaiting is not None and self.awaiting[0] == "answer":
                return  # a collision: the client rolls back and answers ours
            await self._answer(description)
        elif description.type == "answer" and self.awaiting == ("answer", description.revision):
            assert self.pc is not None
            await self._apply_remote(description.sdp or "", "answer")
            self.awaiting = self.pending = None

    async def _apply_remote(self, sdp: str, kind: str) -> str:
        """Apply the participant's ``sdp`` less the candidates the server will not use; the
        SDP applied is what the server reads afterwards (aiortc's parser accepted it)."""
        sdp = ip_candidates_only(sdp)
        pc = self._ensure_pc()
        known = [t.mid for t in pc.getTransceivers() if t.mid is not None]
        if pc.sctp is not None and pc.sctp.mid is not None:
            known.append(pc.sctp.mid)
        problem = description_problem(sdp, known)
        try:
            if problem is not None:
                raise ValueError(problem)
            await pc.setRemoteDescription(RTCSessionDescription(sdp, kind))
        except Exception as exc:  # noqa: BLE001 - aiortc's parser raises many kinds on hostile input
            raise MediaServerRemoteDescFailedError(
                f"Server is unable to apply a remote media description: the {kind}'s SDP "
                f"was refused ({type(exc).__name__}: {exc})") from None
        return sdp

    async def _answer(self, offer: SessionDescription) -> None:
        pc = self._ensure_pc()
        sdp = offer.sdp or ""
        refused: dict[str, list[str]] = {}
        codecs = self.group.room.video_codecs if self.group.room is not None else None
        if codecs is not None:
            sdp, refused = restrict_video_codecs(sdp, codecs)
        sdp = await self._apply_remote(sdp, "offer")
        self._accept_recycled(sdp)
        self._refuse(sdp, refused, codecs or ())
        try:
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # noqa: BLE001 - an offer aiortc took but cannot answer
            raise MediaServerLocalDescFailedError(
                "Server is unable to create or apply a local media description: answering "
                f"the offer failed ({type(exc).__name__}: {exc})") from None
        self.revision = max(self.revision, offer.revision)
        self.awaiting = self.pending = None
        self.offered_ids = set(self.expected)
        self._send(SessionDescription(type="answer", revision=offer.revision,
                                      sdp=pc.localDescription.sdp))
        self._publish_received(sdp)

    def _accept_recycled(self, sdp: str) -> None:
        """twilio-video.js publishes a new track on an m-line it only received on, when it has
        one of the kind (one the server offered for a subscription, or left inactive), rather
        than adding an m-line: the server's end of such an m-line receives too."""
        assert self.pc is not None
        sending = sending_mids(sdp)
        forwarding = {leg.transceiver for leg in self.legs.values()
                      if isinstance(leg, _MediaLeg)}
        for transceiver in self.pc.getTransceivers():
            if transceiver not in forwarding and transceiver not in self.spare \
                    and transceiver not in self.recycled:
                continue  # the participant's own m-line
            if transceiver.mid in sending and transceiver not in self.recycled:
                if transceiver in self.spare:
                    if transceiver.currentDirection != "inactive":
                        continue  # still winding down: the participant's send is refused
                    renew(transceiver)  # its receiver was retired with the subscription
                    self.spare.remove(transceiver)
                self.recycled.add(transceiver)
            if transceiver in self.recycled:
                transceiver.direction = (
                    ("sendrecv" if transceiver.mid in sending else "sendonly")
                    if transceiver in forwarding
                    else ("recvonly" if transceiver.mid in sending else "inactive"))

    def _refuse(self, sdp: str, refused: dict[str, list[str]], codecs: tuple[str, ...]) -> None:
        """Answer inactive the participant's m-lines that offer none of the room's video
        codecs (``refused``: mid -> what they offer); the track on each fails with 53404."""
        assert self.pc is not None
        track_ids = msid_track_ids(sdp)
        servers = {leg.transceiver for leg in self.legs.values() if isinstance(leg, _MediaLeg)}
        for transceiver in self.pc.getTransceivers():
            offered = refused.get(transceiver.mid or "")
            if offered is None or transceiver in servers or transceiver in self.spare \
                    or transceiver in self.recycled:
                continue
            transceiver.direction = "inactive"
            track = self.expected.get(track_ids.get(transceiver.mid or "", ""))
            if track is not None and track.sid not in self.group.router.tracks:
                self.group.publication_failed(self.sid, track.sid, MediaNoSupportedCodecError(
                    f"No supported codec: video track {track.name!r} offers "
                    f"{', '.join(offered) or 'no codec'}; this room's video codecs are "
                    f"{', '.join(codecs)}"))

    def _publish_received(self, sdp: str) -> None:
        """Start receiving each m-line of the client's offer that carries one of its tracks."""
        assert self.pc is not None
        router = self.group.router
        track_ids = msid_track_ids(sdp)
        sending = sending_mids(sdp)
        published = False
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid not in sending or transceiver in self.spare \
                    or transceiver.direction == "inactive":
                continue  # not sending, or refused by _refuse
            track = self.expected.get(track_ids.get(transceiver.mid, ""))
            if track is None or track.kind != transceiver.kind or track.sid in router.tracks:
                continue
            source = router.publish(track.sid, transceiver,
                                    layers=simulcast_ssrcs(sdp, transceiver.mid),
                                    rtx=rtx_ssrcs(sdp, transceiver.mid))
            if source.kind == "audio":
                source.on_audio_level = self.group.level_of(self.sid)
            published = True
        if published:
            self.group.changed()

    def _on_channel(self, channel: RTCDataChannel) -> None:
        self.channels[channel.label] = channel
        self.publish_channels()

    def publish_channels(self) -> None:
        router = self.group.router
        published = False
        for label, channel in self.channels.items():
            track = self.expected.get(label)
            if track is not None and track.kind == "data" and track.sid not in router.data_tracks:
                router.publish_data(track.sid, channel)
                published = True
        if published:
            self.group.changed()

    async def _next(self) -> None:
        if self.awaiting is not None or self.closed:
            return
        if self.pc is not None and self.pc.connectionState == "closed":
            return  # it closed by itself (ICE lost): its restart is queued
        if set(self.expected) != self.offered_ids:
            # It published or unpublished a track: its offer comes next.
            self.revision += 1
            self.awaiting = ("offer", self.revision)
            self.pending = SessionDescription(type="create-offer", revision=self.revision)
            self._send(self.pending)
            asyncio.get_running_loop().call_later(OFFER_TIMEOUT, self._events.put_nowait,
                                                  self.awaiting)
            return
        if await self._update_subscriptions():
            pc = self._ensure_pc()
            await pc.setLocalDescription(await pc.createOffer())
            self.revision += 1
            self.awaiting = ("answer", self.revision)
            self.pending = SessionDescription(type="offer", revision=self.revision,
                                              sdp=pc.localDescription.sdp)
            self._send(self.pending)

    async def _update_subscriptions(self) -> bool:
        """Bring the legs to what the room says this participant receives; True when the
        connection must be renegotiated for it."""
        rules = self.group.rules_updated_at(self.sid)
        self.failed = {sid: at for sid, at in self.failed.items() if at == rules}
        for sid, leg in self.legs.items():
            reason = leg.subscription.unforwardable() if isinstance(leg, _MediaLeg) else None
            if reason is not None and sid not in self.failed:
                self.failed[sid] = rules
                self.group.subscription_failed(self.sid, sid, MediaNoSupportedCodecError(
                    f"No supported codec: {reason}"))
        wanted = {sid: t for sid, t in self.group.wanted(self.sid).items()
                  if sid not in self.failed}
        renegotiate = False
        for sid in [s for s in self.legs if s not in wanted]:
            leg = self.legs.pop(sid)
            if isinstance(leg, _MediaLeg) and leg.transceiver in self.recycled:
                renegotiate |= await leg.stop_forwarding()
                continue
            renegotiate |= await leg.close()
            if isinstance(leg, _MediaLeg):
                self.spare.append(leg.transceiver)
        new = [t for sid, t in wanted.items() if sid not in self.legs]
        channels = [name for name in self.media_signaling if name not in self.msp]
        if not new and not channels:
            return renegotiate
        pc = self._ensure_pc()
        had_sctp = pc.sctp is not None
        router = self.group.router
        # Media first: with max-bundle aiortc puts the SCTP transport on the first transceiver's,
        # and gives it one of its own (which the subscriber's end never connects) when a data
        # channel is created before any transceiver exists.
        for track in sorted(new, key=lambda t: t.kind == "data"):
            if track.kind == "data":
                self.legs[track.sid] = _DataLeg(router.data_tracks[track.sid],
                                                router.subscribe_data(track.sid, pc))
                renegotiate |= not had_sctp
            else:
                transceiver = self._transceiver_for(pc, track)
                subscription = router.subscribe(track.sid, transceiver)
                subscription.on_receiver_report = self._on_receiver_report
                subscription.on_remb = self._on_remb
                self.legs[track.sid] = _MediaLeg(transceiver, subscription)
                renegotiate = True
        for name in channels:
            channel = self.msp[name] = pc.createDataChannel(name)
            channel.on("message", lambda message, name=name: self._on_msp(name, message))
            renegotiate |= not had_sctp
        return renegotiate


    def _transceiver_for(self, pc: RTCPeerConnection, track: Track) -> RTCRtpTransceiver:
        """A sendonly transceiver carrying ``track``'s id in its msid: a spare one of its kind
        whose inactive m-line the subscriber has answered (so its end has let go of the old
        stream), else a new one."""
        forwarded = ForwardedTrack(track.kind, id=track.id)
        spare = next((t for t in self.spare
                      if t.kind == track.kind and t.currentDirection == "inactive"), None)
        if spare is None:
            return pc.addTransceiver(forwarded, direction="sendonly")
        self.spare.remove(spare)
        renew(spare)
        spare.sender.replaceTrack(forwarded)
        spare.direction = "sendonly"
        return spare

    def _on_msp(self, name: str, message: str | bytes) -> None:
        try:
            body = json.loads(message)
        except ValueError:
            log.info("participant %s sent a malformed %s message", self.sid, name)
            return
        if not isinstance(body, dict):
            return
        kind = body.get("type")
        if kind == "ready":
            self.msp_ready.add(name)
            if name == "active_speaker":
                self.group.speaker_listener_ready(self)
            elif name == "network_quality":
                self.group.start_network_quality()
        elif kind == "network_quality" and name == "network_quality":
            self._network_quality_report(body)
        elif kind == "render_hints" and name == "render_hints":
            self._render_hints(body)
        elif kind == "track_priority" and name == "track_priority":
            track, priority = body.get("track"), body.get("subscribe")
            if not isinstance(track, str) or priority not in (None, "low", "standard", "high"):
                log.info("participant %s sent a malformed track_priority message", self.sid)
                return
            if priority is None:
                self.priorities.pop(track, None)
            else:
                self.priorities[track] = priority
            self.group.allocate(self)

    def _render_hints(self, body: dict[str, Any]) -> None:
        """Keep the hints and answer each: twilio-video.js sends them again, with a doubling
        delay, until a reply names their message."""
        subscriber = body.get("subscriber")
        if not isinstance(subscriber, dict) or not isinstance(subscriber.get("hints"), list) \
                or not isinstance(subscriber.get("id"), (int, str)):
            log.info("participant %s sent a malformed render_hints message", self.sid)
            return
        hints = subscriber["hints"]
        room = self.group.room
        tracks = ({t.sid for p in room.active_participants() for t in p.tracks.values()}
                  if room is not None else set())
        results = []
        for hint in hints:
            track = hint.get("track") if isinstance(hint, dict) else None
            if not isinstance(track, str):
                continue
            if track in tracks:
                self.render_hints[track] = {k: hint[k] for k in ("enabled", "render_dimensions")
                                            if k in hint}
            results.append({"track": track,
                            "result": "OK" if track in tracks else "UNKNOWN_TRACK"})
        self.send_msp("render_hints", {"type": "render_hints", "subscriber": {
            "id": subscriber["id"], "hints": results}})
        self.group.allocate(self)

    def _network_quality_report(self, body: dict[str, Any]) -> None:
        self.meter.reported(body, time.monotonic())
        try:
            self.network_quality = NetworkQualityConfiguration.from_dict(
                {"local": body.get("reportLevel", self.network_quality.local),
                 "remote": body.get("remoteReportLevel", self.network_quality.remote)},
                "network_quality")
        except (TypeError, ValueError) as exc:
            log.info("participant %s sent bad network quality verbosities: %s", self.sid, exc)

    # --- downlink estimate -----------------------------------------------------------------------

    def _on_receiver_report(self, block: Any, rtt: float | None) -> None:
        try:
            self.estimator.on_receiver_report([block], time.monotonic(), rtt)
        except ValueError as exc:
            log.info("participant %s sent a bad receiver report: %s", self.sid, exc)

    def _on_remb(self, bitrate: int, ssrcs: list[int]) -> None:
        if not self.link_remb:
            return
        now = time.monotonic()
        # A REMB naming several streams reaches each of their legs: count it once.
        self._rembs[tuple(sorted(ssrcs))] = (bitrate, now)
        for key in [k for k, (_, t) in self._rembs.items() if now - t > REMB_TTL]:
            del self._rembs[key]
        self.estimator.on_remb(sum(b for b, _ in self._rembs.values()), now)

    def downlink(self, now: float) -> tuple[int, bool]:
        """The estimate (bps) and congestion flag, moved to ``now`` with what the SFU sent
        this participant since the last call."""
        total = sum(leg.subscription.bytes_sent for leg in self.legs.values()
                    if isinstance(leg, _MediaLeg))
        sending = None
        if self._sent is not None and now > self._sent[1]:
            sending = int(8 * max(total - self._sent[0], 0) / (now - self._sent[1]))
        self._sent = (total, now)
        estimate = self.estimator.update(now, sending)
        if self.pacer is not None:
            # Never below what is forwarded now: the pacer smooths bursts, the allocation (not
            # a growing queue) is what brings the forwarded rate down to the estimate.
            self.pacer.target_bitrate = max(estimate.bitrate, sending or 0)
        return estimate.bitrate, estimate.congested

    def send_msp(self, name: str, body: dict[str, Any]) -> None:
        channel = self.msp.get(name)
        if channel is not None and name in self.msp_ready and channel.readyState == "open":
            channel.send(json.dumps(body))


class GroupRoom:
    """The media of one group room."""

    def __init__(self, deliveries: Deliveries, dscp: bool, pacing: bool = False) -> None:
        self.deliveries = deliveries
        self.router = Router()
        self.pacing = pacing
        self.peers: dict[str, GroupPeer] = {}
        self.room: Room | None = None
        self._dscp = dscp
        self.speakers: DominantSpeakerDetector[str] = DominantSpeakerDetector()
        self.on_subscription_failed: SubscriptionFailed | None = None
        self.on_publication_failed: SubscriptionFailed | None = None
        self._speaker_task: asyncio.Task[None] | None = None
        self._allocation_task: asyncio.Task[None] | None = None
        self._quality_task: asyncio.Task[None] | None = None
        self._priorities: dict[str, str] = {}

    def apply(self, room: Room) -> list[GroupPeer]:
        """Follow the room's new state; the peers that left, for the caller to close."""
        self.room = room
        # A departed participant's record may already be gone (the room keeps a bounded number).
        gone = [self.peers.pop(sid) for sid in list(self.peers) if sid not in room.participants]
        for p in room.participants.values():
            peer = self.peers.get(p.sid)
            if not p.active or not room.in_progress:
                if peer is not None:
                    gone.append(self.peers.pop(p.sid))
            elif peer is None:
                self.peers[p.sid] = GroupPeer(self, p.sid, self._dscp)
        live = {t.sid for p in room.active_participants() if room.in_progress
                for t in p.tracks.values()}
        for peer in self.peers.values():
            peer.forget_tracks(live)
        for sid in [*self.router.tracks, *self.router.data_tracks]:
            if sid not in live:
                self.router.unpublish(sid)
        now = time.monotonic()
        for peer in gone:
            self._announce(self.speakers.remove(peer.sid, now))
        for sid in [s for s in self.speakers if not any(
                t.kind == "audio" for t in room.participants[s].tracks.values())]:
            self._announce(self.speakers.remove(sid, now))  # it unpublished its audio
        if not self.peers:
            self.stop_timers()
        for sid, peer in self.peers.items():
            peer.expected = {t.id: t for t in room.participants[sid].tracks.values()}
            peer.publish_channels()
            peer.kick()
        priorities = {t.sid: t.priority for p in room.active_participants()
                      for t in p.tracks.values()}
        if priorities != self._priorities:
            self._priorities = priorities
            self.reallocate()  # a publisher changed a track's priority, for everyone
        return gone

    # --- dominant speaker ------------------------------------------------------------------------

    def level_of(self, participant_sid: str) -> Callable[[int, float], None]:
        """What a participant's audio track calls with each packet's level."""
        def add_level(level: int, now: float) -> None:
            self.speakers.add_level(participant_sid, level, now)
        return add_level

    def speaker_listener_ready(self, peer: GroupPeer) -> None:
        if self._speaker_task is None:
            self._speaker_task = asyncio.ensure_future(_every(
                SPEAKER_INTERVAL, self._evaluate_speakers, "dominant speaker"))
        if self.speakers.dominant_speaker is not None:
            peer.send_msp("active_speaker", {"type": "active_speaker",
                                             "participant": self.speakers.dominant_speaker})

    def _evaluate_speakers(self) -> None:
        self._announce(self.speakers.evaluate(time.monotonic()))

    def _announce(self, change: DominantSpeakerChange[str] | None) -> None:
        if change is None:
            return
        for peer in self.peers.values():
            peer.send_msp("active_speaker", {"type": "active_speaker",
                                             "participant": change.speaker})
        self.reallocate()  # dominant_speaker_priority follows the speaker

    # --- bandwidth profiles ----------------------------------------------------------------------

    def start_allocation(self) -> None:
        if self._allocation_task is None:
            self._allocation_task = asyncio.ensure_future(_every(
                ALLOCATION_INTERVAL, self._allocate_all, "bandwidth allocation"))

    def _allocate_all(self) -> None:
        now = time.monotonic()
        for peer in list(self.peers.values()):
            self.allocate(peer, peer.downlink(now))

    def allocate(self, peer: GroupPeer, downlink: tuple[int, bool] | None = None) -> None:
        """Run ``peer``'s bandwidth allocation (if it has a profile) and apply it; with the
        downlink estimate of the last timer tick unless given."""
        room = self.room
        if room is None or peer.bandwidth is None or (
                "track_switch_off" in peer.media_signaling
                and "track_switch_off" not in peer.msp_ready):
            return  # allocate once the participant can be told what was switched
        if downlink is None:
            estimate = peer.estimator.estimate
            downlink = estimate.bitrate, estimate.congested
        owners = {t.sid: (p.sid, t.priority) for p in room.active_participants()
                  for t in p.tracks.values()}
        speaker = (self.speakers.dominant_speaker if "active_speaker" in peer.media_signaling
                   else None)
        videos = []
        for sid, leg in peer.legs.items():
            if not isinstance(leg, _MediaLeg) or leg.subscription.track.kind != "video":
                continue
            owner, priority = owners.get(sid, (None, "standard"))
            videos.append(SubscribedVideo(sid, leg.subscription, peer.priorities.get(sid, priority),
                                          dominant_speaker=owner is not None
                                          and owner == speaker,
                                          switched_off=peer.render_hints.get(sid, {}).get(
                                              "enabled") is False))
        try:
            off, on = peer.bandwidth.run(videos, available=downlink[0], congestion=downlink[1])
        except ValueError:
            log.exception("allocating %s's bandwidth failed", peer.sid)
            return
        if off or on:
            peer.send_msp("track_switch_off", {"type": "track_switch_off", "off": off, "on": on})

    def reallocate(self) -> None:
        """Priorities or the dominant speaker changed: every subscriber's allocation again."""
        for peer in list(self.peers.values()):
            self.allocate(peer)

    # --- network quality -------------------------------------------------------------------------

    def start_network_quality(self) -> None:
        if self._quality_task is None:
            self._quality_task = asyncio.ensure_future(_every(
                NETWORK_QUALITY_INTERVAL, lambda: self.network_quality(time.monotonic()),
                "network quality"))

    def network_quality(self, now: float) -> None:
        """Every participant's levels from what the SFU measured since the last call, and each
        participant that asked its report."""
        room = self.room
        if room is None:
            return
        stats = {}
        for sid, peer in list(self.peers.items()):
            participant = room.participants.get(sid)
            if participant is None:
                continue
            published: dict[str, list[Any]] = {"audio": [], "video": []}
            for t in participant.tracks.values():
                track = self.router.tracks.get(t.sid)
                if track is not None and t.kind in published:
                    published[t.kind].append(track)
            legs = [leg.subscription for leg in peer.legs.values() if isinstance(leg, _MediaLeg)]
            media = peer.meter.measure(now, published, legs)
            stats[sid] = peer.scorer.update(now, audio=media["audio"], video=media["video"],
                                            reconnecting=participant.state == "reconnecting")
        for sid, peer in list(self.peers.items()):
            if "network_quality" not in peer.msp_ready:
                continue
            report = build_report(sid, peer.network_quality, stats)
            if report is not None:
                peer.send_msp("network_quality", report.to_message())

    def stop_timers(self) -> None:
        for task in (self._speaker_task, self._allocation_task, self._quality_task):
            if task is not None:
                task.cancel()
        self._speaker_task = self._allocation_task = self._quality_task = None

    def changed(self) -> None:
        """A track started arriving: the others may now subscribe to it."""
        for peer in self.peers.values():
            peer.kick()

    def rules_updated_at(self, sid: str) -> float | None:
        """When participant ``sid``'s subscribe rules last changed (None: as it joined)."""
        p = self.room.participants.get(sid) if self.room is not None else None
        return p.subscribe_rules_updated_at if p is not None else None

    def subscription_failed(self, participant_sid: str, track_sid: str,
                            error: TwilioError) -> None:
        room, report = self.room, self.on_subscription_failed
        if room is not None and report is not None:
            report(room.sid, participant_sid, track_sid, error)

    def publication_failed(self, participant_sid: str, track_sid: str,
                           error: TwilioError) -> None:
        room, report = self.room, self.on_publication_failed
        if room is not None and report is not None:
            report(room.sid, participant_sid, track_sid, error)

    def wanted(self, sid: str) -> dict[str, Track]:
        """What participant ``sid`` should receive now: the room's subscriptions for it whose
        media reaches the SFU."""
        room = self.room
        p = room.participants.get(sid) if room is not None else None
        if room is None or p is None or not p.active:
            return {}
        router = self.router
        return {t.sid: t for t in room.subscriptions(p)
                if t.sid in router.tracks or t.sid in router.data_tracks}


class GroupMedia:
    """The media of every group room of a server."""

    def __init__(self, deliveries: Deliveries, dscp: bool = False, pacing: bool = False) -> None:
        self.deliveries = deliveries
        self.dscp = dscp
        self.pacing = pacing
        self.rooms: dict[str, GroupRoom] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.on_subscription_failed: SubscriptionFailed | None = None
        """Called with (room sid, participant sid, track sid, error) when the SFU cannot
        forward a track to a subscriber."""
        self.on_publication_failed: SubscriptionFailed | None = None
        """The same, when the SFU refuses a publisher's track (none of the room's codecs)."""

    def apply(self, room: Room) -> None:
        """After every change to ``room``: bring its media in step (no-op peer-to-peer)."""
        if room.peer_to_peer:
            return
        group = self.rooms.get(room.sid)
        if group is None:
            if not room.in_progress:
                return
            group = self.rooms[room.sid] = GroupRoom(self.deliveries, self.dscp, self.pacing)
            group.on_subscription_failed = self.on_subscription_failed
            group.on_publication_failed = self.on_publication_failed
        for peer in group.apply(room):
            self._close_later(peer)
        if not room.in_progress:
            group.router.close()
            del self.rooms[room.sid]

    def connected(self, room: Room, participant_sid: str, message: Connect) -> None:
        """A participant joins with ``message`` (before its ``connected`` goes out): the media
        signaling channels it asked for that the server provides are named in ``connected``
        and opened on its connection; its bandwidth profile is applied; the connections it
        offered are answered."""
        self.apply(room)
        group = self.rooms.get(room.sid)
        peer = group.peers.get(participant_sid) if group is not None else None
        if group is None or peer is None:
            return
        peer.media_signaling = [n for n in MEDIA_SIGNALING if n in (message.media_signaling or {})]
        peer.link_remb = (message.publisher or {}).get("name") != "rtcroom"
        self._set_profile(group, peer, message.bandwidth_profile)
        peer.opened(message.peer_connections)
        self.received(room, participant_sid, message.peer_connections)

    def bandwidth_profile(self, room: Room, participant_sid: str,
                          bandwidth_profile: dict[str, Any]) -> None:
        """A participant's ``update`` carried a new bandwidth profile: it applies from now."""
        group = self.rooms.get(room.sid)
        peer = group.peers.get(participant_sid) if group is not None else None
        if group is not None and peer is not None:
            self._set_profile(group, peer, bandwidth_profile)
            group.allocate(peer)

    @staticmethod
    def _set_profile(group: GroupRoom, peer: GroupPeer, wire: Any) -> None:
        try:
            profile = profile_from_wire(wire)
        except (TypeError, ValueError) as exc:
            log.info("ignoring %s's bandwidth profile: %s", peer.sid, exc)
            return
        if profile is None:
            return
        if peer.bandwidth is None:
            peer.bandwidth = SubscriberBandwidth(profile)
        else:
            peer.bandwidth.profile = profile
        group.start_allocation()

    def received(self, room: Room, participant_sid: str,
                 peer_connections: list[PeerConnectionState]) -> None:
        """Descriptions a participant sent about its connection to the SFU."""
        group = self.rooms.get(room.sid)
        peer = group.peers.get(participant_sid) if group is not None else None
        if peer is None:
            return
        for state in peer_connections:
            peer.received(state)

    def amend(self, room: Room, participant_sid: str, message: RoomState) -> None:
        """Complete a ``connected`` or ``synced``: the room type (so an rtcroom client knows to
        use one connection to the SFU), the media signaling channels the server opens for the
        participant, and in ``synced`` the participant's connection, with the
        description it has not answered yet (twilio-video.js closes connections ``synced``
        leaves out)."""
        message.options = {**(message.options or {}), "room_type": room.type}
        group = self.rooms.get(room.sid)
        peer = group.peers.get(participant_sid) if group is not None else None
        if peer is not None and peer.media_signaling:
            message.media_signaling = peer.media_signaling_transports()
        if message.type != "synced" or peer is None or peer.pc is None:
            return
        message.peer_connections = (message.peer_connections or []) + [
            PeerConnectionState(id=peer.pc_id, description=peer.pending)]

    def _close_later(self, peer: GroupPeer) -> None:
        task = asyncio.ensure_future(peer.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for group in self.rooms.values():
            for peer in group.peers.values():
                self._close_later(peer)
            group.peers.clear()
            group.stop_timers()
            group.router.close()
        self.rooms.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
