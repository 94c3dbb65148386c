"""Backend protocol v1: the wire types, shared by the server and the push client.

JSON over HTTP, camelCase on the wire (``fileName``, ``fileSize``), snake_case
in Python. Requests are strict about types (``"fileSize": "12"`` is refused,
not coerced) and ignore fields they do not know, so that newer clients can
talk to older servers. Responses leave out fields that do not apply.

The types are plain frozen dataclasses, so that ``push`` runs without
pydantic (importing it and building models cost every push 0.15 s):

- the server validates and serialises them with pydantic, which reads
  ``__pydantic_config__`` (FastAPI does this for request bodies);
- the client uses ``to_wire`` and ``from_wire`` (``s3sign.codec``), a small strict codec
  of the same rules; a test holds the two to the same output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from s3sign.codec import WIRE_CONFIG

PROTOCOL_VERSION = 1
MAX_PARTS_PER_REQUEST = 1000
STORAGE_UNAVAILABLE = "storage_unavailable"  # the store failed for now: asking again may work


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
    if_none_match: bool | None = None  # a PUT with If-None-Match: * onto a stored key is refused

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
    overwrite: bool = True  # False: write-once, a stored file is never replaced (already_exists)
    max_run_bytes: int | None = None  # what one run may hold (a token may lower it); None: any
    max_run_files: int | None = None


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


# --- GET /v1/runs/{runId}/files ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file of a run, as the store lists it (``contentType``, ``sha256`` and
    ``checksumType`` only when asked for details: a HEAD each)."""

    __pydantic_config__ = WIRE_CONFIG
    file_name: str
    size: int
    etag: str
    last_modified: str | None = None
    content_type: str | None = None
    sha256: str | None = None  # the stored checksum: a single PUT's SHA-256, or a composite
    checksum_type: str | None = None  # COMPOSITE or FULL_OBJECT, where the store says


@dataclass(frozen=True, slots=True)
class FilesPage:
    """A page of a run's files, in key order; ``nextCursor`` asks for the next one."""

    __pydantic_config__ = WIRE_CONFIG
    files: list[StoredFile]
    next_cursor: str | None = None


# --- POST /v1/runs/{runId}/downloads ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DownloadFile:
    __pydantic_config__ = WIRE_CONFIG
    file_name: str


@dataclass(frozen=True, slots=True)
class DownloadsRequest:
    """``lookup: false``: URLs only, without a HEAD of each object (no size, ETag or
    checksum, no ``not_found``): the GET's own answer says what is stored, as it is signed
    with ``x-amz-checksum-mode: ENABLED``. For the many small files of a listed run."""

    __pydantic_config__ = WIRE_CONFIG
    files: list[DownloadFile]  # at least one: checked by the server
    lookup: bool = True


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """A file to fetch: a signed GET and what the stored object is (its size, ETag and
    checksum, to check the bytes against), or why not (``not_found``, a refused name)."""

    __pydantic_config__ = WIRE_CONFIG
    file_name: str
    status: Literal["ready", "not_found", "rejected"]
    key: str | None = None
    download: SignedUpload | None = None  # method GET
    size: int | None = None
    etag: str | None = None
    sha256: str | None = None
    checksum_type: str | None = None
    content_type: str | None = None
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class DownloadsResponse:
    __pydantic_config__ = WIRE_CONFIG
    files: list[DownloadResult]


# --- POST /v1/runs/{runId}/seal --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SealResponse:
    """The run takes no more writes, since ``sealed_at``."""

    __pydantic_config__ = WIRE_CONFIG
    run_id: str
    sealed_at: str


# --- POST /v1/revocations ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    """A CI system's OIDC ID token, for an s3sign token. ``run_id``: the run the caller
    means to use (refused unless the server's rule derives the same one); ``scopes``: fewer
    than the rule allows (by default all of them)."""

    __pydantic_config__ = WIRE_CONFIG
    token: str
    run_id: str | None = None
    scopes: list[str] | None = None


@dataclass(frozen=True, slots=True)
class ExchangeResponse:
    """An s3sign token for ``run_id``, allowing ``scopes`` until ``expires_at``."""

    __pydantic_config__ = WIRE_CONFIG
    token: str
    run_id: str
    scopes: list[str]
    expires_at: str


@dataclass(frozen=True, slots=True)
class RevokeRequest:
    """Revoke the token ``jti`` names, until ``until`` (Unix seconds: when it expires
    anyway; by default as long as any token or link may live)."""

    __pydantic_config__ = WIRE_CONFIG
    jti: str
    until: int | None = None


@dataclass(frozen=True, slots=True)
class RevokeResponse:
    """Every replica refuses the token (401 ``token_revoked``) until ``revoked_until``."""

    __pydantic_config__ = WIRE_CONFIG
    jti: str
    revoked_until: str
