"""What the server refuses before it signs or asks the store anything: run ids, keys
outside the run, sizes, file counts, checksums that are not digests, content types that
cannot be a header, and upload ids or ETags that S3 never hands out. Each refusal is a
``ProtocolError`` (the whole request) or a ``PolicyError`` (one file)."""

from __future__ import annotations

import re

from s3sign.digests import guess_content_type
from s3sign.errors import UsageError
from s3sign.keys import PolicyError, check_run_id, file_name_in_run
from s3sign.protocol import FileSpec, ProtocolError
from s3sign.signing.presign import check_content_type, is_base64_digest

_UPLOAD_ID = re.compile(r"[\x21-\x7e]{1,1024}")  # printable ASCII, no spaces: ids and ETags


def check_run(run_id: str) -> None:
    try:
        check_run_id(run_id)
    except PolicyError as exc:
        raise ProtocolError(400, exc.code, exc.message) from None


def check_count(count: int, limit: int) -> None:
    if count > limit:
        raise ProtocolError(422, "too_many_files", f"{count} files in one request; at most {limit}")


def check_size(size: int, limit: int) -> None:
    if size < 0:
        raise PolicyError("invalid_size", "fileSize must be 0 or more")
    if size > limit:
        raise PolicyError("too_large", f"{size} bytes is over this server's limit of {limit}")


def checked_spec(spec: FileSpec, max_size: int) -> str:
    """Refuse a file whose size, checksums or content type will not do; its content type."""
    check_size(spec.file_size, max_size)
    if spec.sha256 is not None and not is_base64_digest(spec.sha256, 32):
        raise PolicyError("invalid_checksum", "sha256 must be the base64 of 32 bytes")
    if spec.md5 is not None and not is_base64_digest(spec.md5, 16):
        raise PolicyError("invalid_checksum", "md5 must be the base64 of 16 bytes")
    if spec.sha256 is not None and spec.md5 is not None:
        raise PolicyError("invalid_checksum", "give sha256 or md5, not both")
    content_type = spec.content_type or guess_content_type(spec.file_name)
    try:  # on every path: a multipart upload's type goes to S3 in a header, too
        check_content_type(content_type)
    except UsageError as exc:
        raise PolicyError("invalid_content_type", exc.message) from None
    return content_type


def check_upload_id(upload_id: str | None) -> None:
    if upload_id is not None and not _UPLOAD_ID.fullmatch(upload_id):
        raise ProtocolError(422, "invalid_upload_id", "not an uploadId or ETag S3 hands out")


def check_key(key_prefix: str, run_id: str, key: str) -> None:
    try:
        file_name_in_run(key_prefix, run_id, key)
    except PolicyError as exc:
        status = 403 if exc.code == "key_outside_run" else 422
        raise ProtocolError(status, exc.code, exc.message) from None
