"""Typed field access for wire dictionaries: every check names the field that was wrong.

Both ends parse untrusted JSON; these helpers are the only place where a field's presence and
type are checked, so a bad message is rejected with the same wording on the client and the
server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["MessageFormatError", "opt", "opt_list", "opt_obj", "req", "req_list", "req_obj"]


class MessageFormatError(ValueError):
    """A wire message is malformed; ``str()`` names the offending field."""


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object",
               list: "an array", float: "a number"}


def _check(where: str, key: str, value: Any, typ: type | tuple[type, ...]) -> Any:
    types = typ if isinstance(typ, tuple) else (typ,)
    # JSON has no separate boolean type from Python's point of view: True is an int.
    if isinstance(value, bool) and bool not in types:
        ok = False
    elif float in types and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    else:
        ok = isinstance(value, types)
    if not ok:
        wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        raise MessageFormatError(f"{where}.{key} must be {wanted}, got {type(value).__name__}")
    return value


def req(d: dict[str, Any], where: str, key: str, typ: type | tuple[type, ...]) -> Any:
    """``d[key]``, which must be present and of type ``typ``."""
    if key not in d or d[key] is None:
        raise MessageFormatError(f"{where}.{key} is required")
    return _check(where, key, d[key], typ)


def opt(d: dict[str, Any], where: str, key: str, typ: type | tuple[type, ...],
        default: Any = None) -> Any:
    """``d[key]`` if present (and not null), checked against ``typ``; else ``default``."""
    if d.get(key) is None:
        return default
    return _check(where, key, d[key], typ)


def req_obj(d: dict[str, Any], where: str, key: str, parse: Callable[[dict[str, Any], str], T]) -> T:
    """Parse the required nested object ``d[key]`` with ``parse(obj, path)``."""
    return parse(req(d, where, key, dict), f"{where}.{key}")


def opt_obj(d: dict[str, Any], where: str, key: str,
            parse: Callable[[dict[str, Any], str], T]) -> T | None:
    """Parse the optional nested object ``d[key]``, or None when absent."""
    value = opt(d, where, key, dict)
    return None if value is None else parse(value, f"{where}.{key}")


def _items(values: list[Any], where: str, key: str,
           parse: Callable[[dict[str, Any], str], T]) -> list[T]:
    out = []
    for i, item in enumerate(values):
        path = f"{where}.{key}[{i}]"
        if not isinstance(item, dict):
            raise MessageFormatError(f"{path} must be an object, got {type(item).__name__}")
        out.append(parse(item, path))
    return out


def req_list(d: dict[str, Any], where: str, key: str,
             parse: Callable[[dict[str, Any], str], T]) -> list[T]:
    """Parse the required array of objects ``d[key]``."""
    return _items(req(d, where, key, list), where, key, parse)


def opt_list(d: dict[str, Any], where: str, key: str,
             parse: Callable[[dict[str, Any], str], T]) -> list[T] | None:
    """Parse the optional array of objects ``d[key]``, or None when absent."""
    values = opt(d, where, key, list)
    return None if values is None else _items(values, where, key, parse)
