"""Subscribe Rules: which published tracks a group-room participant receives.

Twilio's model (the REST Track Subscriptions API, ``/v1/Rooms/{Room}/Participants/{Participant}
/SubscribeRules``, and the ``subscribe.rules`` of a client's ``connect``): an ordered list of
rules, each ``include`` or ``exclude``, matching tracks by ``all`` (alone) or by any of
``publisher`` (sid or identity), ``track`` (sid or name), ``kind`` and ``priority`` (all given
filters must match). The rules apply in order, starting from nothing subscribed: an ``include``
adds the tracks it matches, an ``exclude`` removes them, so a later rule wins (``[include all,
exclude kind=video]`` is every audio and data track).

Malformed rules are refused with Twilio's code 53215 (Invalid Subscribe Rule(s)), a REST code
outside twilio-video.js's table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from rtcroom.errors import TwilioError

__all__ = [
    "EXCLUDE_ALL",
    "INCLUDE_ALL",
    "INVALID_SUBSCRIBE_RULES",
    "MAX_RULES",
    "SubscribeRule",
    "parse_subscribe_rules",
    "subscribed",
]

INVALID_SUBSCRIBE_RULES = 53215
MAX_RULES = 20
KINDS = ("audio", "video", "data")
PRIORITIES = ("low", "standard", "high")
_FILTERS = ("publisher", "track", "kind", "priority")


@dataclass(frozen=True)
class SubscribeRule:
    type: str
    all: bool | None = None
    publisher: str | None = None
    track: str | None = None
    kind: str | None = None
    priority: str | None = None

    def matches(self, publisher_sid: str, identity: str, track_sid: str, name: str, kind: str,
                priority: str) -> bool:
        if self.all:
            return True
        return ((self.publisher is None or self.publisher in (publisher_sid, identity))
                and (self.track is None or self.track in (track_sid, name))
                and (self.kind is None or self.kind == kind)
                and (self.priority is None or self.priority == priority))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


INCLUDE_ALL = SubscribeRule(type="include", all=True)
EXCLUDE_ALL = SubscribeRule(type="exclude", all=True)


def _invalid(detail: str) -> TwilioError:
    return TwilioError(INVALID_SUBSCRIBE_RULES, f"Invalid Subscribe Rule(s): {detail}")


def _rule(raw: Any, i: int) -> SubscribeRule:
    if not isinstance(raw, dict):
        raise _invalid(f"rule {i} is not an object")
    unknown = set(raw) - {"type", "all", *_FILTERS}
    if unknown:
        raise _invalid(f"rule {i} has unknown field(s) {', '.join(sorted(unknown))}")
    kind = raw.get("type")
    if kind not in ("include", "exclude"):
        raise _invalid(f"rule {i} needs a type of 'include' or 'exclude', got {kind!r}")
    filters = {name: raw[name] for name in _FILTERS if raw.get(name) is not None}
    if "all" in raw and raw["all"] is not None:
        if raw["all"] is not True:
            raise _invalid(f"rule {i}: 'all' must be true, got {raw['all']!r}")
        if filters:
            raise _invalid(f"rule {i}: a rule with 'all' takes no other filter "
                           f"({', '.join(filters)})")
        return SubscribeRule(type=kind, all=True)
    if not filters:
        raise _invalid(f"rule {i} matches nothing: give 'all' or a filter "
                       f"({', '.join(_FILTERS)})")
    for name, value in filters.items():
        if not isinstance(value, str) or not value:
            raise _invalid(f"rule {i}: {name} must be a non-empty string, got {value!r}")
    if filters.get("kind", KINDS[0]) not in KINDS:
        raise _invalid(f"rule {i}: kind must be one of {', '.join(KINDS)}, "
                       f"got {filters['kind']!r}")
    if filters.get("priority", PRIORITIES[0]) not in PRIORITIES:
        raise _invalid(f"rule {i}: priority must be one of {', '.join(PRIORITIES)}, "
                       f"got {filters['priority']!r}")
    return SubscribeRule(type=kind, **filters)


def parse_subscribe_rules(raw: Any) -> list[SubscribeRule]:
    """Rules from their JSON form (a list, or a string holding one, as the REST ``Rules``
    parameter is); raises a 53215 TwilioError naming what is wrong."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise _invalid(f"Rules is not JSON ({exc})") from None
    if not isinstance(raw, list):
        raise _invalid("Rules must be a JSON array of rules")
    if not raw:
        raise _invalid("an empty set of rules is not allowed")
    if len(raw) > MAX_RULES:
        raise _invalid(f"{len(raw)} rules given, at most {MAX_RULES} are allowed")
    return [_rule(r, i) for i, r in enumerate(raw)]


def subscribed(rules: Iterable[SubscribeRule],
               tracks: Iterable[tuple[str, str, str, str, str, str]]) -> set[str]:
    """The sids of ``tracks`` — (publisher sid, identity, track sid, name, kind, priority) —
    that ``rules`` subscribe to."""
    candidates = list(tracks)
    chosen: set[str] = set()
    for rule in rules:
        hit = {t[2] for t in candidates if rule.matches(*t)}
        chosen = chosen | hit if rule.type == "include" else chosen - hit
    return chosen
