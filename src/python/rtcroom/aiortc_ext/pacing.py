"""Paced RTP for an aiortc RTCPeerConnection: every outgoing RTP packet goes through a
:class:`rtcroom.pacer.PacedSender` before SRTP, at the point libwebrtc paces too (the DTLS
transport's RTP send). RTCP is not paced."""

from __future__ import annotations

from typing import Any

from aiortc import RTCDtlsTransport, RTCPeerConnection
from aiortc.rtp import is_rtcp

from rtcroom.aiortc_ext.ssrc import SenderSsrcs
from rtcroom.pacer import PacedSender, PacketClass

__all__ = ["RtpPacer", "enable_pacing"]


class RtpPacer:
    """Paces the RTP of one peer connection; one :class:`PacedSender` per DTLS transport (one
    with bundle), each at the target bitrate. Use :func:`enable_pacing`."""

    def __init__(self, pc: RTCPeerConnection, target_bitrate: int, **options: Any) -> None:
        self.ssrcs = SenderSsrcs(pc)
        self._pc = pc
        self._target_bitrate = target_bitrate
        self._options = options
        self._senders: dict[int, tuple[RTCDtlsTransport, PacedSender]] = {}

    @property
    def target_bitrate(self) -> int:
        return self._target_bitrate

    @target_bitrate.setter
    def target_bitrate(self, value: int) -> None:
        for _, paced in self._senders.values():
            paced.target_bitrate = value
        self._target_bitrate = value

    def paced_senders(self) -> list[PacedSender]:
        return [paced for _, paced in self._senders.values()]

    def apply(self) -> None:
        """Hooks the DTLS transports the transceivers use now and unhooks those they stopped
        using (bundling keeps one of the offer's transports). :func:`enable_pacing` calls it
        again when the connection is up; call it after a renegotiation adds transceivers."""
        in_use = {id(t.sender.transport): t.sender.transport for t in self._pc.getTransceivers()}
        for key in [k for k in self._senders if k not in in_use]:
            transport, paced = self._senders.pop(key)
            del transport._send_rtp
            paced.close()
        for key, transport in in_use.items():
            if key not in self._senders:
                self._hook(transport)

    async def stop(self) -> None:
        """Unhooks and stops; queued packets are discarded."""
        senders, self._senders = self._senders, {}
        for transport, paced in senders.values():
            del transport._send_rtp  # the class's own method shows through again
            await paced.stop()

    def _hook(self, transport: RTCDtlsTransport) -> None:
        send_rtp = transport._send_rtp

        async def send(data: bytes, packet_class: PacketClass, due_us: int) -> None:
            await send_rtp(data)

        paced = PacedSender(send, self._target_bitrate, **self._options)
        paced.start()
        lookup = self.ssrcs.lookup

        async def paced_send_rtp(data: bytes) -> None:
            if is_rtcp(data) or not paced.enabled:
                await send_rtp(data)
                return
            if transport.state != "connected":
                # As aiortc's own method would: this is how a sender learns to stop.
                raise ConnectionError("Cannot send encrypted RTP, not connected")
            source = lookup(data)
            if source is None:
                paced.enqueue(data, "video")
            else:
                paced.enqueue(data, source.kind, retransmission=source.retransmission)

        transport._send_rtp = paced_send_rtp  # type: ignore[method-assign]
        self._senders[id(transport)] = (transport, paced)


def enable_pacing(pc: RTCPeerConnection, target_bitrate: int, **options: Any) -> RtpPacer:
    """Paces ``pc``'s outgoing RTP at ``target_bitrate`` x the pacing factor (options as for
    :class:`rtcroom.pacer.PacedSender`; ``enabled=False`` leaves sending as aiortc does it). Call
    it inside the event loop, after the transceivers exist (after ``addTrack`` or
    ``setRemoteDescription``)."""
    pacer = RtpPacer(pc, target_bitrate, **options)
    pacer.apply()

    def on_connection(*_: Any) -> None:
        if pc.connectionState == "connected":
            pacer.apply()

    pc.on("connectionstatechange", on_connection)
    return pacer
