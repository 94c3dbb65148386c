"""The bucket's own rules for every object s3sign stores: server-side encryption, storage
class and tags.

A bucket policy may refuse any PUT that does not ask for encryption with a given KMS
key, say, or does not carry a retention tag. The backend signs these headers into every
upload URL and multipart create (so a worker cannot leave them out: the signature would
not match) and sends them with its own writes (seals, revocations, the store check);
``complete`` then checks with its HEAD that the stored object has them. The header names
and values are S3's, as botocore sends ``ServerSideEncryption``, ``SSEKMSKeyId``,
``StorageClass`` and ``Tagging``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

SSE = "x-amz-server-side-encryption"
SSE_KMS_KEY = "x-amz-server-side-encryption-aws-kms-key-id"
STORAGE_CLASS = "x-amz-storage-class"
TAGGING = "x-amz-tagging"
TAG_COUNT = "x-amz-tagging-count"
RULE_HEADERS = (SSE, SSE_KMS_KEY, STORAGE_CLASS, TAG_COUNT)  # what a HEAD tells of them

ENCRYPTIONS = ("AES256", "aws:kms", "aws:kms:dsse")
# S3's storage classes an object can be read back from at once (pull, links, verify):
# GLACIER and DEEP_ARCHIVE need a restore first, so they are refused.
STORAGE_CLASSES = (
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "EXPRESS_ONEZONE",
)
MAX_TAGS = 10  # S3's limits on an object's tags
MAX_TAG_KEY, MAX_TAG_VALUE = 128, 256
# S3's characters for tags: letters, digits, spaces and + - = . _ : / @ (any script's letters)
_TAG_TEXT = re.compile(r"[\w +\-=.:/@]*")
_KMS_KEY = re.compile(r"[A-Za-z0-9:/_\-]{1,2048}")


@dataclass(frozen=True)
class ObjectRules:
    """What every stored object must have; the empty value asks for nothing."""

    sse: str = ""  # "", AES256, aws:kms or aws:kms:dsse
    kms_key_id: str = ""  # with aws:kms: a key id, key ARN, alias name or alias ARN
    storage_class: str = ""  # "": the bucket's default (STANDARD)
    tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.sse and self.sse not in ENCRYPTIONS:
            raise ValueError(f"{self.sse!r} is not one of {', '.join(ENCRYPTIONS)}")
        if self.kms_key_id and not self.sse.startswith("aws:kms"):
            raise ValueError("a KMS key id needs sse: aws:kms")
        if self.kms_key_id and not _KMS_KEY.fullmatch(self.kms_key_id):
            raise ValueError(f"{self.kms_key_id!r} is not a KMS key id, ARN or alias")
        if self.storage_class and self.storage_class not in STORAGE_CLASSES:
            raise ValueError(
                f"{self.storage_class!r} is not one of {', '.join(STORAGE_CLASSES)}"
                " (GLACIER and DEEP_ARCHIVE cannot be read without a restore)"
            )
        check_tags(self.tags)

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """The headers to sign into a PUT or a multipart create, and to send with it."""
        headers = []
        if self.sse:
            headers.append((SSE, self.sse))
        if self.kms_key_id:
            headers.append((SSE_KMS_KEY, self.kms_key_id))
        if self.storage_class:
            headers.append((STORAGE_CLASS, self.storage_class))
        if self.tags:
            headers.append((TAGGING, tagging(self.tags)))
        return tuple(headers)

    def missing(self, stored: Mapping[str, str]) -> str | None:
        """What a stored object (its HEAD's headers, names in lower case) lacks of these
        rules, said in a few words; None when it has them all."""
        sse = stored.get(SSE, "")
        if self.sse and sse != self.sse:
            return f"stored with encryption {sse or 'none'}, not {self.sse}"
        if self.kms_key_id and not _same_key(stored.get(SSE_KMS_KEY, ""), self.kms_key_id):
            return f"stored with another KMS key than {self.kms_key_id}"
        # S3 names no storage class for STANDARD
        storage_class = stored.get(STORAGE_CLASS) or "STANDARD"
        if self.storage_class and storage_class != self.storage_class:
            return f"stored in storage class {storage_class}, not {self.storage_class}"
        count = stored.get(TAG_COUNT, "0")
        if self.tags and count != str(len(self.tags)):
            return f"stored with {count} tags, not {len(self.tags)}"
        return None


def _same_key(stored: str, wanted: str) -> bool:
    """S3 answers with the key's ARN; an alias cannot be compared with it (any key then)."""
    if wanted.startswith("alias/") or ":alias/" in wanted:
        return bool(stored)
    return stored == wanted or stored.endswith(f":key/{wanted}")


def tagging(tags: tuple[tuple[str, str], ...]) -> str:
    """The ``x-amz-tagging`` value: the tags as a URL query (``team=ci&keep=30d``)."""
    return "&".join(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in tags)


def check_tags(tags: tuple[tuple[str, str], ...]) -> None:
    """S3's rules for an object's tags, or ``ValueError`` saying which is broken."""
    if len(tags) > MAX_TAGS:
        raise ValueError(f"{len(tags)} tags: S3 keeps at most {MAX_TAGS} on an object")
    seen = set()
    for key, value in tags:
        if not 1 <= len(key) <= MAX_TAG_KEY or not _TAG_TEXT.fullmatch(key):
            raise ValueError(
                f"tag key {key!r}: 1 to {MAX_TAG_KEY} letters, digits, spaces or + - = . _ : / @"
            )
        if len(value) > MAX_TAG_VALUE or not _TAG_TEXT.fullmatch(value):
            raise ValueError(
                f"tag {key!r}: its value is up to {MAX_TAG_VALUE} letters, digits, spaces"
                " or + - = . _ : / @"
            )
        if key.startswith("aws:"):
            raise ValueError(f"tag key {key!r}: keys starting aws: are AWS's own")
        if key in seen:
            raise ValueError(f"tag key {key!r} is given twice")
        seen.add(key)


def parse_tags(value: object) -> tuple[tuple[str, str], ...]:
    """Tags from YAML (a mapping) or the environment (``team=ci&keep=30d``, S3's own form)."""
    if isinstance(value, Mapping):
        pairs = [(str(key), "" if item is None else str(item)) for key, item in value.items()]
    elif isinstance(value, str):
        pairs = []
        for pair in filter(None, value.split("&")):
            key, equals, item = pair.partition("=")
            if not equals:
                raise ValueError(f"{pair!r} is not key=value (tags are team=ci&keep=30d)")
            pairs.append((key.strip(), item.strip()))
    else:
        raise ValueError(f"{value!r} is not a mapping of tags or team=ci&keep=30d")
    tags = tuple(pairs)
    check_tags(tags)
    return tags


NO_RULES = ObjectRules()
