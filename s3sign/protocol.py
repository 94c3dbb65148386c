"""Backend protocol v1: the wire types, shared by the server and the push client.

JSON over HTTP, camelCase on the wire (``fileName``, ``fileSize``), snake_case
in Python. Requests are strict about types (``"fileSize": "12"`` is refused,
not coerced) and ignore fields they do not know, so that newer clients can
talk to older servers. Responses leave out fields that do not apply.

The types are plain frozen dataclasses, so that ``push`` runs without
pydantic (importing it and building models cost every push 0.15 s):

- the server validates and serialises them with pydantic, which reads
  ``__pydantic_config__`` (FastAPI does this for request bodies);
- the client uses :func:`to_wire` and :func:`from_wire`, a small strict codec
  of the same rules; a test holds the two to the same output.
"""

from __future__ import annotations

import math
import types
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

PROTOCOL_VERSION = 1
MAX_PARTS_PER_REQUEST = 1000
MAX_PARTS = 10_000  # S3's limit per multipart upload
STORAGE_UNAVAILABLE = "storage_unavailable"  # complete failed for now: asking again may work


def plan_parts(file_size: int, part_size: int) -> tuple[int, int]:
    """(part size, part count): ``part_size`` doubled until at most 10,000 parts.

    A pure function of its inputs, so every replica (and a client that knows
    the server's ``partSize``) plans the same parts.
    """
    while math.ceil(file_size / part_size) > MAX_PARTS:
        part_size *= 2
    return part_size, max(1, math.ceil(file_size / part_size))


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
    if is_dataclass(value) and not isinstance(value, type):
        return {
            camel(field.name): to_wire(item)
            for field in fields(value)
            if (item := getattr(value, field.name)) is not None
        }
    if isinstance(value, list):
        return [to_wire(item) for item in value]
    return value


def from_wire(kind: type[W], data: Any, where: str = "") -> W:
    """``data`` (parsed JSON) as ``kind``; ``WireError`` naming the field when it does not fit.

    The rules pydantic applies on the server: exact types (no ``"12"`` for 12),
    camelCase or snake_case names, unknown fields ignored.
    """
    if not isinstance(data, dict):
        raise WireError(f"{where or kind.__name__}: expected an object")
    values = {}
    for name, wire_name, hint, required in _fields(kind):
        here = f"{where}.{wire_name}" if where else wire_name
        if wire_name in data:
            values[name] = _convert(hint, data[wire_name], here)
        elif name in data:
            values[name] = _convert(hint, data[name], here)
        elif required:
            raise WireError(f"{here}: missing")
    return kind(**values)


_FIELDS: dict[type, list[tuple[str, str, Any, bool]]] = {}


