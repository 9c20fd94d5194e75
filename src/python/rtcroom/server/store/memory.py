"""The default store: rooms in a dict, for one server process."""

from __future__ import annotations

from rtcroom.server.rooms import Room
from rtcroom.server.store.base import RoomStore

__all__ = ["MemoryRoomStore"]


class MemoryRoomStore(RoomStore):
    def __init__(self, max_completed: int = 1000) -> None:
        self._rooms: dict[str, Room] = {}
        # Every signaling message names its session: find its room without a scan.
        self._sessions: dict[str, str] = {}
        # Completed rooms stay listable through REST, up to this many.
        self._max_completed = max_completed

    async def get(self, sid: str) -> Room | None:
        return self._rooms.get(sid)

    async def find_in_progress(self, unique_name: str) -> Room | None:
        for room in self._rooms.values():
            if room.in_progress and room.unique_name == unique_name:
                return room
        return None

    async def find_by_session(self, session: str) -> Room | None:
        room = self._rooms.get(self._sessions.get(session, ""))
        if room is None or not room.in_progress or room.by_session(session) is None:
            return None
        return room

    async def list(self, status: str | None = None, unique_name: str | None = None) -> list[Room]:
        rooms = [r for r in self._rooms.values()
                 if (status is None or r.status == status)
                 and (unique_name is None or r.unique_name == unique_name)]
        return sorted(rooms, key=lambda r: r.created_at, reverse=True)

    async def save(self, room: Room) -> None:
        self._rooms[room.sid] = room
        for p in room.participants.values():
            if p.active:
                self._sessions[p.session] = room.sid
            else:
                self._sessions.pop(p.session, None)
        completed = [r for r in self._rooms.values() if not r.in_progress]
        if len(completed) > self._max_completed:
            oldest = min(completed, key=lambda r: r.ended_at or 0.0)
            del self._rooms[oldest.sid]
            for p in oldest.participants.values():
                self._sessions.pop(p.session, None)

    async def count_in_progress(self) -> int:
        return sum(1 for r in self._rooms.values() if r.in_progress)
