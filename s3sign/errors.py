"""The one error hierarchy of s3sign.

Every error the core raises is an :class:`S3SignError`. Each class knows the
process exit code it maps to and carries a one-line hint that tells the user
what to do next. ``cli.py`` is the only place that turns them into output.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, documented in the README."""

    OK = 0
    SOME_FAILED = 1
    USAGE = 2
    CONFIG = 3
    CREDENTIALS = 4
    UNREACHABLE = 5
    INTERNAL = 70
    INTERRUPTED = 130
    BROKEN_PIPE = 141  # stdout closed by its reader (128 + SIGPIPE, as a shell reports)
    TERMINATED = 143  # SIGTERM (a CI job cancelled, a container stopped): 128 + 15


class Terminated(KeyboardInterrupt):
    """SIGTERM during a push: it ends like Ctrl-C (open uploads aborted), exit 143."""

    def __init__(self) -> None:
        super().__init__("terminated (SIGTERM)")


class S3SignError(Exception):
    """Base class: a message for the user, a hint, and an exit code."""

    exit_code: ExitCode = ExitCode.INTERNAL
    default_hint: str = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint


class UsageError(S3SignError):
    """The command line asks for something that cannot be done (exit 2)."""

    exit_code = ExitCode.USAGE  # the CLI adds "see 's3sign CMD --help'" when no hint is given


class ConfigError(S3SignError):
    """A configuration file or environment variable is invalid (exit 3)."""

    exit_code = ExitCode.CONFIG
    default_hint = "see config.example.yaml for every key and its type"


class CredentialsError(S3SignError):
    """No usable AWS credentials, or the backend refused ours (exit 4)."""

    exit_code = ExitCode.CREDENTIALS
    default_hint = (
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pass --profile or set AWS_PROFILE, "
        "or run 'aws configure'"
    )


class BackendError(S3SignError):
    """The backend refused a request for a reason other than credentials (exit 1)."""

    exit_code = ExitCode.SOME_FAILED
    default_hint = "see the backend's message; the files of that request were not uploaded"


class UnreachableError(S3SignError):
    """The backend or the storage could not be reached after retries (exit 5)."""

    exit_code = ExitCode.UNREACHABLE
    default_hint = "check the URL, your network, and that the service is running"


def stop_reason(exc: S3SignError | KeyboardInterrupt) -> str:
    """What ended a command, in a few words: the error's message, or the interruption."""
    return exc.message if isinstance(exc, S3SignError) else str(exc) or "interrupted"
