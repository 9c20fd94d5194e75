"""VP8 simulcast from Python: one video track encoded at several resolutions (PyAV/libvpx through
aiortc's Vp8Encoder) and sent as one stream per layer on one transceiver, announced the way
browsers do without rids: extra `a=ssrc` lines and an `a=ssrc-group:SIM` (lowest layer first).

aiortc sends one stream per sender and has no simulcast, so the layers' packets are written with
`aiortc_ext.rtp.write_rtp` on a sender carrying a `ForwardedTrack`, and the offer's SDP is
amended with `announce` before it goes to the other side.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

from aiortc import RTCRtpTransceiver, clock
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpParameters
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    AnyRtcpPacket,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpSenderInfo,
    RtpPacket,
)
from av import VideoFrame

from rtcroom.aiortc_ext.rtp import (
    ForwardedTrack,
    attach_sender,
    claim_sender_ssrcs,
    negotiated_codecs,
    negotiated_header_extensions,
    sender_ssrc,
    write_rtp,
)

DEFAULT_SCALES = (4, 2, 1)
"""Each layer's resolution is the source's divided by its scale, lowest layer first."""
DEFAULT_BITRATES = (250_000, 600_000, 1_500_000)


class SimulcastSender:
    """Encodes `source` into len(scales) VP8 layers and sends them on `transceiver`, whose sender
    must carry a `ForwardedTrack`. Layer 0 uses the sender's own SSRC; a PLI or FIR for a
    layer's SSRC makes that layer's next frame a keyframe."""

    def __init__(self, transceiver: RTCRtpTransceiver, source: MediaStreamTrack,
                 scales: Sequence[int] = DEFAULT_SCALES,
                 bitrates: Sequence[int] = DEFAULT_BITRATES) -> None:
        if not isinstance(transceiver.sender.track, ForwardedTrack):
            raise TypeError("the simulcast transceiver must send a ForwardedTrack")
        if len(scales) != len(bitrates) or not scales:
            raise ValueError("one bitrate per simulcast layer is needed")
        self.transceiver = transceiver
        self.source = source
        self.scales = list(scales)
        self.ssrcs = [sender_ssrc(transceiver.sender)] + [
            random.randrange(1, 1 << 32) for _ in scales[1:]]
        self.encoders = []
        for bitrate in bitrates:
            encoder = Vp8Encoder()
            encoder.target_bitrate = bitrate
            self.encoders.append(encoder)
        self.frames_encoded = [0] * len(scales)
        self.keyframes_requested = [0] * len(scales)
        self._force_keyframe = [True] * len(scales)
        self._sequence = [random.randrange(1 << 15) for _ in scales]
        self._timestamp_base = random.randrange(1 << 32)
        self._task: asyncio.Task[None] | None = None
        self._reports: dict[int, RtcpSenderInfo] = {}
        """Per layer: when its last frame was sent (NTP) with which RTP timestamp, and totals,
        as aiortc's own sender reports them."""
        self._packets = [0] * len(scales)
        self._octets = [0] * len(scales)
        attach_sender(transceiver.sender, self._on_rtcp, self._reports.copy)

    def announce(self, sdp: str) -> str:
        """`sdp` (an offer or answer of this transceiver's connection) with the other layers'
        SSRCs and the SIM group added to this transceiver's media section."""
        lines = sdp.split("\r\n")
        primary = f"a=ssrc:{self.ssrcs[0]} "
        media_start = next(i for i, line in enumerate(lines)
                           if line == f"a=mid:{self.transceiver.mid}")
        own = [i for i, line in enumerate(lines) if i > media_start and line.startswith(primary)]
        if not own:
            raise ValueError(f"no a=ssrc lines for {self.ssrcs[0]} in the description")
        attributes = [lines[i][len(primary):] for i in own]
        extra = [f"a=ssrc:{ssrc} {attr}" for ssrc in self.ssrcs[1:] for attr in attributes]
        extra.append("a=ssrc-group:SIM " + " ".join(str(s) for s in self.ssrcs))
        at = own[-1] + 1
        return "\r\n".join(lines[:at] + extra + lines[at:])

    def start(self) -> None:
        """Start encoding and sending; call once the connection is established."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _on_rtcp(self, packet: AnyRtcpPacket) -> None:
        if (isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR)
                and packet.media_ssrc in self.ssrcs):
            layer = self.ssrcs.index(packet.media_ssrc)
            self._force_keyframe[layer] = True
            self.keyframes_requested[layer] += 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        sender = self.transceiver.sender
        claim_sender_ssrcs(sender, self.ssrcs[1:])
        payload_type = next(c.payloadType for c in negotiated_codecs(self.transceiver)
                            if c.mimeType.lower() == "video/vp8" and c.payloadType is not None)
        extensions = HeaderExtensionsMap()
        extensions.configure(RTCRtpParameters(
            headerExtensions=negotiated_header_extensions(self.transceiver)))
        try:
            while True:
                frame = await self.source.recv()
                if not isinstance(frame, VideoFrame):
                    raise TypeError("a simulcast source must yield video frames")
                for layer, scale in enumerate(self.scales):
                    scaled = frame if scale == 1 else frame.reformat(
                        width=frame.width // scale, height=frame.height // scale)
                    force, self._force_keyframe[layer] = self._force_keyframe[layer], False
                    payloads, timestamp = await loop.run_in_executor(
                        None, self.encoders[layer].encode, scaled, force)
                    self.frames_encoded[layer] += 1
                    self._send(sender, payload_type, layer, payloads,
                               (self._timestamp_base + timestamp) & 0xFFFFFFFF, extensions)
        except MediaStreamError:
            pass

    def _send(self, sender: Any, payload_type: int, layer: int, payloads: list[bytes],
              timestamp: int, extensions: HeaderExtensionsMap) -> None:
        for i, payload in enumerate(payloads):
            packet = RtpPacket(payload_type=payload_type, sequence_number=self._sequence[layer],
                               timestamp=timestamp, ssrc=self.ssrcs[layer], payload=payload,
                               marker=int(i == len(payloads) - 1))
            packet.extensions.mid = self.transceiver.mid
            self._sequence[layer] = (self._sequence[layer] + 1) & 0xFFFF
            write_rtp(sender.transport, packet.serialize(extensions))
            self._packets[layer] += 1
            self._octets[layer] += len(payload)
        self._reports[self.ssrcs[layer]] = RtcpSenderInfo(
            ntp_timestamp=clock.current_ntp_time(), rtp_timestamp=timestamp,
            packet_count=self._packets[layer] & 0xFFFFFFFF,
            octet_count=self._octets[layer] & 0xFFFFFFFF)
