"""The room state machine with plain calls: no sockets, no timers."""

from __future__ import annotations

import pytest
from rtcroom import errors
from rtcroom.server.rooms import Room
from rtcroom.server.rooms.room import DEPARTED_KEPT
from rtcroom.signaling.messages import (
    ClientUpdate,
    Disconnected,
    Error,
    ParticipantState,
    PeerConnectionState,
    RoomState,
    SessionDescription,
    TrackState,
)

NOBODY = ParticipantState(revision=1)


def mic(track_id: str = "a1") -> TrackState:
    return TrackState(id=track_id, kind="audio", name="mic")


def room(kind: str = "peer-to-peer", max_participants: int = 10) -> Room:
    return Room(unique_name="r", type=kind, created_at=0.0, max_participants=max_participants,
                empty_timeout=60)


def messages_for(out: list, sid: str) -> list:
    return [o.message for o in out if o.participant_sid == sid]


def test_join_tells_the_newcomer_everything_and_the_others_about_it() -> None:
    r = room()
    alice, _ = r.join("alice", ParticipantState(1, [mic()]), now=1)
    bob, out = r.join("bob", NOBODY, now=2)
    [connected] = messages_for(out, bob.sid)
    assert isinstance(connected, RoomState) and connected.type == "connected"
    assert [p.identity for p in connected.participants or []] == ["alice"]
    assert [(t.sid, t.id) for t in connected.subscribed.tracks] == [
        (alice.tracks["a1"].sid, "a1")]
    [update] = messages_for(out, alice.sid)
    assert [p.identity for p in update.participants] == ["bob"]
    # one link each way, each offered by its publisher
    links = {(lk.publisher, lk.subscriber) for lk in r.links.values()}
    assert links == {(alice.sid, bob.sid), (bob.sid, alice.sid)}
    assert [pc.description.type for pc in update.peer_connections] == ["create-offer"]
    assert r.empty_since is None


def test_group_rooms_have_no_peer_to_peer_links() -> None:
    r = room("group")
    r.join("alice", NOBODY, now=1)
    bob, out = r.join("bob", NOBODY, now=2)
    assert r.links == {}
    assert messages_for(out, bob.sid)[0].peer_connections == []


def test_connections_offered_with_connect_are_closed_in_peer_to_peer_rooms() -> None:
    offer = PeerConnectionState(id="sdk-pc", description=SessionDescription(
        type="offer", revision=1, sdp="v=0\r\n"))
    r = room()
    r.join("alice", NOBODY, now=1)
    bob, out = r.join("bob", NOBODY, now=2, offered=[offer])
    [connected] = messages_for(out, bob.sid)
    closes = [pc for pc in connected.peer_connections if pc.description.type == "close"]
    assert [(pc.id, pc.description.revision) for pc in closes] == [("sdk-pc", 2)]
    # bob's own link to alice is still offered by him; the relay never reaches the closed id
    assert [pc.description.type for pc in connected.peer_connections
            if pc.id in r.links] == ["create-offer"]
    assert r.update(bob.sid, ClientUpdate(session=bob.session, peer_connections=[offer]),
                    now=3) == []
    g = room("group")
    carol, out = g.join("carol", NOBODY, now=1, offered=[offer])
    assert messages_for(out, carol.sid)[0].peer_connections == []


def test_synced_names_every_link_of_the_participant() -> None:
    r = room()
    r.join("alice", NOBODY, now=1)
    bob, _ = r.join("bob", NOBODY, now=2)
    r.suspend(bob.sid, now=3)
    [synced] = messages_for(r.resume(bob.sid, NOBODY, now=4), bob.sid)
    kinds = {pc.id: pc.description.type if pc.description else None
             for pc in synced.peer_connections}
    sending = next(lk.id for lk in r.links.values() if lk.publisher == bob.sid)
    receiving = next(lk.id for lk in r.links.values() if lk.subscriber == bob.sid)
    # re-offer where bob sends; the connection he receives on is kept, unchanged
    assert kinds == {sending: "create-offer", receiving: None}


def test_two_sdk_participants_share_one_link() -> None:
    r = room()
    a, _ = r.join("a", NOBODY, now=1, sends_on_every_connection=True)
    b, out = r.join("b", NOBODY, now=2, sends_on_every_connection=True)
    [link] = r.links.values()
    assert (link.publisher, link.subscriber) == (b.sid, a.sid)
    [connected] = messages_for(out, b.sid)
    assert [(pc.id, pc.description.type) for pc in connected.peer_connections] == [
        (link.id, "create-offer")]
    # with a participant that sends each track once, one link per direction again
    c, _ = r.join("c", NOBODY, now=3)
    assert len(r.links) == 1 + 2 + 2
    # the shared link relays both ways
    pc = PeerConnectionState(id=link.id, description=SessionDescription(
        type="offer", revision=3, sdp="v=0\r\n"))
    assert [o.participant_sid for o in r.update(a.sid, ClientUpdate(
        session=a.session, peer_connections=[pc]), now=4)] == [b.sid]
    assert c.sid not in (link.publisher, link.subscriber)


