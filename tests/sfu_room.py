"""An SFU with publishers and subscribers attached by in-process negotiation, standing in for the
group-room signaling that will drive `rtcroom.server.sfu.Router` the same way: publisher pc ->
SFU-side pc (publish), SFU-side pc -> subscriber pc (subscribe)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack
from loopback_peers import negotiate, wait_connected
from rtcroom.aiortc_ext.peerconnection import bundled_peer_connection
from rtcroom.server.sfu import ForwardedTrack, PublishedTrack, Router, Subscription, rtx_ssrcs


@dataclass
class Publisher:
    name: str
    client: RTCPeerConnection
    server: RTCPeerConnection
    senders: list[RTCRtpSender]
    tracks: list[PublishedTrack]


@dataclass
class Subscriber:
    name: str
    client: RTCPeerConnection
    server: RTCPeerConnection
    subscriptions: list[Subscription]
    remote_tracks: dict[str, MediaStreamTrack] = field(default_factory=dict)
    """Received tracks by published track sid."""


def _prefer(pc_transceiver, kind: str, codec: str | None) -> None:
    if codec is None:
        return
    caps = RTCRtpSender.getCapabilities(kind).codecs
    pick = [c for c in caps if c.mimeType.lower() == codec.lower()]
    rtx = [c for c in caps if c.mimeType.lower().endswith("/rtx")]
    pc_transceiver.setCodecPreferences(pick + (rtx if kind == "video" else []))


async def add_publisher(router: Router, name: str, tracks: list[MediaStreamTrack],
                        audio_codec: str | None = None,
                        video_codec: str | None = None) -> Publisher:
    client, server = bundled_peer_connection(), bundled_peer_connection()
    senders = []
    for track in tracks:
        transceiver = client.addTransceiver(track, direction="sendonly")
        _prefer(transceiver, track.kind, video_codec if track.kind == "video" else audio_codec)
        senders.append(transceiver.sender)
    await negotiate(client, server)
    sdp = server.remoteDescription.sdp
    published = [router.publish(f"{name}-{t.kind}-{i}", tr, rtx=rtx_ssrcs(sdp, tr.mid))
                 for i, (t, tr) in enumerate(zip(tracks, server.getTransceivers()))]
    return Publisher(name, client, server, senders, published)


async def add_subscriber(router: Router, name: str, sids: list[str]) -> Subscriber:
    client, server = bundled_peer_connection(), bundled_peer_connection()
    subs = []
    for sid in sids:
        kind = router.tracks[sid].kind
        transceiver = server.addTransceiver(ForwardedTrack(kind), direction="sendonly")
        subs.append(router.subscribe(sid, transceiver))
    await negotiate(server, client)
    received = dict(zip(sids, (t.receiver.track for t in client.getTransceivers())))
    return Subscriber(name, client, server, subs, received)


async def connect_all(publishers: list[Publisher], subscribers: list[Subscriber]) -> None:
    await wait_connected(*(pc for p in publishers for pc in (p.client, p.server)),
                         *(pc for s in subscribers for pc in (s.client, s.server)))


async def close_all(router: Router, publishers: list[Publisher],
                    subscribers: list[Subscriber]) -> None:
    router.close()
    await asyncio.gather(*(pc.close() for p in publishers for pc in (p.client, p.server)),
                         *(pc.close() for s in subscribers for pc in (s.client, s.server)))
