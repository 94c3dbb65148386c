"""The modes of ``s3sign sign`` beyond one URL: ``--batch`` (JSON Lines in, JSON Lines out),
``--post`` (a POST policy) and a multipart upload signed by hand (``--multipart``,
``--complete``, ``--abort``). Each takes the flags that belong to it, nothing more.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import typer

from s3sign.cli.options import CliState, OutputChoice
from s3sign.config import Settings
from s3sign.errors import ExitCode, UsageError
from s3sign.signing.presign import Method, Presigner, cap_expiry, check_content_type
from s3sign.units import format_duration, parse_size


def refuse_with(mode: str, flags: Mapping[str, object], hint: str | None = None) -> None:
    """A usage error naming the flags given that do not go with ``mode``."""
    given = [name for name, value in flags.items() if value]
    if given:
        raise UsageError(f"{', '.join(given)} cannot be used with {mode}", hint=hint)


def size_flag(text: str | None, flag: str = "--size") -> int | None:
    """A size flag's bytes (``5MiB`` or a number); None when not given."""
    if text is None:
        return None
    stripped = text.strip()
    if stripped.startswith("-") and stripped[1:].isdigit():
        raise UsageError(f"{flag} {stripped} is negative", hint="pass the body size in bytes")
    try:
        return parse_size(stripped)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


# --- --batch ---------------------------------------------------------------------------


def sign_batch(
    state: CliState,
    path: str,
    settings: Settings,
    method: Method,
    content_type: str | None,
    output: OutputChoice,
    now: datetime | None,
    refused: Mapping[str, object],
) -> None:
    """``sign --batch``: stream JSON lines through one presigner; exit 1 if a line failed.
    ``refused``: the flags given that a line gives instead."""
    from s3sign.signing.batch import sign_source
    from s3sign.signing.batch_lines import Defaults

    refuse_with("--batch", refused, hint="give them per line: bucket, key, size, sha256, md5, meta")
    if output not in (OutputChoice.url, OutputChoice.json):
        raise UsageError(f"--batch prints JSON lines, not {output.value}", hint="drop --output")
    if content_type is not None:
        check_content_type(content_type, "--content-type")
    presigner = Presigner.from_settings(settings)  # credentials resolved once, for every line
    defaults = Defaults(method, content_type, settings.expires)
    stdin = state.environment.stdin
    try:
        source = cast(io.BufferedReader, stdin if path == "-" else open(path, "rb"))  # noqa: SIM115
    except OSError as exc:
        message = f"--batch {path}: {exc.strerror}"
        raise UsageError(message, hint="give a readable file, or - for stdin") from None
    stdout = state.environment.stdout
    try:
        result = sign_source(
            source,
            stdout.write,
            stdout.flush,
            presigner,
            defaults,
            strict_expiry=settings.strict_expiry,
            now=now,
        )
    finally:
        if source is not stdin:
            source.close()
    for warning in result.warnings:
        state.console.warning(warning)
    state.console.info(f"signed {result.signed:,} requests, {result.failed:,} failed")
    if result.failed:
        raise typer.Exit(ExitCode.SOME_FAILED)


# --- --post ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PostLimits:
    """The flags that only a POST policy takes."""

    max_size: str | None
    min_size: str | None
    content_type: str | None
    content_type_prefix: str | None

    def refuse_without_post(self) -> None:
        flags = {"--max-size": self.max_size, "--min-size": self.min_size}
        flags["--content-type-prefix"] = self.content_type_prefix
        given = [name for name, value in flags.items() if value is not None]
        if given:
            message = f"{', '.join(given)} only apply to --post"
            raise UsageError(message, hint="add --post, or drop them")


