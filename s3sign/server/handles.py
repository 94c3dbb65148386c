"""Upload handles: a multipart upload's id as the worker holds it, bound to its key.

S3 checks an upload id only against the key it is used with, and the server
signs part URLs, completes and aborts for any key of the token's run: given an
id as is, a worker could abort another file's upload (``aborted``, while that
upload stays open) or aim parts at it. So the worker never sees the bare id.
It gets ``s3u1.<id, base64url>.<tag>``, the tag an HMAC-SHA256 (truncated to
128 bits) of the key and the id under a key derived from the server secret;
parts, complete and abort take only a handle whose tag matches the key they
name. Replicas sharing the secret accept each other's handles; nothing is stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence

from s3sign.keys import PolicyError

PREFIX = "s3u1"
_SHAPE = re.compile(r"s3u1\.[A-Za-z0-9_-]{1,1400}\.[A-Za-z0-9_-]{22}")
INVALID = "invalid_upload_id"


class UploadHandles:
    def __init__(self, secret: bytes | Sequence[bytes]) -> None:
        """``secret``: the server's, or its secrets while they rotate (the first seals,
        each opens: an upload started before the rotation can still be finished)."""
        secrets = [secret] if isinstance(secret, bytes) else list(secret)
        # Their own keys: a handle's tag can never pass for a token's signature, or the reverse.
        self._keys = [
            hmac.new(each, b"s3sign upload handle v1", hashlib.sha256).digest() for each in secrets
        ]

    def seal(self, key: str, upload_id: str) -> str:
        """The handle a worker gets for the multipart upload ``upload_id`` of ``key``."""
        tag = self._tag(self._keys[0], key, upload_id)
        return f"{PREFIX}.{_b64(upload_id.encode())}.{_b64(tag)}"

    def open(self, key: str, handle: str) -> str:
        """The upload id inside ``handle``; ``PolicyError`` unless this server (or one with
        its secret) sealed it for ``key``."""
        if not _SHAPE.fullmatch(handle):
            raise PolicyError(INVALID, "not an upload handle this server gave out")
        _, packed, tag = handle.split(".")
        try:
            upload_id = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise PolicyError(INVALID, "not an upload handle this server gave out") from None
        tags = (_b64(self._tag(secret, key, upload_id)) for secret in self._keys)
        if not any(hmac.compare_digest(expected, tag) for expected in tags):
            raise PolicyError(INVALID, "this upload handle was not given out for this file")
        return upload_id

    @staticmethod
    def _tag(secret: bytes, key: str, upload_id: str) -> bytes:
        message = f"{key}\n{upload_id}".encode()
        return hmac.new(secret, message, hashlib.sha256).digest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
