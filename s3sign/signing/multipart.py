"""Multipart uploads by hand: start one and sign its parts, then complete or abort it.

``s3sign sign B K --multipart --size N`` creates the upload with local
credentials and prints its id and one signed PUT per part (each bound to its
exact length); any client uploads the parts (in any order, in parallel) and
keeps each part's ETag; ``--complete ID --etags FILE`` assembles the object,
``--abort ID`` discards the parts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from s3sign.codec import to_wire
from s3sign.errors import (
    CredentialsError,
    ExitCode,
    S3SignError,
    UnreachableError,
    UsageError,
)
from s3sign.protocol import SignedPart
from s3sign.s3limits import MAX_OBJECT_SIZE, MIN_PART_SIZE, plan_parts
from s3sign.signing.presign import Presigner, check_content_type, part_request
from s3sign.signing.store import ObjectStore, StoreError
from s3sign.units import iso_utc


def start(
    presigner: Presigner,
    store: ObjectStore,
    key: str,
    *,
    size: int,
    part_size: int,
    expires: int,
    content_type: str | None = None,
    now: datetime | None = None,
) -> dict[str, object]:
    """Create the upload and sign every part: the JSON document for the user."""
    if not 0 < size <= MAX_OBJECT_SIZE:
        raise UsageError(f"size {size} is not within 1 byte..5TiB", hint="pass --size BYTES")
    if part_size < MIN_PART_SIZE:
        raise UsageError(
            f"--part-size {part_size} is under 5 MiB, S3's smallest part",
            hint="--part-size 16MiB",
        )
    if content_type is not None:
        check_content_type(content_type, "--content-type")
    part_size, count = plan_parts(size, part_size)
    with _store_errors("starting the multipart upload"):
        upload_id = store.create_multipart(key, content_type)
    bucket = store.bucket
    parts = []
    for number in range(1, count + 1):
        request = part_request(bucket, key, upload_id, number, part_size, size, expires)
        signed = presigner.sign(request, now)
        part = SignedPart(
            number, signed.method, signed.url, dict(signed.headers), iso_utc(signed.expires_at)
        )
        parts.append(to_wire(part))
    return {
        "bucket": bucket,
        "key": key,
        "uploadId": upload_id,
        "size": size,
        "partSize": part_size,
        "parts": parts,
        "expiresAt": iso_utc(signed.expires_at),
    }


def complete(store: ObjectStore, key: str, upload_id: str, etags: str) -> str:
    """Assemble the parts listed in ``etags`` (the text of the file); the object's ETag."""
    parts = read_etags(etags)
    with _store_errors("completing the multipart upload"):
        return store.complete_multipart(key, upload_id, [(n, etag, None) for n, etag in parts])


def abort(store: ObjectStore, key: str, upload_id: str) -> None:
    with _store_errors("aborting the multipart upload"):
        store.abort_multipart(key, upload_id)


def read_etags(text: str) -> list[tuple[int, str]]:
    """Part numbers and ETags, sorted: a JSON list of ``{"partNumber", "etag"}``, a JSON
    object ``{"1": "etag", ...}``, or lines ``NUMBER ETAG``."""
    hint = 'give [{"partNumber": 1, "etag": "..."}, ...] or lines "1 ETAG"'
    stripped = text.strip()
    try:
        if stripped.startswith("["):
            pairs = [(int(p["partNumber"]), str(p["etag"])) for p in json.loads(stripped)]
        elif stripped.startswith("{"):
            pairs = [(int(n), str(e)) for n, e in json.loads(stripped).items()]
        else:
            pairs = [
                (int(number), etag)
                for number, etag in (line.split(None, 1) for line in stripped.splitlines() if line)
            ]
    except (ValueError, KeyError, TypeError):
        raise UsageError("the --etags file cannot be read", hint=hint) from None
    numbers = [number for number, _ in pairs]
    if not pairs or len(set(numbers)) != len(numbers) or min(numbers) < 1:
        raise UsageError("the --etags file must list each part once, from 1", hint=hint)
    return sorted((number, etag.strip().strip('"')) for number, etag in pairs)


@contextmanager
def _store_errors(doing: str) -> Iterator[None]:
    """The store's answer as a one-line error: refused credentials exit 4, the rest 1."""
    try:
        yield
    except StoreError as exc:
        message = f"{doing} failed: {exc}"
        if exc.code in ("AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId"):
            hint = "check the credentials and their permissions"
            raise CredentialsError(message, hint=hint) from None
        if exc.transient:
            raise UnreachableError(message) from None
        raise StorageRefused(message) from None


class StorageRefused(S3SignError):
    """The object store refused the request (exit 1)."""

    exit_code = ExitCode.SOME_FAILED
    default_hint = "check the bucket, the key and the upload id"
