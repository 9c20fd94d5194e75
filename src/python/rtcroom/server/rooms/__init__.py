"""Room lifecycle, participants, revisions and limits: pure logic, no I/O."""

from rtcroom.server.rooms.room import ROOM_TYPES, Message, Outgoing, Participant, Room, Track

__all__ = ["ROOM_TYPES", "Message", "Outgoing", "Participant", "Room", "Track"]
