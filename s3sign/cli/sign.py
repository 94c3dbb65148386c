"""``s3sign sign``: one command, four modes, each its own function: one URL, ``--batch``,
``--post`` (sign_modes.py) and ``--multipart``/``--complete``/``--abort`` (sign_modes.py).

No ``from __future__ import annotations`` here: Typer reads every parameter's annotation at
start-up, and string annotations cost it an ``eval`` each.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, cast

import typer

from s3sign.cli import sign_modes
from s3sign.cli.options import (
    AddressingChoice,
    ChecksumChoice,
    CliState,
    EndpointOption,
    MethodChoice,
    OutputChoice,
    ProfileOption,
    ProviderOption,
    Quiet,
    RegionOption,
    Verbose,
    command_state,
    flag,
    option,
)
from s3sign.config import Checksum, Settings
from s3sign.errors import UsageError
from s3sign.signing.formats import Output, render
from s3sign.signing.presign import (
    Method,
    Presigner,
    SignRequest,
    cap_expiry,
    check_request,
    normalize_digest,
    resolve_endpoint_url,
)
from s3sign.units import format_duration

Target = Annotated[
    str | None,
    typer.Argument(metavar="BUCKET", help="Bucket, or s3://bucket/key.", show_default=False),
]
Key = Annotated[str | None, typer.Argument(metavar="KEY", help="Object key.", show_default=False)]
Batch = Annotated[
    str | None,
    option("FILE", "Sign each JSON line of FILE (- for stdin); print one JSON line each."),
]
Size = Annotated[str | None, option("BYTES", "Exact body size for PUT: bytes, or like 5MiB.")]
File = Annotated[
    Path | None, option("PATH", "Take size, content type and checksum from this file.")
]
MethodFlag = Annotated[
    MethodChoice, typer.Option(case_sensitive=False, help="HTTP method the URL allows.")
]
ContentType = Annotated[str | None, option("TYPE", "Content-Type the PUT must send (signed).")]
Sha256 = Annotated[str | None, option("DIGEST", "SHA-256 of the body, base64 or hex (signed).")]
Md5 = Annotated[str | None, option("DIGEST", "MD5 of the body, base64 or hex (signed).")]
Meta = Annotated[
    list[str] | None, option("NAME=VALUE", "x-amz-meta-NAME header (signed); repeatable.")
]
Expires = Annotated[str | None, option("DURATION", "Lifetime: 90s, 15m, 12h, 7d.  [default: 15m]")]
AddressingFlag = Annotated[
    AddressingChoice | None,
    typer.Option(
        case_sensitive=False,
        help="virtual-host or path style.  [default: auto]",
        show_default=False,
    ),
]
ChecksumFlag = Annotated[
    ChecksumChoice | None,
    typer.Option(
        case_sensitive=False,
        help="Checksum computed for --file.  [default: the provider's, sha256 on AWS]",
        show_default=False,
    ),
]
StrictExpiry = Annotated[
    bool, flag("--strict-expiry", "Fail rather than cut the expiry to temporary credentials'.")
]
OutputFlag = Annotated[
    OutputChoice, typer.Option("--output", "-o", case_sensitive=False, help="What to print.")
]
Now = Annotated[str | None, option("TIME", "Sign as of this ISO 8601 time (reproducible output).")]
Post = Annotated[bool, flag("--post", "A POST policy for browser-style uploads (form fields).")]
MaxSize = Annotated[
    str | None, option("BYTES", "With --post: the largest body allowed (required).")
]
MinSize = Annotated[
    str | None, option("BYTES", "With --post: the smallest body allowed.  [default: 0]")
]
TypePrefix = Annotated[
    str | None, option("PREFIX", "With --post: allow any type starting so (image/).")
]
Multipart = Annotated[
    bool, flag("--multipart", "Start a multipart upload: its id and a URL per part.")
]
PartSize = Annotated[
    str | None, option("BYTES", "With --multipart: bytes per part.  [default: 16MiB]")
]
Complete = Annotated[
    str | None, option("UPLOAD_ID", "Complete this multipart upload (with --etags).")
]
Etags = Annotated[Path | None, option("FILE", "With --complete: the parts' ETags (JSON or lines).")]
Abort = Annotated[
    str | None, option("UPLOAD_ID", "Abort this multipart upload, dropping its parts.")
]


def sign(
    ctx: typer.Context,
    target: Target = None,
    key: Key = None,
    batch: Batch = None,
    size: Size = None,
    file: File = None,
    method: MethodFlag = MethodChoice.put,
    content_type: ContentType = None,
    sha256: Sha256 = None,
    md5: Md5 = None,
    meta: Meta = None,
    expires: Expires = None,
    provider: ProviderOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointOption = None,
    addressing: AddressingFlag = None,
    profile: ProfileOption = None,
    checksum: ChecksumFlag = None,
    strict_expiry: StrictExpiry = False,
    output: OutputFlag = OutputChoice.url,
    now: Now = None,
    post: Post = False,
    max_size: MaxSize = None,
    min_size: MinSize = None,
    content_type_prefix: TypePrefix = None,
    multipart: Multipart = False,
    part_size: PartSize = None,
    complete: Complete = None,
    etags: Etags = None,
    abort: Abort = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Pre-sign one object's URL with local AWS credentials."""
    state = command_state(ctx, verbose, quiet)
    settings = state.settings(
        {
            "provider": provider.value if provider else None,
            "region": region,
            "endpoint_url": endpoint_url,
            "addressing": addressing.value if addressing else None,
            "profile": profile,
            "expires": expires,
            "checksum": checksum.value if checksum else None,
            "strict_expiry": True if strict_expiry else None,
        }
    )
    moment = parse_now(now) if now else None
    verb = cast(Method, method.value.upper())
    body_flags: dict[str, object] = {"--file": file, "--sha256": sha256, "--md5": md5}
    body_flags["--meta"] = meta
    if batch is not None:
        refused = {"BUCKET": target, "--size": size, **body_flags}
        sign_modes.sign_batch(state, batch, settings, verb, content_type, output, moment, refused)
        return
    bucket, object_key = split_target(target, key)
    body_flags["--method"] = method is not MethodChoice.put
    steps = sign_modes.MultipartSteps(multipart, complete, etags, abort)
    if steps.wanted:
        sizes = (sign_modes.size_flag(size), sign_modes.size_flag(part_size) or settings.part_size)
        refused = {"--post": post, **body_flags}
        sign_modes.sign_multipart(
            state, bucket, object_key, settings, steps, sizes, content_type, moment, refused
        )
        return
    steps.refuse_without_multipart(part_size)
    limits = sign_modes.PostLimits(max_size, min_size, content_type, content_type_prefix)
    if post:
        refused = {"--size": size, **body_flags}
        sign_modes.sign_post(state, bucket, object_key, settings, limits, output, moment, refused)
        return
    limits.refuse_without_post()
    request = SignRequest(
        bucket=bucket,
        key=object_key,
        method=verb,
        size=sign_modes.size_flag(size),
        content_type=content_type,
        sha256=normalize_digest(sha256, 32) if sha256 is not None else None,
        md5=normalize_digest(md5, 16) if md5 is not None else None,
        meta=tuple(parse_meta(item) for item in meta or ()),
        expires=settings.expires,
    )
    _sign_url(state, settings, request, file, output, moment)


