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

import base64
import hashlib
import math
import types
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any, Literal, TypeVar, Union, cast, get_args, get_origin, get_type_hints

PROTOCOL_VERSION = 1
MAX_PARTS_PER_REQUEST = 1000
MAX_PARTS = 10_000  # S3's limit per multipart upload
STORAGE_UNAVAILABLE = "storage_unavailable"  # the store failed for now: asking again may work


def plan_parts(file_size: int, part_size: int) -> tuple[int, int]:
    """(part size, part count): ``part_size`` doubled until at most 10,000 parts.

    A pure function of its inputs, so every replica (and a client that knows
    the server's ``partSize``) plans the same parts.
    """
    while math.ceil(file_size / part_size) > MAX_PARTS:
        part_size *= 2
    return part_size, max(1, math.ceil(file_size / part_size))


def composite_sha256(part_digests: Sequence[str]) -> str:
    """S3's checksum of a multipart object whose parts carried SHA-256s (base64): the
    SHA-256 of the parts' digests, then ``-`` and the part count."""
    joined = b"".join(base64.b64decode(digest) for digest in part_digests)
    return f"{base64.b64encode(hashlib.sha256(joined).digest()).decode()}-{len(part_digests)}"


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
    # For a file that goes multipart: "sha256" asks for an upload whose every part is bound
    # to its SHA-256 (S3 refuses a part whose body differs). Ignored for a single PUT.
    part_checksum: Literal["sha256"] | None = None


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
    # "sha256" when the upload was created so: ask each part's URL with its SHA-256 (parts
    # request), and list them at completion. None: parts are bound to their length only.
    part_checksum: Literal["sha256"] | None = None


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
    # Optional, one per part number in the same order: base64 digests each part's URL is
    # bound to (x-amz-checksum-sha256, or Content-MD5).
    sha256: list[str] | None = None
    md5: list[str] | None = None


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
    sha256: str | None = None  # the part's base64 SHA-256: needed when its URL was bound to one


@dataclass(frozen=True, slots=True)
class CompleteFile:
    __pydantic_config__ = WIRE_CONFIG
    key: str
    file_size: int
    sha256: str | None = None
    upload_id: str | None = None
    parts: list[CompletedPart] | None = None
    # The ETag that the worker's own PUT got back: proof that a stored object is its upload,
    # without which the server never deletes a mismatched object (it keeps it and says so).
    etag: str | None = None


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
    # A multipart object uploaded with part checksums: S3's composite, the SHA-256 of the
    # parts' SHA-256s then "-" and the part count ("...=-64"), where the store reports it.
    parts_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class CompleteResponse:
    __pydantic_config__ = WIRE_CONFIG
    files: list[CompleteResult]


# --- POST /v1/runs/{runId}/uploads/status ------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusFile:
    """A local file to compare with what is stored under its name: the digests the worker
    has (base64, as in uploads; ``etag``: the ETag S3 would give it, hex MD5 or the
    multipart form ``HEX-N``). With none of them, the sizes alone are compared."""

    __pydantic_config__ = WIRE_CONFIG
    file_name: str
    file_size: int
    sha256: str | None = None
    parts_sha256: str | None = None  # the composite a multipart upload of it would get
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class StatusRequest:
    __pydantic_config__ = WIRE_CONFIG
    files: list[StatusFile]  # at least one: checked by the server


@dataclass(frozen=True, slots=True)
class StatusResult:
    """``same`` only when a checksum the store itself verified (or computed) matches, or
    when no digest was given and the sizes match; ``different`` also when sameness cannot
    be shown (``match`` is then absent); ``rejected`` for a name the policy refuses or a
    store that could not answer (``storage_unavailable``: ask again)."""

    __pydantic_config__ = WIRE_CONFIG
    file_name: str
    status: Literal["missing", "same", "different", "rejected"]
    key: str | None = None
    size: int | None = None
    etag: str | None = None
    sha256: str | None = None
    parts_sha256: str | None = None
    match: Literal["sha256", "partsSha256", "etag", "size"] | None = None  # what decided
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class StatusResponse:
    __pydantic_config__ = WIRE_CONFIG
    files: list[StatusResult]


# --- GET /v1/info ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreChecks:
    """What the object store was seen to enforce on a pre-signed PUT (a scratch object,
    deleted again), and what it reports. None: it could not be found out."""

    __pydantic_config__ = WIRE_CONFIG

    size: bool | None = None  # a body of another length than the signed one is refused
    content_type: bool | None = None  # another Content-Type than the signed one is refused
    sha256: bool | None = None  # a body unlike its signed x-amz-checksum-sha256 is refused
    md5: bool | None = None  # a body unlike its signed Content-MD5 is refused
    signature: bool | None = None  # a tampered signature is refused
    etag_is_md5: bool | None = None  # a single PUT's ETag is the MD5 of the bytes received
    keeps_sha256: bool | None = None  # HEAD reports the SHA-256 a PUT was bound to

    def strongest(self) -> Literal["sha256", "md5", "none"]:
        """The strongest checksum the store enforces, to bind into uploads."""
        if self.sha256:
            return "sha256"
        return "md5" if self.md5 else "none"


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
    store: StoreChecks | None = None  # left out while the store has not been checked


# --- POST /v1/runs/{runId}/uploads/abort -------------------------------------------------


@dataclass(frozen=True, slots=True)
class AbortRequest:
    """A multipart upload to abandon (``uploadId``), or a single PUT to take back (``etag``:
    the ETag that PUT got; the object is deleted only while it is still that upload)."""

    __pydantic_config__ = WIRE_CONFIG
    key: str
    upload_id: str | None = None  # one of the two: checked by the server
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class AbortResponse:
    __pydantic_config__ = WIRE_CONFIG
    key: str
    status: Literal["aborted", "kept"]  # kept: the stored object is not that upload
