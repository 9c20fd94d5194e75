"""The little SDP reading the room protocol needs beyond aiortc: which track an m-line carries."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["description_problem", "inactive_mids", "ip_candidates_only", "is_ip_candidate",
           "msid_track_ids", "sending_mids"]


def msid_track_ids(sdp: str) -> dict[str, str]:
    """mid -> the track id of the m-line's ``a=msid:<stream> <track>`` in ``sdp``.

    The room protocol names a track by that id (``subscribed`` maps track sids to it). aiortc
    exposes it as the remote track's id only when the stream is listed in ``a=msid-semantic``,
    which browsers leave empty, so it is read here."""
    out: dict[str, str] = {}
    for section in sdp.split("\nm=")[1:]:
        mid = msid = None
        for line in section.splitlines():
            if line.startswith("a=mid:"):
                mid = line[len("a=mid:"):].strip()
            elif line.startswith("a=msid:"):
                parts = line[len("a=msid:"):].split()
                msid = parts[1] if len(parts) > 1 else None
        if mid is not None and msid is not None:
            out[mid] = msid
    return out


def inactive_mids(sdp: str) -> set[str]:
    """The mids of the m-lines ``sdp`` marks ``a=inactive`` (a sender that stopped for good:
    aiortc cannot remove an m-line, so it is left inactive)."""
    out: set[str] = set()
    for section in sdp.split("\nm=")[1:]:
        lines = [line.strip() for line in section.splitlines()]
        mid = next((line[len("a=mid:"):] for line in lines if line.startswith("a=mid:")), None)
        if mid is not None and "a=inactive" in lines:
            out.add(mid)
    return out


def sending_mids(sdp: str) -> set[str]:
    """The mids of the m-lines on which ``sdp``'s author sends (``a=sendrecv``, ``a=sendonly``,
    or no direction, which means sendrecv)."""
    out: set[str] = set()
    for section in sdp.split("\nm=")[1:]:
        lines = [line.strip() for line in section.splitlines()]
        mid = next((line[len("a=mid:"):] for line in lines if line.startswith("a=mid:")), None)
        if mid is not None and not {"a=recvonly", "a=inactive"} & set(lines):
            out.add(mid)
    return out


def is_ip_candidate(candidate: str) -> bool:
    """Whether an ICE candidate (``candidate:...`` or its value) gives an IP address.

    The server never resolves a name a client chose: a hostname would be looked up in aioice's
    send path (blocking the event loop, and querying whatever DNS the client points it at), an
    mDNS ``.local`` name would be queried on the LAN. Such a client is still reached: it checks
    the server's own candidates, and its address is learnt from those (peer-reflexive)."""
    fields = candidate.removeprefix("a=").removeprefix("candidate:").split()
    if len(fields) < 6:
        return False
    try:
        ipaddress.ip_address(fields[4])
    except ValueError:
        return False
    return True


def ip_candidates_only(sdp: str) -> str:
    """``sdp`` without the ``a=candidate`` lines :func:`is_ip_candidate` refuses."""
    lines = sdp.split("\n")
    kept = [line for line in lines
            if not line.startswith("a=candidate:") or is_ip_candidate(line.strip())]
    return sdp if len(kept) == len(lines) else "\n".join(kept)


def description_problem(sdp: str, known_mids: Iterable[str] = ()) -> str | None:
    """What in ``sdp`` would break aiortc after it accepted it, or None.

    aiortc's parser takes some descriptions it cannot use, and fails later in a background task
    (a connection that can then not even be closed): an m-line with several ``a=mid``, a BUNDLE
    group naming a mid no m-line has (its m-lines are moved onto that mid's transport: none), or
    an m-line in use with no DTLS fingerprint, at its level or the session's, or one of
    ``known_mids`` (those negotiated before) missing: m-lines are never removed."""
    session, *sections = sdp.split("\nm=")
    session_lines = session.splitlines()
    session_fingerprint = any(line.startswith("a=fingerprint:") for line in session_lines)
    mids = set()
    for section in sections:
        lines = section.splitlines()
        found = [line[len("a=mid:"):].strip() for line in lines if line.startswith("a=mid:")]
        if len(found) > 1:
            return f"an m-line has {len(found)} a=mid lines: {', '.join(found)}"
        mids.update(found)
        port = lines[0].split()[1:2] if lines else []
        in_use = port != ["0"]
        if in_use and not session_fingerprint and not any(
                line.startswith("a=fingerprint:") for line in lines):
            return f"m-line {found[0] if found else '(no mid)'} has no a=fingerprint"
    gone = [mid for mid in known_mids if mid not in mids]
    if gone:
        return f"m-lines negotiated before are missing: {', '.join(gone)}"
    for line in session_lines:
        if line.startswith("a=group:BUNDLE"):
            missing = [mid for mid in line[len("a=group:BUNDLE"):].split() if mid not in mids]
            if missing:
                return f"a=group:BUNDLE names mids no m-line has: {', '.join(missing)}"
    return None
