"""Backend protocol v1: the wire types, shared by the server and the push client.

JSON over HTTP, camelCase on the wire (``fileName``, ``fileSize``), snake_case
in Python. Requests are strict about types (``"fileSize": "12"`` is refused,
not coerced) and ignore fields they do not know, so that newer clients can
talk to older servers. Responses leave out fields that do not apply.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

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


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )

    def wire(self) -> dict[str, object]:
        """The JSON-ready dict, camelCase, without fields that do not apply."""
        return self.model_dump(by_alias=True, exclude_none=True)

    def wire_json(self) -> str:
        """The same as JSON text (faster than ``json.dumps(wire())``)."""
        return self.model_dump_json(by_alias=True, exclude_none=True)


class ProtocolError(Exception):
    """A refused request: the HTTP status and the protocol error code to answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ErrorInfo(WireModel):
    code: str
    message: str


class ErrorResponse(WireModel):
    """Every non-2xx answer: ``{"error": {"code": "...", "message": "..."}}``."""

    error: ErrorInfo


# --- POST /v1/runs/{runId}/uploads -------------------------------------------------------


class FileSpec(WireModel):
    file_name: StrictStr
    file_size: StrictInt
    content_type: StrictStr | None = None
    sha256: StrictStr | None = None  # base64 of the SHA-256 of the whole file
    md5: StrictStr | None = None  # base64 of the MD5, for stores without SHA-256 checks


class CreateUploadsRequest(WireModel):
    files: list[FileSpec] = Field(min_length=1)


class SignedUpload(WireModel):
    """Send ``method`` to ``url`` with exactly ``headers``, before ``expiresAt``."""

    method: str
    url: str
    headers: dict[str, str]
    expires_at: str


class MultipartPlan(WireModel):
    upload_id: str
    part_size: int
    part_count: int


class FileResult(WireModel):
    file_name: str
    status: Literal["ready", "rejected"]
    key: str | None = None
    upload: SignedUpload | None = None
    multipart: MultipartPlan | None = None
    error: ErrorInfo | None = None


class CreateUploadsResponse(WireModel):
    files: list[FileResult]


# --- POST /v1/runs/{runId}/uploads/parts -------------------------------------------------


class PartsRequest(WireModel):
    key: StrictStr
    upload_id: StrictStr
    file_size: StrictInt
    part_numbers: list[StrictInt] = Field(min_length=1, max_length=MAX_PARTS_PER_REQUEST)


class SignedPart(WireModel):
    part_number: int
    method: str
    url: str
    headers: dict[str, str]
    expires_at: str


class PartsResponse(WireModel):
    parts: list[SignedPart]


# --- POST /v1/runs/{runId}/uploads/complete ----------------------------------------------


class CompletedPart(WireModel):
    part_number: StrictInt
    etag: StrictStr


class CompleteFile(WireModel):
    key: StrictStr
    file_size: StrictInt
    sha256: StrictStr | None = None
    upload_id: StrictStr | None = None
    parts: list[CompletedPart] | None = None


class CompleteRequest(WireModel):
    files: list[CompleteFile] = Field(min_length=1)


class CompleteResult(WireModel):
    key: str
    status: Literal["complete", "failed"]
    size: int | None = None
    etag: str | None = None
    sha256: str | None = None  # the stored whole-object SHA-256, where the store reports one
    error: ErrorInfo | None = None


class CompleteResponse(WireModel):
    files: list[CompleteResult]


# --- GET /v1/info ------------------------------------------------------------------------


class ServerInfo(WireModel):
    """What a client may plan with: where keys go and the limits (no auth needed)."""

    protocol: int
    key_prefix: str
    max_file_size: int
    max_files_per_request: int
    multipart_threshold: int
    part_size: int


# --- POST /v1/runs/{runId}/uploads/abort -------------------------------------------------


class AbortRequest(WireModel):
    key: StrictStr
    upload_id: StrictStr


class AbortResponse(WireModel):
    key: str
    status: Literal["aborted"]
