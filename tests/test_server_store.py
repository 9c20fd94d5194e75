"""The in-memory room store: lookups by name and session, and the cap on completed rooms."""

from __future__ import annotations

from rtcroom.server.rooms import Room
from rtcroom.server.store import MemoryRoomStore
from rtcroom.signaling.messages import ParticipantState


def new_room(name: str, at: float) -> Room:
    return Room(unique_name=name, type="group", created_at=at, max_participants=5,
                empty_timeout=60)


async def test_lookups_follow_the_room_state() -> None:
    store = MemoryRoomStore()
    room = new_room("a", 1)
    alice, _ = room.join("alice", ParticipantState(1), now=1)
    await store.save(room)
    assert await store.find_in_progress("a") is room
    assert await store.find_by_session(alice.session) is room
    room.leave(alice.sid, now=2)
    await store.save(room)
    assert await store.find_by_session(alice.session) is None
    room.complete(now=3)
    await store.save(room)
    assert await store.find_in_progress("a") is None
    assert await store.get(room.sid) is room
    assert await store.count_in_progress() == 0
    assert [r.sid for r in await store.list(status="completed")] == [room.sid]


async def test_oldest_completed_rooms_are_forgotten_beyond_the_cap() -> None:
    store = MemoryRoomStore(max_completed=2)
    rooms = [new_room(f"r{i}", i) for i in range(3)]
    for i, room in enumerate(rooms):
        room.complete(now=10 + i)
        await store.save(room)
    assert [r.unique_name for r in await store.list()] == ["r2", "r1"]
    live = new_room("live", 20)
    await store.save(live)
    assert [r.unique_name for r in await store.list(status="in-progress")] == ["live"]
