"""The wire codec of protocol v1: camelCase on the wire, snake_case in Python, strict
about types (``"fileSize": "12"`` is refused, not coerced), lenient about fields it does not
know. ``to_wire`` and ``from_wire`` keep the worker free of pydantic; the server reads the
same rules (``WIRE_CONFIG``) through pydantic, and a test holds the two to the same output.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, Literal, TypeVar, Union, cast, get_args, get_origin, get_type_hints


def camel(name: str) -> str:
    """``file_size`` -> ``fileSize``: the wire name of a field."""
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


# Read by pydantic (server side) from each type's ``__pydantic_config__``.
WIRE_CONFIG: dict[str, Any] = {
    "alias_generator": camel,
    "populate_by_name": True,
    "strict": True,
    "extra": "ignore",
}
W = TypeVar("W")


class WireError(ValueError):
    """A document that does not match its wire type."""


def to_wire(value: Any) -> Any:
    """A wire type as JSON-ready data: camelCase names, fields that are None left out."""
    names = _WIRE_NAMES.get(type(value))
    if names is None:
        if isinstance(value, list):
            return [to_wire(item) for item in value]
        if not is_dataclass(value) or isinstance(value, type):
            return value
        names = _WIRE_NAMES[type(value)] = [(f.name, camel(f.name)) for f in fields(value)]
    return {
        wire_name: to_wire(item)
        for name, wire_name in names
        if (item := getattr(value, name)) is not None
    }


_WIRE_NAMES: dict[type, list[tuple[str, str]]] = {}


def from_wire(kind: type[W], data: Any) -> W:
    """``data`` (parsed JSON) as ``kind``; ``WireError`` naming the field when it does not fit.

    The rules pydantic applies on the server: exact types (no ``"12"`` for 12),
    camelCase or snake_case names, unknown fields ignored. Each type's decoder
    is worked out once: a backend answer holds hundreds of files.
    """
    try:
        return cast(W, _decoder(kind)(data))
    except _Mismatch as exc:
        path = "".join(reversed(exc.path)).lstrip(".")
        raise WireError(f"{path or kind.__name__}: {exc.problem}") from None


class _Mismatch(Exception):
    """A value that does not fit; ``path`` grows, innermost first, on the way out."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []

    def at(self, segment: str) -> _Mismatch:
        self.path.append(segment)
        return self


Decoder = Callable[[Any], Any]
_DECODERS: dict[Any, Decoder] = {}


def _decoder(hint: Any) -> Decoder:
    """A function that checks and converts one JSON value of type ``hint``."""
    decoder = _DECODERS.get(hint)
    if decoder is None:
        decoder = _DECODERS[hint] = _make_decoder(hint)
    return decoder


def _make_decoder(hint: Any) -> Decoder:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _optional(_decoder(inner))
    if origin is list:
        return _list_of(_decoder(args[0]))
    if origin is dict:
        return _strings_by_name
    if origin is Literal:
        return _one_of(args)
    if is_dataclass(hint):
        return _object_of(hint)
    return {int: _integer, str: _string, bool: _boolean}[hint]  # the only scalars on the wire


def _optional(inner: Decoder) -> Decoder:
    return lambda value: None if value is None else inner(value)


def _list_of(inner: Decoder) -> Decoder:
    def decode(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise _Mismatch("expected a list")
        items = []
        for index, item in enumerate(value):
            try:
                items.append(inner(item))
            except _Mismatch as exc:
                raise exc.at(f"[{index}]") from None
        return items

    return decode


def _object_of(kind: Any) -> Decoder:
    hints = get_type_hints(kind)
    plan = [
        (field.name, camel(field.name), _decoder(hints[field.name]), field.default is MISSING)
        for field in fields(kind)
    ]

    def decode(data: Any) -> Any:
        if not isinstance(data, dict):
            raise _Mismatch("expected an object")
        values = {}
        for name, wire_name, convert, required in plan:
            if wire_name in data:
                value = data[wire_name]
            elif name in data:
                value = data[name]
            elif required:
                raise _Mismatch("missing").at(f".{wire_name}")
            else:
                continue
            try:
                values[name] = convert(value)
            except _Mismatch as exc:
                raise exc.at(f".{wire_name}") from None
        return kind(**values)

    return decode


def _one_of(allowed: tuple[Any, ...]) -> Decoder:
    def decode(value: Any) -> Any:
        if value not in allowed:
            raise _Mismatch(f"expected one of {', '.join(map(repr, allowed))}")
        return value

    return decode


def _strings_by_name(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _Mismatch("expected an object of strings")
    return dict(value)


def _integer(value: Any) -> int:
    if type(value) is not int:  # not a bool either
        raise _Mismatch("expected an integer")
    return value


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _Mismatch("expected true or false")
    return value


def _string(value: Any) -> str:
    if type(value) is not str:
        raise _Mismatch("expected a string")
    return value
