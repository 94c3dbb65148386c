"""``sign --batch``: JSON lines of requests in, JSON lines of signed requests out.

Each input line is one object, ``{"bucket", "key", "method"?, "size"?,
"contentType"?, "sha256"?, "md5"?, "meta"?, "expires"?}``; blank lines are
skipped. Each output line is the ``--output json`` form of that request, in
the same order, or ``{"line": N, "error": {"code", "message"}}``. A bad line
never stops the others.

Streaming: input is read in 64 KiB blocks and output is flushed just before
waiting for more input, so memory stays flat for any number of lines, and a
program that writes one request and waits for its answer gets it at once.

A big regular file is cut at line ends into one part per core (Linux, up to
four); each part after the first is signed by a forked process into a
temporary file, copied out in order once the parts before it are written.
The output is the same as from one process; a part whose process failed is
signed again here.
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import pairwise
from typing import IO

from s3sign.errors import S3SignError
from s3sign.signing.batch_lines import Defaults, LineError, error_line, parse_line, per_line
from s3sign.signing.formats import json_line
from s3sign.signing.presign import Presigner, cap_expiry

READ_SIZE = 64 * 1024
PART_BYTES = 1024 * 1024  # a file is cut into parts of at least this much, one per core
MAX_PROCESSES = 4


@dataclass
class BatchResult:
    signed: int = 0
    failed: int = 0
    warnings: list[str] = field(default_factory=list)


def sign_stream(
    read: Callable[[int], bytes],
    write: Callable[[str], object],
    flush: Callable[[], object],
    presigner: Presigner,
    defaults: Defaults,
    *,
    strict_expiry: bool = False,
    now: datetime | None = None,
    first_line: int = 1,
) -> BatchResult:
    """Sign every line ``read`` gives (``read1`` of a binary file); write one line for each.

    ``now`` fixes the signing time (reproducible output); by default each line
    is signed at the time it is read. ``first_line`` numbers the lines in errors.
    """
    result = BatchResult()
    temporary = presigner.credentials.expires_at is not None

    def capped(expires: int) -> int:
        """The expiry, cut to temporary credentials' remaining life."""
        moment = now or datetime.now(UTC)
        expires, warning = cap_expiry(expires, presigner.credentials, moment, strict=strict_expiry)
        if warning and not result.warnings:
            result.warnings.append(warning)
        return expires

    signed_lines: list[str] = []  # written in one call per input block

    def write_out() -> None:
        write("".join(signed_lines))
        signed_lines.clear()
        flush()

    for number, line in enumerate(_lines(read, write_out), first_line):
        try:
            request = parse_line(line, defaults, capped if temporary else None)
            if request is None:
                continue
            signed_lines.append(json_line(presigner.sign(request, now)))
        except LineError as exc:
            signed_lines.append(error_line(number, exc.code, exc.message))
        except S3SignError as exc:
            signed_lines.append(error_line(number, "invalid_request", per_line(exc.message)))
        else:
            result.signed += 1
            continue
        result.failed += 1
    write_out()
    return result


def sign_source(
    source: io.BufferedReader,
    write: Callable[[str], object],
    flush: Callable[[], object],
    presigner: Presigner,
    defaults: Defaults,
    *,
    strict_expiry: bool = False,
    now: datetime | None = None,
) -> BatchResult:
    """``sign_stream`` over ``source``: a big regular file in parts, one process per core."""
    sign = partial(
        sign_stream, presigner=presigner, defaults=defaults, strict_expiry=strict_expiry, now=now
    )
    parts = _parts(source)
    if len(parts) < 2:  # stdin, a pipe, a small file, or one core
        return sign(source.read1, write, flush)
    fd = source.fileno()
    children = [_fork_part(fd, part, sign) for part in parts[1:]]
    try:
        result = sign(_reader(fd, parts[0]), write, flush)
        for (pid, report, output), part in zip(children, parts[1:], strict=True):
            counts = _collect(pid, report)
            if counts is None:  # that process failed: sign its part here
                counts = sign(_reader(fd, part), write, flush, first_line=part[2])
            else:
                output.seek(0)
                while block := output.read(READ_SIZE):
                    write(block)
                flush()
            result.signed += counts.signed
            result.failed += counts.failed
            result.warnings = result.warnings or counts.warnings
        return result
    finally:
        for pid, report, output in children:
            _stop(pid)
            os.close(report)
            output.close()