def sign_post(
    state: CliState,
    bucket: str,
    key: str,
    settings: Settings,
    limits: PostLimits,
    output: OutputChoice,
    now: datetime | None,
    refused: Mapping[str, object],
) -> None:
    """``sign --post``: a signed POST policy, as JSON, a curl command or an HTML form.
    ``refused``: the flags given that do not go with a POST policy."""
    from s3sign.signing.post import PostPolicy, render_post, sign_post

    refuse_with("--post", refused, hint="a POST policy limits the size with --max-size/--min-size")
    if limits.max_size is None:
        raise UsageError(
            "--post needs --max-size",
            hint="without a limit anyone with the form can fill the bucket: --max-size 10MiB",
        )
    policy = PostPolicy(
        bucket=bucket,
        key=key,
        max_size=size_flag(limits.max_size) or 0,
        min_size=size_flag(limits.min_size) or 0,
        content_type=limits.content_type,
        content_type_prefix=limits.content_type_prefix,
        expires=settings.expires,
    )
    presigner = Presigner.from_settings(settings)
    moment = now or datetime.now(UTC)
    expires, warning = cap_expiry(
        policy.expires, presigner.credentials, moment, strict=settings.strict_expiry
    )
    if warning:
        state.console.warning(warning)
    form = sign_post(presigner, replace(policy, expires=expires), moment)
    lifetime = format_duration(expires)
    state.console.info(f"signed a POST policy for s3://{bucket}/{key}, expires in {lifetime}")
    shown = OutputChoice.json if output is OutputChoice.url else output
    state.out(render_post(form, shown.value), end="")


# --- --multipart, --complete, --abort ---------------------------------------------------


@dataclass(frozen=True)
class MultipartSteps:
    """Which step of a multipart upload by hand: start it, complete it, or abort it."""

    start: bool
    complete: str | None  # the upload id
    etags: Path | None
    abort: str | None  # the upload id

    @property
    def wanted(self) -> bool:
        return self.start or self.complete is not None or self.abort is not None

    def refuse_without_multipart(self, part_size: str | None) -> None:
        if part_size is not None or self.etags is not None:
            raise UsageError(
                "--part-size and --etags belong to --multipart and --complete",
                hint="add --multipart (or --complete UPLOAD_ID), or drop them",
            )


def sign_multipart(
    state: CliState,
    bucket: str,
    key: str,
    settings: Settings,
    steps: MultipartSteps,
    sizes: tuple[int | None, int],
    content_type: str | None,
    now: datetime | None,
    refused: Mapping[str, object],
) -> None:
    """``--multipart``, ``--complete ID --etags FILE`` or ``--abort ID``: one of them.
    ``sizes``: the object's (``--size``) and each part's; ``refused``: the flags given that
    do not go with a multipart upload."""
    from s3sign.signing import multipart
    from s3sign.signing.store import ObjectStore

    refuse_with("multipart uploads", refused)
    if sum((steps.start, steps.complete is not None, steps.abort is not None)) > 1:
        raise UsageError("give one of --multipart, --complete and --abort")
    presigner = Presigner.from_settings(settings)
    store = ObjectStore(lambda: presigner, bucket, settings.transport)
    size, part_size = sizes
    if steps.start:
        if size is None:
            raise UsageError("--multipart needs --size", hint="the whole object's size in bytes")
        document = multipart.start(
            presigner,
            store,
            key,
            size=size,
            part_size=part_size,
            expires=settings.expires,
            content_type=content_type,
            now=now,
        )
        state.out(json.dumps(document, ensure_ascii=False))
        return
    if size is not None or content_type is not None:
        raise UsageError("--size and --content-type belong to --multipart")
    if steps.abort is not None:
        multipart.abort(store, key, steps.abort)
        outcome = {"bucket": bucket, "key": key, "uploadId": steps.abort, "status": "aborted"}
        state.out(json.dumps(outcome))
        return
    if steps.etags is None:
        raise UsageError("--complete needs --etags FILE", hint="the ETag S3 returned for each part")
    try:
        text = steps.etags.read_text()
    except OSError as exc:
        raise UsageError(f"--etags {steps.etags}: {exc.strerror}") from None
    etag = multipart.complete(store, key, cast(str, steps.complete), text)
    state.out(json.dumps({"bucket": bucket, "key": key, "etag": etag, "status": "complete"}))
