"""Room state storage: an interface and its backends."""

from rtcroom.server.store.base import RoomStore
from rtcroom.server.store.memory import MemoryRoomStore

__all__ = ["MemoryRoomStore", "RoomStore"]
