"""What an object store really enforces on a pre-signed PUT, found out with scratch objects.

S3-compatible stores differ where it matters: AWS and SeaweedFS refuse a body
whose length, type or checksum differs from what was signed; moto checks no
signature and no checksum, and keeps a declared SHA-256 only beside
``x-amz-sdk-checksum-algorithm``; others verify ``Content-MD5`` but not
``x-amz-checksum-sha256``; a write-once server needs ``If-None-Match: *`` honoured.
Rather than assume, ``check_store`` tries each rule
once with a tiny object under ``{prefix}/.s3sign/`` (a name no run can take) and
deletes every object it wrote, and only those.

Used by ``s3sign serve`` (once at start, then in ``/v1/info``) and ``s3sign doctor``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
from collections.abc import Callable

from s3sign.keys import RESERVED_RUN_ID, run_prefix
from s3sign.protocol import StoreChecks
from s3sign.s3xml import s3_error
from s3sign.signing.presign import SignRequest
from s3sign.signing.store import ObjectStore, StoreError

_BODY = b"s3sign store check\n"
_OTHER = b"S3SIGN STORE CHECK\n"  # as long, other bytes
_TYPE = "text/plain"


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class _Scratch:
    """PUTs under one random folder, remembering what was stored so that it is deleted."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store = store
        self.folder = f"{run_prefix(prefix, RESERVED_RUN_ID)}check-{secrets.token_hex(8)}/"
        self.written: dict[str, str] = {}  # key -> the ETag its PUT got
        self.answer = ""  # the last PUT's status and S3 error code, to say why

    def put(
        self,
        name: str,
        body: bytes = _BODY,
        edit: Callable[[str, dict[str, str]], tuple[str, dict[str, str]]] | None = None,
        sha256: str | None = None,
        md5: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> bool | None:
        """Was the PUT refused (True), taken (False), or did the store fail (None)?"""
        key = self.folder + name
        request = SignRequest(
            self.store.bucket,
            key,
            size=len(_BODY),
            content_type=_TYPE,
            sha256=sha256,
            md5=md5,
            headers=self.store.rules.headers + headers,
        )
        response = self.store.send_signed(request, body, ok=None, edit=edit)
        error = s3_error(response.data)
        self.answer = f"{response.status} {error[0] if error else ''}".strip()
        if 200 <= response.status < 300:
            self.written[key] = response.headers.get("etag", "").strip('"')
            return False
        if 400 <= response.status < 500:
            return True
        return None

    def clean(self) -> None:
        for key, etag in self.written.items():
            # A scratch object of 19 bytes left by a failure: the next check uses another folder.
            with contextlib.suppress(StoreError):
                self.store.delete_if(key, etag)


def check_store(store: ObjectStore, prefix: str) -> StoreChecks:
    """Each rule tried once; ``StoreError`` when the store cannot take even a good PUT."""
    scratch = _Scratch(store, prefix)
    sha256 = _b64(hashlib.sha256(_BODY).digest())
    md5 = hashlib.md5(_BODY, usedforsecurity=False)
    try:
        if scratch.put("good", sha256=sha256) is not False:
            raise StoreError(f"the store refused a well-formed scratch PUT ({scratch.answer})")
        good = scratch.folder + "good"
        info = store.head(good)
        return StoreChecks(
            size=scratch.put("size", _BODY + b"!"),
            content_type=scratch.put("type", edit=_other_type),
            sha256=scratch.put("sha256", _OTHER, sha256=sha256),
            md5=scratch.put("md5", _OTHER, md5=_b64(md5.digest())),
            signature=scratch.put("signature", edit=_tampered),
            etag_is_md5=scratch.written[good] == md5.hexdigest(),
            keeps_sha256=info is not None and info.checksum == sha256,
            if_none_match=scratch.put("good", headers=(("If-None-Match", "*"),)),
        )
    finally:
        scratch.clean()


def _other_type(url: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    return url, {**headers, "Content-Type": "application/octet-stream"}


def _tampered(url: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    last = url[-1]
    return url[:-1] + ("0" if last != "0" else "1"), headers


def describe(checks: StoreChecks) -> str:
    """One line: what is enforced and what is not (for logs and ``doctor``)."""
    rules = {
        "size": checks.size,
        "content type": checks.content_type,
        "SHA-256": checks.sha256,
        "Content-MD5": checks.md5,
        "signature": checks.signature,
        "If-None-Match": checks.if_none_match,
    }
    enforced = [name for name, value in rules.items() if value]
    not_enforced = [name for name, value in rules.items() if value is False]
    unknown = [name for name, value in rules.items() if value is None]
    parts = [f"enforces {', '.join(enforced) or 'nothing'}"]
    if not_enforced:
        parts.append(f"not {', '.join(not_enforced)}")
    if unknown:
        parts.append(f"unknown: {', '.join(unknown)}")
    parts.append("ETag is the MD5" if checks.etag_is_md5 else "ETag is not the MD5")
    return "; ".join(parts)
