"""Settings and the one function that decides where each value comes from.

Precedence, for every key: command-line flag > ``S3SIGN_*`` environment
variable > YAML config file > built-in default. The YAML file is ``--config
PATH``, else ``$S3SIGN_CONFIG``, else ``./s3sign.yaml``, else
``$XDG_CONFIG_HOME/s3sign/config.yaml`` (``~/.config/s3sign/config.yaml``).
AWS secrets never live here: they come from the AWS credential chain. The two secrets of
s3sign itself, the run token and the server secret, come from a flag or the environment
only (``S3SIGN_TOKEN``, ``S3SIGN_SERVER_SECRET``), never from the file. The network rules
(proxies, CA bundles) are read here too, from the standard variables
(``s3sign.http.transport``): this module and ``credentials`` are the only readers of the
process's environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit

from s3sign.config_file import find_config_file
from s3sign.errors import ConfigError, UsageError
from s3sign.objectrules import ENCRYPTIONS, ObjectRules, parse_tags
from s3sign.providers import PROVIDERS
from s3sign.s3limits import MAX_OBJECT_SIZE, MAX_PART_SIZE, MIN_PART_SIZE, GiB, MiB
from s3sign.units import format_size, parse_duration, parse_size

if TYPE_CHECKING:  # imported when a command makes a call: `sign` starts without it
    from s3sign.http.transport import Transport

# What ``Transport.from_environ`` reads: passed on by ``load_settings`` as they were set.
NETWORK_VARIABLES = (
    *(name for base in ("http_proxy", "https_proxy", "no_proxy") for name in (base, base.upper())),
    "AWS_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
)

Checksum = Literal["sha256", "md5", "none"]
Addressing = Literal["auto", "virtual", "path"]  # path style: https://host/bucket/key
# What a URL may hold unencoded (RFC 3986): an endpoint with a space or a quote is refused.
URL_CHARACTERS = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+").fullmatch
PushChecksum = Literal["auto", "sha256", "md5", "none"]  # auto: what the store enforces
Source = Literal["flag", "env", "file", "provider", "default"]

MAX_EXPIRES = 7 * 86400  # SigV4's hard limit for a pre-signed URL


@dataclass(frozen=True)
class Settings:
    """Everything s3sign can be configured with, after precedence was applied."""

    provider: str = "aws"
    region: str | None = None
    endpoint_url: str | None = None
    addressing: Addressing = "auto"
    profile: str | None = None
    expires: int = 900
    checksum: Checksum = "sha256"
    strict_expiry: bool = False
    # the worker side (`s3sign push`)
    backend: str | None = None
    concurrency: int = 8
    stall_timeout: int = 120  # seconds: a silent peer, and the deadline for a whole answer
    # the signing backend (`s3sign serve`) and its tokens
    bucket: str | None = None
    key_prefix: str = "runs"
    max_file_size: int = 10 * GiB
    max_files_per_request: int = 1000
    multipart_threshold: int = 100 * MiB
    part_size: int = 16 * MiB
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    request_timeout: int = 20  # seconds a client has for a request's head, then its body
    max_connections: int = 1000  # per worker process; requests beyond get 503
    token_ttl: int = 12 * 3600
    max_token_ttl: int = 7 * 86400  # the longest token a backend accepts (and `token` mints)
    link_ttl: int = 30 * 86400  # a stable link's lifetime (`s3sign link`)
    max_link_ttl: int = 365 * 86400  # the longest a backend accepts: each visit signs anew
    seal_cache: int = 5  # seconds a replica trusts "this run is not sealed" before asking again
    revocation_cache: int = 5  # seconds a replica trusts its list of revoked tokens
    token_rate: float = 0.0  # requests a second one token may make (a replica's process); 0: any
    token_burst: int = 100
    client_rate: float = 0.0  # the same for one client address
    client_burst: int = 200
    audit_log: str = "-"  # where the JSON audit lines go: a file (appended), or - for stderr
    log_format: str = "text"  # the server's other logs: text, or json
    overwrite: bool = True  # False: write-once, S3 refuses a second write of a key
    # the bucket's own rules, signed into every upload (s3sign.objectrules)
    sse: str = ""  # server-side encryption: AES256, aws:kms or aws:kms:dsse; "": none asked
    sse_kms_key_id: str = ""  # with aws:kms: the key (id, ARN or alias); "": the bucket's
    storage_class: str = ""  # "": the bucket's default
    object_tags: tuple[tuple[str, str], ...] = ()
    # OIDC exchange: the CI issuers whose ID tokens the backend trades for run tokens
    # (s3sign.server.oidc reads each rule); push and pull ask for this audience
    oidc: tuple[Mapping[str, object], ...] = ()
    oidc_audience: str = "s3sign"
    max_run_bytes: int | None = None  # what one run may hold; None: no limit
    max_run_files: int | None = None
    # secrets: from a flag or the environment only, never shown (``describe`` leaves them out)
    token: str | None = field(default=None, repr=False)
    server_secret: str | None = field(default=None, repr=False)
    server_secrets: str | None = field(default=None, repr=False)  # new,old: while rotating
    oidc_token: str | None = field(default=None, repr=False)  # a CI job's ID token (GitLab)
    # the standard variables for proxies and CA bundles (not S3SIGN_*), as they were set
    network: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    config_file: Path | None = field(default=None, compare=False)
    sources: Mapping[str, Source] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def object_rules(self) -> ObjectRules:
        """What every stored object must have: ``ValueError`` when the settings disagree
        (a KMS key without ``sse: aws:kms``)."""
        return ObjectRules(self.sse, self.sse_kms_key_id, self.storage_class, self.object_tags)

    @cached_property
    def transport(self) -> Transport:
        """The rules for every HTTP call (proxies, CA bundles); a bad proxy variable is a
        ``ConfigError`` here, when a command is about to make a call, not in ``sign``."""
        from s3sign.http.transport import Transport

        return Transport.from_environ(self.network)


# --- value parsers: raw value (str from env/flag, any YAML scalar) -> typed value ---------


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


def _region(value: object) -> str:
    text = _text(value)
    if not all(c.isalnum() or c == "-" for c in text):
        raise ValueError(f"{text!r} is not a region name (like eu-west-1)")
    return text


def _endpoint_url(value: object) -> str:
    text = _text(value)
    check_endpoint_url(text)
    return text.rstrip("/")


def check_endpoint_url(text: str) -> None:
    """Refuse an endpoint that is not ``http(s)://host[:port][/path]``."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http(s) URL with a host, like https://s3.example.com")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{text!r} must not carry a query, fragment or user info")
    if port == 0:
        raise ValueError(f"{text!r} has port 0")
    if not URL_CHARACTERS(text):
        raise ValueError(f"{text!r} has characters a URL cannot hold unencoded, like spaces")