def _fields(kind: type) -> list[tuple[str, str, Any, bool]]:
    """(name, wire name, type, required) of each field of ``kind``, worked out once."""
    if kind not in _FIELDS:
        hints = get_type_hints(kind)
        _FIELDS[kind] = [
            (field.name, camel(field.name), hints[field.name], field.default is MISSING)
            for field in fields(kind)
        ]
    return _FIELDS[kind]


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(hint):
            return None
        (inner,) = [arg for arg in get_args(hint) if arg is not type(None)]
        return _convert(inner, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise WireError(f"{where}: expected a list")
        (inner,) = get_args(hint)
        return [_convert(inner, item, f"{where}[{index}]") for index, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise WireError(f"{where}: expected an object of strings")
        return dict(value)
    if is_dataclass(hint):
        return from_wire(hint, value, where)  # type: ignore[arg-type]
    _check_scalar(hint, origin, value, where)
    return value


def _check_scalar(hint: Any, origin: Any, value: Any, where: str) -> None:
    if origin is Literal and value not in get_args(hint):
        raise WireError(f"{where}: expected one of {', '.join(map(repr, get_args(hint)))}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise WireError(f"{where}: expected an integer")
    if hint is str and not isinstance(value, str):
        raise WireError(f"{where}: expected a string")


class ProtocolError(Exception):
    """A refused request: the HTTP status and the protocol error code to answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    __pydantic_config__ = WIRE_CONFIG
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """Every non-2xx answer: ``{"error": {"code": "...", "message": "..."}}``."""

    __pydantic_config__ = WIRE_CONFIG

    error: ErrorInfo


# --- POST /v1/runs/{runId}/uploads -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileSpec:
    __pydantic_config__ = WIRE_CONFIG
    file_name: str
    file_size: int
    content_type: str | None = None
    sha256: str | None = None  # base64 of the SHA-256 of the whole file
    md5: str | None = None  # base64 of the MD5, for stores without SHA-256 checks


@dataclass(frozen=True, slots=True)
class CreateUploadsRequest:
    __pydantic_config__ = WIRE_CONFIG
    files: list[FileSpec]  # at least one: checked by the server


@dataclass(frozen=True, slots=True)
class SignedUpload:
    """Send ``method`` to ``url`` with exactly ``headers``, before ``expiresAt``."""

    __pydantic_config__ = WIRE_CONFIG

    method: str
    url: str
    headers: dict[str, str]
    expires_at: str


@dataclass(frozen=True, slots=True)
class MultipartPlan:
    __pydantic_config__ = WIRE_CONFIG
    upload_id: str
    part_size: int
    part_count: int


@dataclass(frozen=True, slots=True)
class FileResult:
    __pydantic_config__ = WIRE_CONFIG
    file_name: str
    status: Literal["ready", "rejected"]
    key: str | None = None
    upload: SignedUpload | None = None
    multipart: MultipartPlan | None = None
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class CreateUploadsResponse:
    __pydantic_config__ = WIRE_CONFIG
    files: list[FileResult]


# --- POST /v1/runs/{runId}/uploads/parts -------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartsRequest:
    __pydantic_config__ = WIRE_CONFIG
    key: str
    upload_id: str
    file_size: int
    part_numbers: list[int]  # 1 to MAX_PARTS_PER_REQUEST: checked by the server


@dataclass(frozen=True, slots=True)
class SignedPart:
    __pydantic_config__ = WIRE_CONFIG
    part_number: int
    method: str
    url: str
    headers: dict[str, str]
    expires_at: str


@dataclass(frozen=True, slots=True)
class PartsResponse:
    __pydantic_config__ = WIRE_CONFIG
    parts: list[SignedPart]


# --- POST /v1/runs/{runId}/uploads/complete ----------------------------------------------


@dataclass(frozen=True, slots=True)
class CompletedPart:
    __pydantic_config__ = WIRE_CONFIG
    part_number: int
    etag: str


@dataclass(frozen=True, slots=True)
class CompleteFile:
    __pydantic_config__ = WIRE_CONFIG
    key: str
    file_size: int
    sha256: str | None = None
    upload_id: str | None = None
    parts: list[CompletedPart] | None = None


@dataclass(frozen=True, slots=True)
class CompleteRequest:
    __pydantic_config__ = WIRE_CONFIG
    files: list[CompleteFile]  # at least one: checked by the server


@dataclass(frozen=True, slots=True)
class CompleteResult:
    __pydantic_config__ = WIRE_CONFIG
    key: str
    status: Literal["complete", "failed"]
    size: int | None = None
    etag: str | None = None
    sha256: str | None = None  # the stored whole-object SHA-256, where the store reports one
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class CompleteResponse:
    __pydantic_config__ = WIRE_CONFIG
    files: list[CompleteResult]


# --- GET /v1/info ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What a client may plan with: where keys go and the limits (no auth needed)."""

    __pydantic_config__ = WIRE_CONFIG

    protocol: int
    key_prefix: str
    max_file_size: int
    max_files_per_request: int
    multipart_threshold: int
    part_size: int


# --- POST /v1/runs/{runId}/uploads/abort -------------------------------------------------


@dataclass(frozen=True, slots=True)
class AbortRequest:
    __pydantic_config__ = WIRE_CONFIG
    key: str
    upload_id: str


@dataclass(frozen=True, slots=True)
class AbortResponse:
    __pydantic_config__ = WIRE_CONFIG
    key: str
    status: Literal["aborted"]
