"""Reusing an m-line for a new stream.

JSEP lets an offerer put a new track (a new ``a=msid``, new SSRCs) on an m-line it had made
inactive, and browsers (and twilio-video.js, which matches a reused receiver's track by its msid)
accept it. aiortc never does it: a stopped transceiver stays in every later description, and its
sender and receiver cannot start again (``RTCRtpSender.send`` / ``RTCRtpReceiver.receive`` do
nothing once they have started, ``stop`` is final). A group room's subscriber gains and loses
tracks for as long as it stays, so without reuse its connection grows by one m-line (and one
sender, receiver and track on each end) per subscription ever made.

:func:`retire` stops what flows on a transceiver; once its m-line is negotiated inactive,
:func:`renew` gives it a fresh, unstarted sender and receiver on the same transport, under the
same m-line, which the next negotiation that makes the m-line active starts as aiortc starts a
new transceiver's.

Relies on: ``RTCRtpTransceiver.__sender`` / ``__receiver`` (name-mangled, replaced here),
``RTCRtpSender._ssrc`` and ``_stream_id``, ``RTCRtpReceiver._set_rtcp_ssrc``, and the
peer connection reading ``transceiver.sender`` / ``.receiver`` afresh each time it starts them;
tests/test_aiortc_ext_transceiver.py checks each, so an aiortc upgrade that moves one fails
there.
"""

from __future__ import annotations

from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver

__all__ = ["renew", "retire"]


async def retire(transceiver: RTCRtpTransceiver) -> None:
    """Stop ``transceiver``'s sender and receiver: their RTP/RTCP loops and decoder thread end,
    and so does the receiver's track ("ended"). Its direction and m-line stay."""
    await transceiver.receiver.stop()
    await transceiver.sender.stop()
    track = transceiver.receiver.track
    if track is not None:
        # Its decoder's end reaches it only through a read; one nobody reads must end too.
        track.stop()


def renew(transceiver: RTCRtpTransceiver) -> None:
    """Give a retired ``transceiver`` a fresh, unstarted sender and receiver on the same
    transport, for the next negotiation that makes its m-line active to start.

    Only once the m-line's inactive direction is negotiated (``currentDirection`` is
    "inactive"): aiortc starts a transceiver's sender and receiver whenever it connects, by the
    current direction, and would start fresh ones under the old one at once."""
    if transceiver.currentDirection != "inactive":
        raise ValueError(f"transceiver {transceiver.mid} is {transceiver.currentDirection}, "
                         "not inactive: its sender and receiver would start at once")
    old_sender, old_receiver = transceiver.sender, transceiver.receiver
    if old_sender.transport.state == "closed":
        return  # the connection is ending: nothing will negotiate the m-line again
    sender = RTCRtpSender(transceiver.kind, old_sender.transport)
    # One stream id per connection, as aiortc gives every sender it creates.
    sender._stream_id = old_sender._stream_id
    receiver = RTCRtpReceiver(transceiver.kind, old_receiver.transport)
    receiver._set_rtcp_ssrc(sender._ssrc)
    transceiver._RTCRtpTransceiver__sender = sender  # type: ignore[attr-defined]
    transceiver._RTCRtpTransceiver__receiver = receiver  # type: ignore[attr-defined]
