"""Key policy: which object keys a run may write, checked before anything is signed.

A key is ``{keyPrefix}/{runId}/{fileName}``. The run id comes from the URL and
must match the token; the file name comes from the worker and is the part an
attacker controls, so it must stay inside the run: relative, no ``..`` or
empty segment, no backslash, no control characters, at most 1024 bytes of
UTF-8 for the whole key. Names are normalised to Unicode NFC (macOS writes NFD
file names), so ``é`` is one key however the worker's file system spelled it. Names
under ``.s3sign/`` are the run's own state (its seal), never a file's.
"""

from __future__ import annotations

import re
import unicodedata

from s3sign.s3limits import MAX_KEY_BYTES

_RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class PolicyError(Exception):
    """A name or run id the policy refuses; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


RESERVED_RUN_ID = ".s3sign"  # {keyPrefix}/.s3sign/ holds the server's own scratch objects
RESERVED_FOLDER = ".s3sign"  # {keyPrefix}/{runId}/.s3sign/ holds a run's own state (its seal)


def check_run_id(run_id: str) -> None:
    """``[A-Za-z0-9._-]{1,128}``, and not ``.`` or ``..`` (they would be path segments), nor
    the server's own ``.s3sign``."""
    if not _RUN_ID.fullmatch(run_id) or run_id in (".", "..", RESERVED_RUN_ID):
        raise PolicyError(
            "invalid_run_id",
            "the run id must be 1-128 characters of A-Z a-z 0-9 . _ - and not '.', '..' "
            "or '.s3sign'",
        )


def run_prefix(key_prefix: str, run_id: str) -> str:
    """Where a run's objects live: ``runs/RUN/``."""
    return f"{key_prefix}/{run_id}/"


def seal_key(key_prefix: str, run_id: str) -> str:
    """The object whose presence closes a run (``s3sign seal``): a name no file can take."""
    return f"{run_prefix(key_prefix, run_id)}{RESERVED_FOLDER}/sealed"


def normal_name(file_name: str) -> str:
    """A file name as its key holds it: Unicode NFC (two spellings of ``é``, one key)."""
    return file_name if file_name.isascii() else unicodedata.normalize("NFC", file_name)


def object_key(key_prefix: str, run_id: str, file_name: str) -> str:
    """The key for a worker's file name, or ``PolicyError`` saying why not."""
    name = normal_name(file_name)
    check_file_name(name)
    key = run_prefix(key_prefix, run_id) + name
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise PolicyError(
            "name_too_long",
            f"the object key would be {size} bytes; S3 allows {MAX_KEY_BYTES}",
        )
    return key


def check_file_name(name: str) -> None:
    """A relative, clean, printable name (already NFC)."""
    if not name:
        raise PolicyError("invalid_name", "the file name is empty")
    if _CONTROL.search(name):
        raise PolicyError("invalid_name", "the file name contains a control character")
    if "\\" in name:
        raise PolicyError("invalid_name", "the file name contains a backslash; use '/'")
    if name.startswith("/"):
        raise PolicyError("invalid_name", "the file name is absolute; send it relative")
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        raise PolicyError("invalid_name", "the file name has an empty, '.' or '..' segment")
    if name.split("/", 1)[0] == RESERVED_FOLDER:
        raise PolicyError("reserved_name", f"names under {RESERVED_FOLDER}/ are s3sign's own")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise PolicyError("invalid_name", "the file name is not valid UTF-8") from None


def file_name_in_run(key_prefix: str, run_id: str, key: str) -> str:
    """The file name of a key the worker sends back, if it is one of this run's keys."""
    prefix = run_prefix(key_prefix, run_id)
    if not key.startswith(prefix):
        raise PolicyError("key_outside_run", f"the key is not under {prefix}")
    name = key[len(prefix) :]
    if object_key(key_prefix, run_id, name) != key:
        raise PolicyError("invalid_name", "the key is not in normal form (NFC)")
    return name