def _choice(*allowed: str) -> Callable[[object], str]:
    spelled = {choice.lower(): choice for choice in allowed}

    def parse(value: object) -> str:
        """One of ``allowed``, in any case, spelled as there."""
        choice = spelled.get(_text(value).lower())
        if choice is None:
            raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
        return choice

    return parse


def _expires(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a duration like 15m")
    seconds = value if isinstance(value, int) else parse_duration(_text(value))
    if seconds <= 0:
        raise ValueError(f"{value!r}: the expiry must be longer than 0 seconds")
    if seconds > MAX_EXPIRES:
        raise ValueError(f"{value!r} is over 7d, the longest a SigV4 pre-signed URL can live")
    return seconds


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _between(
    kind: str, parse_text: Callable[[str], int], show: Callable[[int], str]
) -> Callable[[int, int], Callable[[object], int]]:
    """A parser factory: a YAML integer or a text form, within ``low..high``."""

    def bounded(low: int, high: int) -> Callable[[object], int]:
        def parse(value: object) -> int:
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError(f"{value!r} is not {kind}")
            number = value if isinstance(value, int) else parse_text(_text(value))
            if not low <= number <= high:
                raise ValueError(f"{value!r} is outside {show(low)}..{show(high)}")
            return number

        return parse

    return bounded


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


_size_between = _between("a size", parse_size, format_size)
_int_between = _between("a whole number", _whole_number, str)
_duration_between = _between("a duration", parse_duration, lambda seconds: f"{seconds}s")


def _rate(value: object) -> float:
    """Requests a second: 0 (no limit) to 100,000, like 20 or 0.5."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a rate")
    try:
        rate = float(value) if isinstance(value, int | float) else float(_text(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a rate: requests a second, like 20 or 0.5") from None
    if not 0 <= rate <= 100_000:
        raise ValueError(f"{value!r} is outside 0..100000 requests a second")
    return rate


def _oidc(value: object) -> tuple[Mapping[str, object], ...]:
    """The OIDC rules: a list of mappings in YAML, or the same list as JSON in the
    environment; each rule is read by the server (s3sign.server.oidc.oidc_rules)."""
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError('not a JSON list of rules ([{"issuer": ...}])') from None
    if not isinstance(value, list) or not all(isinstance(rule, Mapping) for rule in value):
        raise ValueError("expected a list of rules, each a mapping (issuer, claims, run, ...)")
    return tuple(dict(rule) for rule in value)


def _storage_class(value: object) -> str:
    return ObjectRules(storage_class=_text(value).upper()).storage_class  # ValueError if not


def _kms_key(value: object) -> str:
    return ObjectRules("aws:kms", kms_key_id=_text(value)).kms_key_id  # ValueError if not one


def _key_prefix(value: object) -> str:
    text = _text(value).strip("/")
    if not text or any(s in ("", ".", "..") for s in text.split("/")) or "\\" in text:
        raise ValueError(f"{value!r} is not a key prefix like runs or ci/artifacts")
    return text


_PARSERS: dict[str, Callable[[object], object]] = {
    "provider": _choice(*PROVIDERS),
    "region": _region,
    "endpoint_url": _endpoint_url,
    "addressing": _choice("auto", "virtual", "path"),
    "profile": _text,
    "expires": _expires,
    "checksum": _choice("sha256", "md5", "none"),
    "strict_expiry": _bool,
    "backend": _endpoint_url,
    "concurrency": _int_between(1, 64),
    "stall_timeout": _duration_between(1, 3600),
    "bucket": _text,
    "key_prefix": _key_prefix,
    "max_file_size": _size_between(0, MAX_OBJECT_SIZE),
    "max_files_per_request": _int_between(1, 10_000),
    "multipart_threshold": _size_between(MIN_PART_SIZE, MAX_PART_SIZE),
    "part_size": _size_between(MIN_PART_SIZE, MAX_PART_SIZE),
    "host": _text,
    "port": _int_between(0, 65535),
    "workers": _int_between(1, 64),
    "request_timeout": _duration_between(1, 600),
    "max_connections": _int_between(16, 1_000_000),
    "token_ttl": _duration_between(60, 30 * 86400),
    "max_token_ttl": _duration_between(60, 30 * 86400),
    "link_ttl": _duration_between(60, 3650 * 86400),
    "max_link_ttl": _duration_between(60, 3650 * 86400),
    "seal_cache": _duration_between(1, 60),
    "revocation_cache": _duration_between(1, 60),
    "token_rate": _rate,
    "token_burst": _int_between(1, 1_000_000),
    "client_rate": _rate,
    "client_burst": _int_between(1, 1_000_000),
    "audit_log": _text,
    "log_format": _choice("text", "json"),
    "overwrite": _bool,
    "sse": _choice(*ENCRYPTIONS),
    "sse_kms_key_id": _kms_key,
    "storage_class": _storage_class,
    "object_tags": parse_tags,
    "oidc": _oidc,
    "oidc_audience": _text,
    "max_run_bytes": _size_between(0, 2**62),
    "max_run_files": _int_between(0, 2**62),
}
# Never read from the file: a config file is shared, checked in, printed.
SECRET_KEYS = frozenset({"token", "server_secret", "server_secrets", "oidc_token"})
_PARSERS.update(
    {"token": _text, "server_secret": _text, "server_secrets": _text, "oidc_token": _text}
)
KEYS: tuple[str, ...] = tuple(_PARSERS)


def env_name(key: str) -> str:
    """The environment variable for a settings key: ``expires`` -> ``S3SIGN_EXPIRES``."""
    return "S3SIGN_" + key.upper()


def flag_name(key: str) -> str:
    """The command-line flag for a settings key: ``endpoint_url`` -> ``--endpoint-url``."""
    return "--" + key.replace("_", "-")


def load_settings(
    flags: Mapping[str, object | None] | None = None,
    *,
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> Settings:
    """Apply flag > ``S3SIGN_*`` env > YAML file > default to every key, once.

    ``flags`` maps settings keys to what the command line gave (``None`` when
    the flag was not given); ``flag_names`` names flags that are not just the
    key with dashes (``token_ttl`` is ``--ttl``). A bad flag value is a usage error (exit 2); a bad
    environment variable or file value is a configuration error (exit 3)
    naming the variable, or the file, key and line.
    """
    env = os.environ if env is None else env
    flags = flags or {}
    unknown_flags = set(flags) - set(KEYS)
    if unknown_flags:
        raise TypeError(f"not settings keys: {sorted(unknown_flags)}")
    path = find_config_file(config_path, env=env, cwd=cwd)
    from_file = read_config_file(path) if path is not None else {}

    values: dict[str, object] = {}
    sources: dict[str, Source] = {key: "default" for key in KEYS}
    for key in KEYS:
        source: Source
        raw_flag, raw_env = flags.get(key), env.get(env_name(key))
        if raw_flag is not None:
            raw, source, line = raw_flag, "flag", 0
        elif raw_env:
            raw, source, line = raw_env, "env", 0
        elif key in from_file:
            (raw, line), source = from_file[key], "file"
        else:
            continue
        try:
            values[key] = _PARSERS[key](raw)
        except ValueError as exc:
            flag = (flag_names or {}).get(key, flag_name(key))
            raise _bad_value(key, source, str(exc), path, line, flag) from None
        sources[key] = source
    _apply_provider(values, sources)
    network = {name: env[name] for name in NETWORK_VARIABLES if name in env}
    settings = Settings(
        **cast(dict[str, Any], values), network=network, config_file=path, sources=sources
    )
    try:
        settings.object_rules  # noqa: B018 - checked once, here
    except ValueError as exc:
        source = sources["sse_kms_key_id"]
        raise _bad_value("sse_kms_key_id", source, str(exc), path, 0, "--sse-kms-key-id") from None
    return settings


def _apply_provider(values: dict[str, object], sources: dict[str, Source]) -> None:
    """Fill what the user left to its default from the provider's preset."""
    provider = PROVIDERS[cast(str, values.get("provider", "aws"))]
    endpoint = cast("str | None", values.get("endpoint_url")) or provider.endpoint_url
    preset = {
        "endpoint_url": provider.endpoint_url,
        "addressing": None if provider.addressing == "auto" else provider.addressing,
        "checksum": None if provider.checksum == "sha256" else provider.checksum,
        "region": provider.region_for(endpoint),
    }
    for key, value in preset.items():
        if value is not None and sources[key] == "default":
            values[key], sources[key] = value, "provider"


def _bad_value(
    key: str, source: Source, problem: str, path: Path | None, line: int, flag: str
) -> Exception:
    if source == "flag":
        return UsageError(f"{flag}: {problem}")
    if source == "env":
        return ConfigError(f"{env_name(key)}: {problem}", hint=f"fix or unset {env_name(key)}")
    return ConfigError(f"{path}:{line}: {key}: {problem}")


def read_config_file(path: Path) -> dict[str, tuple[object, int]]:
    """Key -> (raw value, line) from a YAML file; unknown keys are an error."""
    import yaml  # only when a config file exists: keeps `sign` cold start small

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # refuses control characters at once (ReaderError)
        root = loader.get_single_node()
        if root is None:
            return {}
        if not isinstance(root, yaml.MappingNode):
            raise ConfigError(
                f"{path}:{root.start_mark.line + 1}: the file must be a mapping of keys to values"
            )
        result: dict[str, tuple[object, int]] = {}
        for key_node, value_node in root.value:
            line = key_node.start_mark.line + 1
            key = loader.construct_object(key_node, deep=True)
            if key in SECRET_KEYS:
                raise ConfigError(
                    f"{path}:{line}: {key} is a secret and is not read from a config file",
                    hint=f"set {env_name(key)} in the environment instead, and remove the line",
                )
            if not isinstance(key, str) or key not in _PARSERS:
                known = ", ".join(k for k in KEYS if k not in SECRET_KEYS)
                raise ConfigError(
                    f"{path}:{line}: unknown key {key!r}", hint=f"known keys: {known}"
                )
            if key in result:
                raise ConfigError(f"{path}:{line}: {key} is set twice")
            value = loader.construct_object(value_node, deep=True)
            if value is not None:
                result[key] = (value, line)
        return result
    except yaml.reader.ReaderError as exc:  # a control character, before any parsing
        line = text.count("\n", 0, exc.position) + 1
        problem = f"character {exc.character!r} is not allowed (control characters are not)"
        raise ConfigError(f"{path}:{line}: not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    finally:
        if loader is not None:
            loader.dispose()


def describe(settings: Settings) -> list[tuple[str, object, Source]]:
    """(key, value, source) for every key, for ``config show`` and ``-v`` logs."""
    names = [f.name for f in fields(settings) if f.name in _PARSERS and f.name not in SECRET_KEYS]
    return [(n, getattr(settings, n), settings.sources.get(n, "default")) for n in names]
