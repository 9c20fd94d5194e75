"""``rtcroom.connect()`` and the network side of a connected room.

:class:`RoomConnection` speaks the room protocol over a :class:`SignalingTransport`, keeps the
local participant's state and revision, turns what the server says into calls on the Room
object model (participants, publications, subscriptions), and runs the peer-to-peer media
through :class:`PeerConnections`. It is the :class:`RoomSignaling` the Room calls back.

Reconnection: when the WebSocket drops, the room fires ``reconnecting``, the connection retries
with exponential backoff (80 ms x 1.5, as twilio-video.js) and resumes its session with
``sync``; ``synced`` brings ``reconnected``. When the server's session timeout passes first,
the room ends with SignalingConnectionTimeoutError (53002).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from dataclasses import replace
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCIceServer
from aiortc.mediastreams import MediaStreamTrack

from rtcroom.aiortc_ext.dtx import use_dtx
from rtcroom.aiortc_ext.encoder import cap_bitrate
from rtcroom.aiortc_ext.simulcast import simulcast_of
from rtcroom.client.codecs import opus_dtx, preferred_codec_names, simulcast_preferred
from rtcroom.client.create import create_local_audio_track, create_local_video_track
from rtcroom.client.groupconnection import GroupPeerConnection
from rtcroom.client.localtrack import (
    LocalAudioTrack,
    LocalTrack,
    LocalVideoTrack,
)
from rtcroom.client.mediasignaling import MediaSignaling, bandwidth_profile_wire
from rtcroom.client.participant import LocalParticipant, RemoteParticipant
from rtcroom.client.peerconnections import PeerConnections
from rtcroom.client.room import Room
from rtcroom.client.stats import NetworkQualityInputs, StatsReport, collect_stats_report
from rtcroom.client.transport import SignalingTransport
from rtcroom.constants import RoomState as RoomStateEnum
from rtcroom.constants import TrackPriority
from rtcroom.errors import (
    MediaConnectionError,
    RoomCompletedError,
    SignalingConnectionDisconnectedError,
    SignalingConnectionError,
    SignalingConnectionTimeoutError,
    SignalingIncomingMessageInvalidError,
    TrackInvalidError,
    TwilioError,
    from_code,
)
from rtcroom.options import (
    KEEP,
    BandwidthProfileOptions,
    ConnectOptions,
    EncodingParameters,
    NetworkQualityConfiguration,
    VideoTrackDimensions,
)
from rtcroom.signaling.fields import MessageFormatError
from rtcroom.signaling.messages import (
    ClientUpdate,
    Connect,
    Disconnect,
    Disconnected,
    Error,
    IceServer,
    ParticipantState,
    PeerConnectionState,
    RemoteParticipantState,
    RoomState,
    Sync,
    TrackState,
    parse_server_message,
)
from rtcroom.signaling.messages import Warning as ServerWarning
from rtcroom.signaling.networkquality import NetworkQualityStats

__all__ = ["SERVER_ENV", "RoomConnection", "connect"]

logger = logging.getLogger("rtcroom.signaling")

SERVER_ENV = "RTCROOM_SERVER"
# How long connect() and a publish wait for the server's answer.
CONNECT_TIMEOUT = 30.0
PUBLISH_TIMEOUT = 15.0
BACKOFF_MIN = 0.08
BACKOFF_FACTOR = 1.5
BACKOFF_MAX = 5.0
GROUP_ROOM_TYPES = ("group", "group-small")


async def connect(token: str, server: str | None = None, **options: Any) -> Room:
    """Join the room the token grants (or ``name=``) on ``server`` (a ``ws://`` URL; default
    ``$RTCROOM_SERVER``) and return the connected Room.

    ``options`` are the ConnectOptions fields in snake_case (or a ``ConnectOptions`` as
    ``options=``). Raises the Twilio error the server answered with (e.g. 20101 for a bad token,
    53105 for a full room), or SignalingConnectionError (53000) when the server is unreachable.
    """
    opts = options.pop("options", None)
    if opts is not None and options:
        raise TypeError(f"connect(): give the options either as options= or as keywords, not "
                        f"both (options= came with {', '.join(sorted(options))})")
    opts = ConnectOptions.from_dict(opts if opts is not None else options, "options")
    url = server or os.environ.get(SERVER_ENV)
    if not url:
        raise SignalingConnectionError(
            f"Signaling connection error: no server; pass server= or set {SERVER_ENV}")
    if not isinstance(token, str) or not token:
        raise TypeError(f"connect: token must be a non-empty string, got {token!r}")
    connection = RoomConnection(url, token, opts)
    return await connection.connect()


def _local_tracks(opts: ConnectOptions) -> tuple[list[LocalTrack], list[LocalTrack]]:
    """The tracks to publish on joining, and which of them connect() made (and owns)."""
    if opts.tracks is not None:
        tracks: list[LocalTrack] = []
        for t in opts.tracks:
            if isinstance(t, LocalTrack):
                tracks.append(t)
            elif isinstance(t, MediaStreamTrack) and t.kind == "audio":
                tracks.append(LocalAudioTrack(t))
            elif isinstance(t, MediaStreamTrack) and t.kind == "video":
                tracks.append(LocalVideoTrack(t))
        return tracks, []
    owned: list[LocalTrack] = []
    if opts.audio is not False:
        owned.append(create_local_audio_track(None if opts.audio is True else opts.audio))
    if opts.video is not False:
        owned.append(create_local_video_track(None if opts.video is True else opts.video))
    return owned, owned


def _track_state(track: LocalTrack, priority: TrackPriority | str) -> TrackState:
    return TrackState(id=track.id, kind=str(track.kind), name=track.name,
                      enabled=track.is_enabled, priority=str(priority))


class RoomConnection:
    """The network side of one room (see the module docstring)."""

    def __init__(self, url: str, token: str, options: ConnectOptions) -> None:
        self.url = url
        self.token = token
        self.options = options
        self.room: Room | None = None
        self.session: str | None = None
        self.session_timeout = 30.0
        self._started_at = time.monotonic()
        self._transport: SignalingTransport | None = None
        self._revision = 1
        self._tracks: dict[str, tuple[LocalTrack, TrackPriority | str]] = {}
        self._publishing: dict[str, asyncio.Future[str]] = {}
        self._published_revision = 0
        self._subscribed_revision = 0
        self._subscribed: dict[str, str] = {}
        # Track sids the server reported failed (each reported once, until it stops).
        self._failed_subscriptions: set[str] = set()
        self._participant_revisions: dict[str, int] = {}
        self._remote_media: dict[str, MediaStreamTrack] = {}
        self._remote_channels: dict[str, RTCDataChannel] = {}
        self._server_ice: list[IceServer] = []
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._answer: asyncio.Future[RoomState] | None = None
        self._leaving = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self.encoding_parameters = EncodingParameters(
            max_audio_bitrate=options.max_audio_bitrate or 0,
            max_video_bitrate=options.max_video_bitrate or 0)
        self.network_quality_configuration = options.network_quality
        # Peer connections that failed and are being replaced (reconnecting until empty).
        self._media_down: set[str] = set()
        self._signaling_down = False
        self.pcs: PeerConnections | GroupPeerConnection = PeerConnections(
            self._rtc_configuration, self._send_pc, self._on_remote_track,
            self._on_remote_channel, self._on_pc_state, dscp=options.enable_dscp,
            codecs=preferred_codec_names(options))
        self.media_signaling = MediaSignaling(
            options, self._on_dominant_speaker, self._on_track_switch,
            on_network_quality=self._on_network_quality,
            network_quality_inputs=self._network_quality_inputs,
            report_levels=self._report_levels)
        self._quality_inputs = NetworkQualityInputs()

    # --- joining -------------------------------------------------------------------------------

    def _participant_state(self) -> ParticipantState:
        return ParticipantState(revision=self._revision, tracks=[
            _track_state(t, p) for t, p in self._tracks.values()])

    async def connect(self) -> Room:
        tracks, owned = _local_tracks(self.options)
        for track in tracks:
            self._tracks[track.id] = (track, TrackPriority.STANDARD)
        message = Connect(
            name=self.options.name, token=self.token, participant=self._participant_state(),
            ice_servers="overrode" if self.options.ice_servers is not None else "acquire",
            publisher={"name": "rtcroom", "sdk_version": _version(), "user_agent": "python"},
            subscribe={"rules": [{"type": "include" if self.options.automatic_subscription
                                  else "exclude", "all": True}], "revision": 1},
            media_signaling=self.media_signaling.request(),
            bandwidth_profile=self.media_signaling.bandwidth_profile(),
        )
        try:
            connected = await self._open(message.to_wire())
        except BaseException:
            for track in owned:
                track.stop()
            raise
        assert connected.participant is not None and connected.session is not None
        self.session = connected.session
        self.session_timeout = float((connected.options or {}).get("session_timeout", 30))
        if (connected.options or {}).get("room_type") in GROUP_ROOM_TYPES:
            # One connection to the server's SFU instead of one per pair of participants.
            self.pcs = GroupPeerConnection(self._rtc_configuration, self._send_pc,
                                           self._on_remote_track, self._on_remote_channel,
                                           self._on_pc_state, dscp=self.options.enable_dscp,
                                           codecs=preferred_codec_names(self.options),
                                           simulcast=simulcast_preferred(self.options))
        self._server_ice = connected.ice_servers or []
        local = LocalParticipant(connected.participant.sid, connected.participant.identity)
        room = Room(connected.sid or "", connected.name or (self.options.name or ""), local,
                    options=self.options, signaling=self, owned_tracks=owned)
        self.room = room
        sids = {t.id: t.sid for t in (connected.published.tracks if connected.published
                                      else []) if t.sid}
        if connected.published is not None:
            self._published_revision = connected.published.revision
        for track_id, (track, priority) in self._tracks.items():
            if track_id in sids:
                local._published(track, sids[track_id], priority)
                self.pcs.add_track(track)
        self._tasks.append(asyncio.create_task(self._process_inbox()))
        self._tasks.append(asyncio.create_task(self._process_outbox()))
        await self._apply(connected, initial=True)
        return room

    async def _open(self, hello_body: dict[str, Any]) -> RoomState:
        """A new transport whose hello carries ``hello_body``; the answering room state."""
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        transport = SignalingTransport(self.url, self._on_message, self._on_close,
                                       self.options.event_listener, self._started_at)
        self._transport = transport
        await transport.open(hello_body)
        try:
            return await asyncio.wait_for(asyncio.shield(self._answer), CONNECT_TIMEOUT)
        except asyncio.TimeoutError:
            await transport.close()
            raise SignalingConnectionTimeoutError("No answer from the server in time") from None
        except BaseException:
            await transport.close()
            raise

    # --- incoming ------------------------------------------------------------------------------

    def _on_message(self, body: dict[str, Any]) -> None:
        try:
            message = parse_server_message(body)
        except MessageFormatError as exc:
            logger.warning("%s", SignalingIncomingMessageInvalidError(
                f"Client received an invalid signaling message: {exc}"))
            return
        answer = self._answer
        if answer is not None and not answer.done():
            if isinstance(message, RoomState) and message.type in ("connected", "synced"):
                answer.set_result(message)
                return
            if isinstance(message, Error):
                answer.set_exception(from_code(message.code, message.message or None))
                return
            if isinstance(message, Disconnected):
                answer.set_exception(RoomCompletedError() if message.status == "completed"
                                     else SignalingConnectionDisconnectedError())
                return
        if isinstance(message, RoomState) and message.type == "update" and self.room is None:
            return  # cannot happen before connected: the server sends it first
        self._inbox.put_nowait(body)

    async def _process_inbox(self) -> None:
        while True:
            body = await self._inbox.get()
            message = parse_server_message(body)
            try:
                if isinstance(message, RoomState):
                    await self._apply(message)
                elif isinstance(message, Error):
                    await self._end(from_code(message.code, message.message or None))
                elif isinstance(message, Disconnected):
                    await self._end(RoomCompletedError() if message.status == "completed"
                                    else None)
                elif isinstance(message, ServerWarning):
                    logger.warning("server warning %s: %s", message.code, message.message)
            except Exception:
                logger.exception("applying a server message failed")

    async def _apply(self, state: RoomState, initial: bool = False) -> None:
        room = self.room
        if room is None:
            return
        if state.media_signaling is not None:
            self.media_signaling.offered(state.media_signaling)
        if state.participants is not None:
            self._apply_participants(room, state.participants, initial,
                                     synced=state.type == "synced")
        if state.published is not None and state.published.revision > self._published_revision:
            self._published_revision = state.published.revision
            for published in state.published.tracks:
                waiter = self._publishing.get(published.id)
                if waiter is None or waiter.done():
                    refused = self._tracks.get(published.id)
                    if published.error is not None and refused is not None:
                        # A group room's SFU refused the media of a track it had given a sid
                        # (its offer had none of the room's video codecs).
                        await self.unpublish_track(refused[0])
                        room.local_participant._publication_refused(
                            refused[0], from_code(published.error.code,
                                                  published.error.message or None))
                    continue
                if published.sid and published.state == "ready":
                    waiter.set_result(published.sid)
                elif published.error is not None:
                    waiter.set_exception(from_code(published.error.code,
                                                   published.error.message or None))
        if state.subscribed is not None and state.subscribed.revision > self._subscribed_revision:
            self._subscribed_revision = state.subscribed.revision
            self._subscribed = {t.sid: t.id for t in state.subscribed.tracks if t.id}
            failed = {t.sid: t.error for t in state.subscribed.tracks if t.error is not None}
            for participant in room.participants.values():
                for sid in list(participant.tracks):
                    if sid not in self._subscribed:
                        participant._unsubscribe(sid)
                    error = failed.get(sid)
                    if error is not None and sid not in self._failed_subscriptions:
                        participant._subscription_failed(sid, from_code(error.code,
                                                                        error.message or None))
            self._failed_subscriptions = set(failed)
        for pc in state.peer_connections or []:
            await self.pcs.handle(pc)
            if pc.description is not None and pc.description.type == "close":
                # A failed connection to someone who left will not come back.
                self._media_down.discard(pc.id)
                self._maybe_reconnected()
        self._try_subscribe()

    def _apply_participants(self, room: Room, states: list[RemoteParticipantState],
                            initial: bool, synced: bool) -> None:
        local_sid = room.local_participant.sid
        seen = set()
        for ps in states:
            if ps.sid == local_sid:
                continue
            seen.add(ps.sid)
            if ps.revision <= self._participant_revisions.get(ps.sid, 0):
                continue
            self._participant_revisions[ps.sid] = ps.revision
            if ps.state == "disconnected":
                room._remove_participant(ps.sid)
                continue
            participant = room._add_participant(ps.sid, ps.identity, announce=not initial)
            self._apply_tracks(participant, ps)
            room._set_participant_state(ps.sid, ps.state)
        if synced:
            for sid in [s for s in room.participants if s not in seen]:
                room._remove_participant(sid)

    def _apply_tracks(self, participant: RemoteParticipant, ps: RemoteParticipantState) -> None:
        wanted = {t.sid: t for t in ps.tracks}
        for sid in [s for s in participant.tracks if s not in wanted]:
            participant._remove_publication(sid)
        for t in ps.tracks:
            if t.sid not in participant.tracks:
                participant._add_publication(t.sid, t.name, t.kind, t.enabled, t.priority)
            else:
                participant._set_track_enabled(t.sid, t.enabled)
                participant._set_publish_priority(t.sid, t.priority)

    def _try_subscribe(self) -> None:
        """Attach every subscribed track whose receiver (media track or data channel) is here."""
        room = self.room
        if room is None:
            return
        for participant in room.participants.values():
            for sid, publication in participant.tracks.items():
                receiver_id = self._subscribed.get(sid)
                if receiver_id is None or publication.track is not None:
                    continue
                if str(publication.kind) == "data":
                    channel = self._remote_channels.get(receiver_id)
                    if channel is not None and channel.readyState == "open":
                        track = participant._subscribe(sid, channel=channel)
                        channel.on("message", track._receive)  # type: ignore[attr-defined]
                else:
                    media = self._remote_media.get(receiver_id)
                    if media is not None and media.readyState == "live":
                        participant._subscribe(sid, media)

    def _on_remote_track(self, track: MediaStreamTrack, receiver_id: str) -> None:
        self._replace_receiver(receiver_id)
        self._remote_media[receiver_id] = track
        # Forgotten when its connection closes: a participant that stays while others come and
        # go would otherwise keep every track it ever received (the soak test found this).
        track.on("ended", lambda: self._forget(self._remote_media, receiver_id, track))
        self._try_subscribe()

    def _on_remote_channel(self, channel: RTCDataChannel) -> None:
        if self.media_signaling.adopt(channel):
            return
        self._replace_receiver(channel.label)
        self._remote_channels[channel.label] = channel
        channel.on("close", lambda: self._forget(self._remote_channels, channel.label, channel))
        if channel.readyState == "open":
            self._try_subscribe()
        else:
            channel.on("open", self._try_subscribe)

    def _forget(self, receivers: dict[str, Any], receiver_id: str, receiver: object) -> None:
        """``receiver`` ended with its connection: unsubscribe what it fed and drop it, unless
        a newer one (of a replacement connection) has its id already."""
        if receivers.get(receiver_id) is receiver:
            self._replace_receiver(receiver_id)
            del receivers[receiver_id]

    def _replace_receiver(self, receiver_id: str) -> None:
        """A receiver came again for a track already subscribed (its connection was replaced
        after a failure): unsubscribe the dead one so the new one is subscribed."""
        if receiver_id not in self._remote_media and receiver_id not in self._remote_channels:
            return
        room = self.room
        for participant in room.participants.values() if room else []:
            for sid, publication in participant.tracks.items():
                if self._subscribed.get(sid) == receiver_id and publication.track is not None:
                    participant._unsubscribe(sid)

    def _on_dominant_speaker(self, sid: str | None) -> None:
        if self.room is not None:
            self.room._set_dominant_speaker(sid)

    def _on_track_switch(self, track_sid: str, off: bool) -> None:
        if self.room is not None:
            self.room._switch_tracks(off=[track_sid] if off else [], on=[] if off else [track_sid])

    def _on_network_quality(self, sid: str | None, level: int,
                            stats: NetworkQualityStats | None) -> None:
        room = self.room
        if room is not None:
            room._set_network_quality(sid or room.local_participant.sid, level, stats)

    async def _network_quality_inputs(self) -> dict[str, Any] | None:
        connections = self.pcs.connections()
        if not connections:
            return None
        return await self._quality_inputs.next(connections[0][1], time.monotonic())

    def _report_levels(self) -> tuple[int, int]:
        configuration = self.network_quality_configuration or NetworkQualityConfiguration()
        return int(configuration.local), int(configuration.remote)

    def _on_pc_state(self, pc_id: str, state: str) -> None:
        room = self.room
        if room is None:
            return
        if state == "failed":
            logger.warning("peer connection %s failed; replacing it", pc_id)
            self._media_down.add(pc_id)
            room._set_reconnecting(MediaConnectionError(
                "Media connection failed or Media activity ceased"))
        elif state == "connected" and pc_id in self._media_down:
            self._media_down.discard(pc_id)
            self._maybe_reconnected()

    def _maybe_reconnected(self) -> None:
        room = self.room
        if (room is not None and room.state == RoomStateEnum.RECONNECTING
                and not self._media_down and not self._signaling_down):
            room._set_reconnected()

    # --- outgoing ------------------------------------------------------------------------------

    def _rtc_configuration(self) -> RTCConfiguration:
        if self.options.ice_servers is not None:
            servers = list(self.options.ice_servers)
        else:
            servers = [RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                       for s in self._server_ice]
        return RTCConfiguration(iceServers=servers,
                                iceTransportPolicy=self.options.ice_transport_policy)

    def _post(self, body: dict[str, Any]) -> None:
        self._outbox.put_nowait(body)

    async def _process_outbox(self) -> None:
        while True:
            body = await self._outbox.get()
            transport = self._transport
            if transport is not None:
                await transport.send(body)

    def _send_update(self, peer_connections: list[PeerConnectionState] | None = None,
                     participant: bool = True) -> None:
        if self.session is None:
            return
        self._post(ClientUpdate(session=self.session,
                                participant=self._participant_state() if participant else None,
                                peer_connections=peer_connections).to_wire())

    def _send_pc(self, state: PeerConnectionState) -> None:
        self._configure_encoders()  # a description goes out when a sender was added
        self._send_update([state], participant=False)

    def _state_changed(self) -> None:
        self._revision += 1
        self._send_update()

    # --- RoomSignaling -------------------------------------------------------------------------

    async def publish_track(self, track: LocalTrack, priority: TrackPriority) -> str:
        if track.id in self._tracks:
            raise TrackInvalidError(f"Track is invalid: {track!r} is already published")
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._publishing[track.id] = waiter
        self._tracks[track.id] = (track, priority)
        if isinstance(self.pcs, GroupPeerConnection):
            # The SFU asks for the offer carrying the track right after it has the new state,
            # possibly before this coroutine resumes.
            self.pcs.add_track(track)
        self._state_changed()
        try:
            sid = await asyncio.wait_for(waiter, PUBLISH_TIMEOUT)
        except BaseException:
            self._tracks.pop(track.id, None)
            self.pcs.remove_track(track)
            raise
        finally:
            self._publishing.pop(track.id, None)
        self.pcs.add_track(track)
        return sid

    async def unpublish_track(self, track: LocalTrack) -> None:
        if self._tracks.pop(track.id, None) is None:
            return
        self.pcs.remove_track(track)
        self._state_changed()

    def local_track_changed(self, track: LocalTrack) -> None:
        if track.id in self._tracks:
            self._state_changed()

    def publish_priority_changed(self, track_sid: str, priority: TrackPriority) -> None:
        room = self.room
        publication = room.local_participant.tracks.get(track_sid) if room else None
        if publication is not None and publication.track.id in self._tracks:
            self._tracks[publication.track.id] = (publication.track, priority)
            self._state_changed()

    def subscribe_priority_changed(self, track_sid: str, priority: TrackPriority | None) -> None:
        # Subscriber priorities steer the SFU's bandwidth allocation (group rooms; peer-to-peer
        # media has no allocator, and the server opens no track_priority channel there).
        self.media_signaling.set_track_priority(track_sid,
                                                None if priority is None else str(priority))

    def set_bandwidth_profile(self, profile: BandwidthProfileOptions) -> None:
        self.options = replace(self.options, bandwidth_profile=profile)
        if self.session is not None:
            self._post(ClientUpdate(session=self.session,
                                    bandwidth_profile=bandwidth_profile_wire(profile)).to_wire())

    def set_encoding_parameters(self, parameters: EncodingParameters) -> None:
        current = self.encoding_parameters
        self.encoding_parameters = EncodingParameters(
            max_audio_bitrate=(current.max_audio_bitrate if parameters.max_audio_bitrate is KEEP
                               else parameters.max_audio_bitrate),
            max_video_bitrate=(current.max_video_bitrate if parameters.max_video_bitrate is KEEP
                               else parameters.max_video_bitrate))
        self._configure_encoders()

    def _configure_encoders(self) -> None:
        """Hold every sender's encoder to the caps of its kind (0: none), audio to Opus DTX as
        the preferred codecs set it."""
        caps = {"audio": self.encoding_parameters.max_audio_bitrate,
                "video": self.encoding_parameters.max_video_bitrate}
        dtx = opus_dtx(self.options)
        for _, pc in self.pcs.connections():
            for sender in pc.getSenders():
                cap = caps.get(sender.kind)
                if not isinstance(cap, int) or sender.track is None:
                    continue
                if sender.kind == "audio":
                    use_dtx(sender, dtx)
                # A simulcast sender (its track a ForwardedTrack) runs encoders of its own.
                layered = simulcast_of(sender)
                if layered is not None:
                    layered.set_max_bitrate(cap)
                else:
                    cap_bitrate(sender, cap)

    def set_network_quality_configuration(self,
                                          configuration: NetworkQualityConfiguration) -> None:
        self.network_quality_configuration = configuration

    async def disconnect(self) -> None:
        self._leaving = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        transport = self._transport
        if transport is not None:
            await transport.close(Disconnect(session=self.session).to_wire())
        await self._shutdown()

    def render_hint(self, track_sid: str, enabled: bool | None = None,
                    render_dimensions: VideoTrackDimensions | None = None) -> None:
        # Render hints tell an SFU what to forward; a peer-to-peer publisher sends everything.
        logger.debug("render hint for %s (no effect peer-to-peer)", track_sid)

    async def get_stats(self) -> list[StatsReport]:
        room = self.room
        if room is None:
            return []
        track_sids: dict[str, str] = {}
        tracks: dict[str, Any] = {}
        for publication in room.local_participant.tracks.values():
            track_sids[publication.track.id] = publication.track_sid
            tracks[publication.track.id] = publication.track
        for participant in room.participants.values():
            for sid, remote in participant.tracks.items():
                receiver_id = self._subscribed.get(sid)
                if receiver_id is not None and remote.track is not None:
                    track_sids[receiver_id] = sid
                    tracks[receiver_id] = remote.track
        return [await collect_stats_report(pc_id, pc, track_sids, tracks)
                for pc_id, pc in self.pcs.connections()]

    # --- ending and reconnecting ---------------------------------------------------------------

    async def _shutdown(self) -> None:
        self.media_signaling.close()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        await self.pcs.close()

    async def _end(self, error: TwilioError | None) -> None:
        """The server ended our session (error, kicked, room completed)."""
        self._leaving = True
        transport = self._transport
        if transport is not None:
            await transport.close()
        await self._shutdown()
        if self.room is not None:
            self.room._disconnected(error)

    def _on_close(self, reason: str, error: TwilioError | None) -> None:
        if self._leaving or self.room is None or self.session is None:
            answer = self._answer
            if answer is not None and not answer.done():
                answer.set_exception(error or SignalingConnectionError())
            return
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.create_task(self._reconnect(reason))

    async def _reconnect(self, reason: str) -> None:
        room = self.room
        assert room is not None and self.session is not None
        self._signaling_down = True
        room._set_reconnecting(SignalingConnectionDisconnectedError(
            f"Signaling connection disconnected ({reason})"))
        deadline = time.monotonic() + self.session_timeout
        delay = BACKOFF_MIN
        while time.monotonic() < deadline and not self._leaving:
            await asyncio.sleep(delay * (1 + random.random()))
            delay = min(delay * BACKOFF_FACTOR, BACKOFF_MAX)
            sync = Sync(session=self.session, token=self.token, name=room.name,
                        participant=self._participant_state())
            try:
                synced = await self._open(sync.to_wire())
            except SignalingConnectionTimeoutError as exc:
                await self._end(exc)
                return
            except TwilioError as exc:
                if exc.code in (53000, 53001):
                    continue  # the server is not reachable yet
                await self._end(exc)
                return
            await self._apply(synced)
            self._signaling_down = False
            self._maybe_reconnected()
            return
        if not self._leaving:
            await self._end(SignalingConnectionTimeoutError(
                "Signaling connection timed out: the session could not be resumed"))


def _version() -> str:
    import rtcroom

    return rtcroom.__version__
