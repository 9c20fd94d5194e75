"""Where room state lives. The server only talks to this interface, so a shared backend
(Redis, in a later issue) can replace the in-memory one without touching room logic."""

from __future__ import annotations

from abc import ABC, abstractmethod

from rtcroom.server.rooms import Room

__all__ = ["RoomStore"]


class RoomStore(ABC):
    @abstractmethod
    async def get(self, sid: str) -> Room | None:
        """The room with this SID, in progress or completed."""

    @abstractmethod
    async def find_in_progress(self, unique_name: str) -> Room | None:
        """The in-progress room with this unique name."""

    @abstractmethod
    async def find_by_session(self, session: str) -> Room | None:
        """The in-progress room holding the participant of this signaling session."""

    @abstractmethod
    async def list(self, status: str | None = None, unique_name: str | None = None) -> list[Room]:
        """Rooms, newest first, optionally filtered."""

    @abstractmethod
    async def save(self, room: Room) -> None:
        """Store ``room`` after a change (memory: a no-op after the first save)."""

    @abstractmethod
    async def count_in_progress(self) -> int:
        """How many rooms are in progress."""