def _sign_url(
    state: CliState,
    settings: Settings,
    request: SignRequest,
    file: Path | None,
    output: OutputChoice,
    now: datetime | None,
) -> None:
    """One pre-signed URL, printed as ``--output`` asks."""
    if output is OutputChoice.html:
        raise UsageError("-o html is for --post forms", hint="use -o url, json, curl or env")
    if file is not None:
        request = _with_file(request, file, settings.checksum)
    check_request(request, strict_bucket=resolve_endpoint_url(settings) is None)
    console = state.console
    signing_time = now or datetime.now(UTC)
    presigner = Presigner.from_settings(settings)
    credentials = presigner.credentials
    expires_in, warning = cap_expiry(
        request.expires, credentials, signing_time, strict=settings.strict_expiry
    )
    if warning:
        console.warning(warning)
    console.info(f"credentials: {credentials.source} ({credentials.masked_access_key})")
    console.info(f"region: {presigner.region}; endpoint: {presigner.endpoint_url or 'AWS'}")
    signed = presigner.sign(request._replace(expires=expires_in), signing_time)
    console.info(
        f"signed {signed.method} s3://{request.bucket}/{request.key}, "
        f"expires in {format_duration(expires_in)}"
    )
    body_path = str(file) if file is not None else None
    state.out(render(signed, cast(Output, output.value), body_path=body_path), end="")


def _with_file(request: SignRequest, path: Path, checksum: Checksum) -> SignRequest:
    """Fill size, content type and checksum from a file; explicit flags win."""
    if request.method != "PUT":
        raise UsageError("--file only applies to PUT", hint="drop --file, or use --method put")
    if request.size is not None:
        raise UsageError("give --size or --file, not both", hint="--file measures the size itself")
    from s3sign.digests import file_facts  # hashing and MIME tables: only for --file

    explicit_checksum = request.sha256 is not None or request.md5 is not None
    facts = file_facts(path, "none" if explicit_checksum else checksum)
    return request._replace(
        size=facts.size,
        content_type=request.content_type or facts.content_type,
        sha256=request.sha256 or facts.sha256,
        md5=request.md5 or facts.md5,
    )


def split_target(target: str | None, key: str | None) -> tuple[str, str]:
    """``BUCKET KEY`` or ``s3://bucket/key`` -> (bucket, key)."""
    if target is None:
        raise UsageError("missing BUCKET", hint="s3sign sign BUCKET KEY --size N, or --batch FILE")
    if target.startswith("s3://"):
        if key is not None:
            raise UsageError(
                "give s3://bucket/key or BUCKET KEY, not both",
                hint="e.g. s3sign sign s3://my-bucket/logs/build.txt --size 123",
            )
        bucket, _, object_key = target[len("s3://") :].partition("/")
        return bucket, object_key
    if key is None:
        raise UsageError(
            "missing the object key",
            hint="e.g. s3sign sign my-bucket logs/build.txt --size 123",
        )
    return target, key


def parse_meta(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise UsageError(f"--meta {item!r} is not NAME=VALUE", hint="e.g. --meta build=1234")
    return name, value


def parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--now {text!r} is not an ISO 8601 time", hint="e.g. --now 2026-01-31T12:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