def test_relay_goes_only_to_the_other_end_of_the_link() -> None:
    r = room()
    alice, _ = r.join("alice", NOBODY, now=1)
    bob, _ = r.join("bob", NOBODY, now=2)
    carol, _ = r.join("carol", NOBODY, now=3)
    link = next(lk for lk in r.links.values() if lk.publisher == alice.sid
                and lk.subscriber == carol.sid)
    offer = PeerConnectionState(id=link.id, description=SessionDescription("offer", 1, "v=0"))
    out = r.update(alice.sid, ClientUpdate(session=alice.session, peer_connections=[offer]),
                   now=4)
    assert [o.participant_sid for o in out] == [carol.sid]
    # bob may not inject into a link that is not his
    assert r.update(bob.sid, ClientUpdate(session=bob.session, peer_connections=[offer]),
                    now=5) == []


def test_revisions_only_move_forward() -> None:
    r = room()
    alice, _ = r.join("alice", NOBODY, now=1)
    bob, _ = r.join("bob", NOBODY, now=2)
    out = r.update(bob.sid, ClientUpdate(bob.session, ParticipantState(3, [mic()])), now=3)
    seen = messages_for(out, alice.sid)[0].participants[0]
    assert [t.name for t in seen.tracks] == ["mic"]
    stale = r.update(bob.sid, ClientUpdate(bob.session, ParticipantState(2, [])), now=4)
    assert stale == [] and "a1" in bob.tracks
    sid = bob.tracks["a1"].sid
    r.update(bob.sid, ClientUpdate(bob.session, ParticipantState(4, [
        TrackState(id="a1", kind="audio", name="mic", enabled=False)])), now=5)
    assert bob.tracks["a1"].sid == sid and bob.tracks["a1"].enabled is False
    assert bob.revision > seen.revision


def test_duplicate_identity_and_limits() -> None:
    r = room(max_participants=2)
    first, _ = r.join("alice", NOBODY, now=1)
    second, out = r.join("alice", NOBODY, now=2)
    [error] = messages_for(out, first.sid)
    assert isinstance(error, Error) and error.code == 53205
    assert not first.active and second.active
    r.join("bob", NOBODY, now=3)
    with pytest.raises(errors.RoomMaxParticipantsExceededError):
        r.join("carol", NOBODY, now=4)


def test_leave_suspend_resume_complete() -> None:
    r = room()
    alice, _ = r.join("alice", NOBODY, now=1)
    bob, _ = r.join("bob", ParticipantState(1, [mic()]), now=2)
    out = r.suspend(bob.sid, now=3)
    assert messages_for(out, alice.sid)[0].participants[0].state == "reconnecting"
    out = r.resume(bob.sid, ParticipantState(1, [mic()]), now=4)
    synced = messages_for(out, bob.sid)[0]
    assert synced.type == "synced" and synced.session == bob.session
    assert messages_for(out, alice.sid)[0].participants[0].state == "connected"
    out = r.leave(bob.sid, now=5)
    update = messages_for(out, alice.sid)[0]
    assert update.participants[0].state == "disconnected"
    assert {pc.description.type for pc in update.peer_connections} == {"close"}
    assert r.links == {}
    out = r.kick(alice.sid, now=6)
    assert isinstance(messages_for(out, alice.sid)[0], Disconnected)
    assert r.empty_since == 6
    r2 = room()
    carol, _ = r2.join("carol", NOBODY, now=1)
    out = r2.complete(now=2)
    assert messages_for(out, carol.sid) == [Disconnected(status="completed")]
    assert r2.status == "completed" and r2.ended_at == 2
    with pytest.raises(errors.RoomCompletedError):
        r2.join("dave", NOBODY, now=3)


def test_a_room_keeps_the_most_recent_departed_participants_only() -> None:
    r = room("group")
    resident, _ = r.join("resident", NOBODY, now=0)
    left = []
    for n in range(DEPARTED_KEPT + 30):
        guest, _ = r.join(f"guest-{n}", ParticipantState(1, [mic()]), now=1 + n)
        r.leave(guest.sid, now=1.5 + n)
        left.append(guest.sid)
    assert len(r.participants) == 1 + DEPARTED_KEPT
    # The resident stays, with the latest departures; the earliest ones are forgotten.
    assert set(r.participants) == {resident.sid, *left[-DEPARTED_KEPT:]}
    assert all(not r.participants[sid].active for sid in left[-DEPARTED_KEPT:])
