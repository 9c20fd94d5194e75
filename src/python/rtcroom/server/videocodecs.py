"""A group room's video codec list (Twilio's ``VideoCodecs``): the names, the server's default,
and how the SFU holds a publisher to it.

Twilio spells the codecs ``VP8`` and ``H264``; rtcroom accepts every video codec its SFU can
forward, spelled the same way (the subtype of its aiortc mime type: ``VP8``, ``H264``, and
``VP9`` where it is registered). Twilio sets the list on group rooms only; audio has no such
list (there is no ``AudioCodecs`` parameter), so audio m-lines are never filtered.

The list binds publishers: the SFU answers a video m-line with the listed codecs the
publisher offered, in the publisher's order (each with its RTX), and refuses an m-line that
offers none of them. Subscribers then only ever receive listed codecs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from aiortc.codecs import CODECS

__all__ = ["forwardable_video_codecs", "parse_video_codecs", "restrict_video_codecs"]


def forwardable_video_codecs() -> tuple[str, ...]:
    """The video codecs the server's SFU can forward, in its order of preference, as Twilio
    spells them (read when asked: a codec registered with aiortc later counts too)."""
    names: list[str] = []
    for codec in CODECS["video"]:
        name = codec.mimeType.split("/", 1)[1].upper()
        if name != "RTX" and name not in names:
            names.append(name)
    return tuple(names)


def parse_video_codecs(values: Iterable[str], where: str = "VideoCodecs") -> tuple[str, ...]:
    """``values`` checked against :func:`forwardable_video_codecs` (exact spelling, as
    Twilio's enum), duplicates dropped; ValueError naming the first bad value."""
    allowed = forwardable_video_codecs()
    out: list[str] = []
    for value in values:
        if value not in allowed:
            raise ValueError(f"{where}: {value!r} is not one of {', '.join(allowed)}")
        if value not in out:
            out.append(value)
    if not out:
        raise ValueError(f"{where}: give at least one of {', '.join(allowed)}")
    return tuple(out)


_RTPMAP = re.compile(r"a=rtpmap:(\d+) ([^/\s]+)/")
_APT = re.compile(r"a=fmtp:(\d+) .*\bapt=(\d+)")
_PT_LINE = re.compile(r"a=(?:rtpmap|fmtp|rtcp-fb):(\d+)[ \r]")


def restrict_video_codecs(sdp: str, allowed: Sequence[str]) -> tuple[str, dict[str, list[str]]]:
    """``sdp`` (an offer) with each video m-line keeping only the ``allowed`` codecs it lists,
    in its own order, and the RTX formats that repair them.

    An m-line with none of them is left as it is (aiortc refuses a whole description with an
    m-line it shares no codec with); it comes back in the second value, mid -> the codec
    names it offered, for the caller to refuse that m-line alone."""
    wanted = {name.lower() for name in allowed}
    head, *sections = sdp.split("\nm=")
    refused: dict[str, list[str]] = {}
    out = [head]
    for section in sections:
        if not section.startswith("video "):
            out.append(section)
            continue
        names = {pt: name for pt, name in _RTPMAP.findall(section)}
        keep = {pt for pt, name in names.items() if name.lower() in wanted}
        keep |= {pt for pt, apt in _APT.findall(section) if apt in keep}
        offered = [name for name in dict.fromkeys(names.values()) if name.lower() != "rtx"]
        if not any(names.get(pt, "rtx").lower() != "rtx" for pt in keep):
            mid = re.search(r"a=mid:(\S+)", section)
            if mid is not None:
                refused[mid.group(1)] = offered
            out.append(section)
            continue
        lines = section.split("\n")
        first, *formats = lines[0].rstrip("\r").split(" ")
        port_proto = formats[:2]
        kept_formats = [f for f in formats[2:] if f not in names or f in keep]
        ending = "\r" if lines[0].endswith("\r") else ""
        lines[0] = " ".join([first, *port_proto, *kept_formats]) + ending
        lines = [line for line in lines
                 if (m := _PT_LINE.match(line)) is None or m.group(1) in keep
                 or m.group(1) not in names]
        out.append("\n".join(lines))
    return "\nm=".join(out), refused
