"""Data tracks in a group room: messages from a publisher's data channel are sent on to a data
channel per subscriber, each created with the publisher's reliability settings (ordered,
max_retransmits, max_packet_life_time), so every leg keeps the delivery the publisher asked for.
"""

from __future__ import annotations

from aiortc import RTCDataChannel, RTCPeerConnection


class PublishedDataTrack:
    def __init__(self, sid: str, channel: RTCDataChannel) -> None:
        self.sid = sid
        self.channel = channel
        self.subscriptions: list[RTCDataChannel] = []
        self.messages_received = 0
        self.messages_dropped = 0
        """Messages a subscriber's channel was not open for."""
        self.closed = False
        channel.on("message", self._on_message)

    def subscribe(self, pc: RTCPeerConnection) -> RTCDataChannel:
        """A channel for this track on the subscriber's connection (negotiate it if it is the
        connection's first data channel)."""
        if self.closed:
            raise ValueError(f"data track {self.sid} is unpublished")
        source = self.channel
        channel = pc.createDataChannel(
            source.label, ordered=source.ordered, maxRetransmits=source.maxRetransmits,
            maxPacketLifeTime=source.maxPacketLifeTime, protocol=source.protocol)
        self.subscriptions.append(channel)
        return channel

    def unsubscribe(self, channel: RTCDataChannel) -> None:
        if channel in self.subscriptions:
            self.subscriptions.remove(channel)
            channel.close()

    def _on_message(self, message: bytes | str) -> None:
        self.messages_received += 1
        for channel in self.subscriptions:
            if channel.readyState == "open":
                channel.send(message)
            else:
                self.messages_dropped += 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.channel.remove_listener("message", self._on_message)
        for channel in self.subscriptions:
            channel.close()
        self.subscriptions.clear()
