"""Browser-style uploads: a SigV4-signed POST policy with a size range.

A pre-signed PUT binds one exact size; a POST policy lets a browser form (or
``curl -F``) upload any body between ``--min-size`` and ``--max-size`` bytes,
of one content type or a family of them, to one key or under a prefix
(``${filename}``), until the policy expires. S3 checks every condition.

See "Browser-Based Uploads Using POST (AWS Signature Version 4)" in the S3
API reference.
"""

from __future__ import annotations

import base64
import hmac
import html
import json
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from s3sign.errors import UsageError
from s3sign.signing.addressing import check_bucket, check_key, locate_bucket
from s3sign.signing.presign import Presigner, check_content_type
from s3sign.signing.sigv4 import ALGORITHM, amz_date, signing_key
from s3sign.units import iso_utc

MAX_POST_SIZE = 5 * 1024**3  # S3's limit for one POST upload
FILENAME = "${filename}"


@dataclass(frozen=True)
class PostPolicy:
    bucket: str
    key: str  # may end in ${filename}: the uploaded file's name
    max_size: int
    min_size: int = 0
    content_type: str | None = None
    content_type_prefix: str | None = None
    expires: int = 900


@dataclass(frozen=True)
class PostForm:
    """POST a multipart/form-data body to ``url``: ``fields`` first, the file last."""

    url: str
    fields: dict[str, str]
    expires_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {"url": self.url, "fields": self.fields, "expiresAt": iso_utc(self.expires_at)}


def check_policy(policy: PostPolicy, *, strict_bucket: bool) -> None:
    """Refuse, with a hint, what S3 would refuse or what would leave the bucket open."""
    check_bucket(policy.bucket, strict=strict_bucket)
    check_key(policy.key.replace(FILENAME, "x"))
    if policy.key.count(FILENAME) > int(policy.key.endswith(FILENAME)):
        raise UsageError(f"{FILENAME} may only end the key", hint="like uploads/${filename}")
    if not 0 <= policy.min_size <= policy.max_size <= MAX_POST_SIZE:
        raise UsageError(
            f"size range {policy.min_size}..{policy.max_size} is not within 0..5GiB, low to high",
            hint="pass --max-size N (and --min-size M <= N)",
        )
    if policy.content_type and policy.content_type_prefix:
        raise UsageError(
            "give --content-type or --content-type-prefix, not both",
            hint="--content-type-prefix image/ allows any image type",
        )
    if policy.content_type:
        check_content_type(policy.content_type, "--content-type")


def sign_post(presigner: Presigner, policy: PostPolicy, now: datetime | None = None) -> PostForm:
    """The form's URL and fields, with the policy signed by ``presigner``'s credentials."""
    check_policy(policy, strict_bucket=presigner.endpoint.is_aws)
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    expires_at = moment + timedelta(seconds=policy.expires)
    credentials = presigner.credentials
    timestamp = amz_date(moment)
    date = timestamp[:8]
    credential = f"{credentials.access_key}/{date}/{presigner.region}/s3/aws4_request"
    fields: dict[str, str] = {"key": policy.key}
    conditions: list[object] = [{"bucket": policy.bucket}]
    if policy.key.endswith(FILENAME):
        conditions.append(["starts-with", "$key", policy.key[: -len(FILENAME)]])
    else:
        conditions.append({"key": policy.key})
    if policy.content_type:
        fields["Content-Type"] = policy.content_type
        conditions.append({"Content-Type": policy.content_type})
    elif policy.content_type_prefix is not None:
        conditions.append(["starts-with", "$Content-Type", policy.content_type_prefix])
    conditions.append(["content-length-range", policy.min_size, policy.max_size])
    fields.update(
        {
            "x-amz-algorithm": ALGORITHM,
            "x-amz-credential": credential,
            "x-amz-date": timestamp,
        }
    )
    if credentials.token:
        fields["x-amz-security-token"] = credentials.token
    conditions += [{name: value} for name, value in fields.items() if name.startswith("x-amz-")]
    document = {"expiration": _policy_time(expires_at), "conditions": conditions}
    encoded = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
    key = signing_key(credentials.secret_key, date, presigner.region, "s3")
    fields["policy"] = encoded
    fields["x-amz-signature"] = hmac.digest(key, encoded.encode(), "sha256").hex()
    url = locate_bucket(presigner.endpoint, policy.bucket, presigner.addressing).url
    return PostForm(url, fields, expires_at)


def render_post(form: PostForm, output: str, body_path: str | None = None) -> str:
    """``json``, ``curl`` (the fields, then the file) or ``html`` (a minimal form)."""
    if output == "json":
        return json.dumps(form.as_dict(), ensure_ascii=False) + "\n"
    if output == "curl":
        words = ["curl", "-fsS"]
        for name, value in form.fields.items():  # literally: -F would read "@x" as a file
            words += ["--form-string", f"{name}={value}"]
        words += ["-F", f"file=@{body_path or 'FILE'}", form.url]
        return " ".join(shlex.quote(word) for word in words) + "\n"
    if output == "html":
        inputs = "".join(
            f'  <input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">\n'
            for name, value in form.fields.items()
        )
        if "Content-Type" not in form.fields:
            inputs += '  <input type="text" name="Content-Type" placeholder="Content-Type">\n'
        return (
            f'<form action="{html.escape(form.url)}" method="post" enctype="multipart/form-data">\n'
            f"{inputs}"
            '  <input type="file" name="file">\n'
            '  <input type="submit" value="Upload">\n'
            "</form>\n"
        )
    raise UsageError(f"--post prints json, curl or html, not {output}", hint="-o json")


def _policy_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