def _parts(source: io.BufferedReader) -> list[tuple[int, int, int]]:
    """(start, end, first line number) of each part: cut after a newline, near equal sizes."""
    try:
        info = os.fstat(source.fileno())
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError, ValueError):  # not a file, or not Linux
        return []
    if not stat.S_ISREG(info.st_mode) or not hasattr(os, "fork") or sys.platform != "linux":
        return []
    count = min(cores, MAX_PROCESSES, info.st_size // PART_BYTES)
    fd, cuts = source.fileno(), [source.tell()]
    for index in range(1, count):
        target = max(cuts[-1], info.st_size * index // count)
        newline = -1
        while newline < 0:
            block = os.pread(fd, READ_SIZE, target)
            if not block:
                break
            newline = block.find(b"\n")
            target += len(block) if newline < 0 else newline + 1
        if newline < 0:
            break  # the rest is one line
        cuts.append(target)
    cuts.append(info.st_size)
    parts, line = [], 1
    for start, end in pairwise(cuts):
        parts.append((start, end, line))
        if end < cuts[-1]:  # the last part's lines need no counting
            line += _newlines(fd, start, end)
    return parts


def _newlines(fd: int, start: int, end: int) -> int:
    count = 0
    while start < end:
        block = os.pread(fd, min(4 * READ_SIZE, end - start), start)
        if not block:
            break
        count, start = count + block.count(b"\n"), start + len(block)
    return count


def _reader(fd: int, part: tuple[int, int, int]) -> Callable[[int], bytes]:
    """``read1`` for bytes ``start`` to ``end`` of the file, by ``pread``."""
    position, end, _ = part

    def read(size: int) -> bytes:
        nonlocal position
        block = os.pread(fd, min(size, end - position), position) if position < end else b""
        position += len(block)
        return block

    return read


def _fork_part(
    fd: int, part: tuple[int, int, int], sign: Callable[..., BatchResult]
) -> tuple[int, int, IO[str]]:
    """(pid, the read end of its report pipe, its output file) of a process signing ``part``."""
    output = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed by the caller
    report, report_to = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: sign, report the counts, and leave without cleanup
        code = 1
        try:
            from s3sign.children import die_with_parent

            die_with_parent()  # a parent killed outright takes its parts with it
            os.close(report)
            counts = sign(_reader(fd, part), output.write, output.flush, first_line=part[2])
            document = {"signed": counts.signed, "failed": counts.failed}
            os.write(report_to, json.dumps({**document, "warnings": counts.warnings}).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(report_to)
    return pid, report, output


def _collect(pid: int, report: int) -> BatchResult | None:
    """The counts a part's process reported, once it ended well; None if it did not."""
    chunks = []
    while chunk := os.read(report, READ_SIZE):
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return None
    try:
        counts = json.loads(b"".join(chunks))
    except ValueError:
        return None
    return BatchResult(counts["signed"], counts["failed"], counts["warnings"])


def _stop(pid: int) -> None:
    """End a part's process if it still runs (Ctrl-C, a closed stdout), and reap it."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass  # already reaped by _collect


def _lines(read: Callable[[int], bytes], before_read: Callable[[], None]) -> Iterator[bytes]:
    """Lines (without the newline); ``before_read`` writes out what is signed so far."""
    pending = b""
    while True:
        before_read()
        block = read(READ_SIZE)
        if not block:
            break
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending
