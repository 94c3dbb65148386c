"""What the backend decided, for whoever audits it, and how it is doing, for Prometheus.

- **The audit log**: one JSON line per decision: each file of a create,
  complete, status or downloads call, each parts, abort, list, link, seal or revocation,
  and each request refused as a whole (a token refused, a run sealed, a body that is not
  protocol v1). A line holds the time, the action (the route's name), the run, the
  token's ``jti`` and subject, the client's address, the key or file name, the size and
  checksum declared, the result and the error code; never a URL, a signature, a token or
  a secret.
- **Metrics** (prometheus_client): requests by route and status, latency by route, request
  and answer body bytes, URLs signed by kind, bytes declared by uploads signed, refusals
  by code. With ``PROMETHEUS_MULTIPROC_DIR`` set (``s3sign serve`` sets it), every worker
  process writes its values there and ``/metrics`` sums them all, whichever process
  answers.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import TextIO

import structlog
from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from s3sign.errors import ConfigError
from s3sign.protocol import (
    AbortResponse,
    CompleteRequest,
    CompleteResponse,
    CreateUploadsRequest,
    CreateUploadsResponse,
    DownloadsResponse,
    ErrorInfo,
    PartsRequest,
    PartsResponse,
    StatusRequest,
    StatusResponse,
)
from s3sign.server.limits import Message, Scope, Send

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True, slots=True)
class Decision:
    """One thing decided: its result (``ready``, ``complete``, ``refused`` ...) and code."""

    result: str
    code: str | None = None
    key: str | None = None
    file: str | None = None
    size: int | None = None
    checksum: str | None = None
    signed: int = 0  # URLs handed out
    signed_kind: str = "put"
    about: tuple[tuple[str, str], ...] = ()  # more fields: the jti a revocation names


class Metrics:
    """The counters of one app (their own registry: several apps may live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("s3sign_requests", "Requests", ["route", "status"], registry=r)
        self.latency = Histogram(
            "s3sign_request_duration_seconds",
            "Time to answer",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.body_bytes = Counter("s3sign_request_body_bytes", "Request body bytes", registry=r)
        self.answer_bytes = Counter("s3sign_response_body_bytes", "Answer body bytes", registry=r)
        self.signed = Counter("s3sign_urls_signed", "URLs signed", ["kind"], registry=r)
        self.declared = Counter(
            "s3sign_bytes_declared", "Bytes of the uploads signed, as declared", registry=r
        )
        self.refusals = Counter("s3sign_refusals", "Refusals", ["code"], registry=r)

    def value(self, sample: str) -> int:
        """A sample of this process, such as ``s3sign_request_body_bytes_total``."""
        return int(self.registry.get_sample_value(sample) or 0)

    def exposition(self) -> bytes:
        """The Prometheus text of every worker process (multiprocess mode), else this one's."""
        if os.environ.get(MULTIPROCESS_DIR):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class Observer:
    """The audit log and the metrics: ``decided`` for what a call decided, ``middleware``
    for every request's route, status, time and bytes."""

    def __init__(self, metrics: Metrics, audit: TextIO | None = None) -> None:
        self.metrics = metrics
        self._audit = audit or sys.stderr
        self._lock = threading.Lock()

    def decided(self, request: Request, decisions: Iterable[Decision]) -> None:
        """One audit line per decision, and the metrics they move.

        A call's lines go out in a few writes of whole lines, the fields they share
        encoded once, and its metrics move once per kind: done per decision with structlog
        and a counter increment each, this cost 12 µs a file (1.3 µs now) and took the
        backend from 38,000 to 21,000 signed URLs/s at 50 clients (bench/serve_bench.py).
        The lines are JSON as structlog's JSONRenderer wrote them (strings by the json
        module's own encoder: ASCII, control characters escaped), so a hostile file name
        cannot start a line of its own.
        """
        route = request.scope.get("route")
        claims = getattr(request.state, "claims", None) or {}
        known = {
            "event": "decision",
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "action": getattr(route, "name", None) or "unknown",
            "run": request.path_params.get("run_id"),
            "jti": claims.get("jti"),
            "subject": claims.get("sub"),
            "ci": claims.get("ci"),  # the CI job's OIDC subject, for an exchanged token
            "client": request.client.host if request.client else None,
        }
        head = json.dumps({name: value for name, value in known.items() if value is not None})
        head = head[:-1]  # the shared fields: each line goes on from here
        lines: list[str] = []
        refusals, signed = collections.Counter[str](), collections.Counter[str]()
        declared = 0
        for decision in decisions:
            lines.append(_audit_line(head, decision))
            if decision.code is not None:
                refusals[decision.code] += 1
            if decision.signed:
                signed[decision.signed_kind] += decision.signed
                if decision.signed_kind in ("put", "multipart") and decision.size:
                    declared += decision.size
        with self._lock:  # a call's lines together, in writes that keep each line whole
            for block in _blocks(lines):
                self._audit.write(block)
                self._audit.flush()
        for code, count in refusals.items():
            self.metrics.refusals.labels(code).inc(count)
        for kind, count in signed.items():
            self.metrics.signed.labels(kind).inc(count)
        if declared:
            self.metrics.declared.inc(declared)

    def counted(self, scope: Scope, send: Send) -> tuple[Send, Callable[[], None]]:
        """``send`` wrapped to count the answer's bytes, and what to call once the request
        is answered (its route, status and time)."""
        started, status = time.perf_counter(), [0]

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                self.metrics.answer_bytes.inc(len(message.get("body", b"")))
            await send(message)

        def done() -> None:
            route = getattr(scope.get("route"), "path", None) or "other"
            self.metrics.requests.labels(route, str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

        return counting, done


_text = encode_basestring_ascii  # a str as a JSON string: quoted, ASCII, escaped (C)
# Bytes one write keeps whole when other processes write the same pipe (Linux's PIPE_BUF;
# a write to a file opened for appending is whole at any size): the worker processes share
# stderr, or the audit file.
WHOLE_WRITE = 4096


def _blocks(lines: list[str]) -> Iterator[str]:
    """The lines (ASCII: a character is a byte) as blocks of whole lines, each at most
    ``WHOLE_WRITE`` bytes, or a single line where one is longer."""
    block: list[str] = []
    size = 0
    for line in lines:
        if block and size + len(line) + 1 > WHOLE_WRITE:
            yield "".join(block)
            block, size = [], 0
        block.append(line + "\n")
        size += len(line) + 1
    if block:
        yield "".join(block)


def _audit_line(head: str, decision: Decision) -> str:
    """``head`` (the shared fields, without its closing brace) and the decision's own."""
    line = [head]
    if decision.key is not None:
        line.append(f', "key": {_text(decision.key)}')
    elif decision.file is not None:
        line.append(f', "file": {_text(decision.file)}')
    if decision.size is not None:
        line.append(f', "size": {int(decision.size)}')
    if decision.checksum is not None:
        line.append(f', "checksum": {_text(decision.checksum)}')
    line.append(f', "result": {_text(decision.result)}')
    if decision.code is not None:
        line.append(f', "code": {_text(decision.code)}')
    line.extend(f", {_text(name)}: {_text(value)}" for name, value in decision.about)
    line.append("}")
    return "".join(line)


def audit_stream(where: str) -> TextIO:
    """The audit log's destination: ``-`` for stderr, else a file appended to, a few whole
    lines at a time (the lines of every worker process stay whole: ``_blocks``)."""
    if where == "-":
        return sys.stderr
    try:
        return open(where, "a", buffering=1, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"the audit log {where!r} cannot be opened: {exc.strerror}",
            hint="set audit_log (S3SIGN_AUDIT_LOG) to a writable file, or - for stderr",
        ) from None


def log_line(event: str, level: str = "info") -> str:
    """One line as ``json_formatter`` writes them, for what is said before logging starts."""
    moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"event": event, "time": moment, "level": level, "logger": "s3sign"})


def json_formatter() -> logging.Formatter:
    """A logging formatter that writes each record as one JSON object (``--log-format
    json``): time, level, logger and message."""
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
        foreign_pre_chain=[
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
        ],
    )


# --- what each call decided -------------------------------------------------------------


def _checksum(sha256: str | None, md5: str | None = None) -> str | None:
    return f"sha256:{sha256}" if sha256 else f"md5:{md5}" if md5 else None


def _code(error: ErrorInfo | None) -> str | None:
    return error.code if error else None


def created(body: CreateUploadsRequest, answer: CreateUploadsResponse) -> Iterator[Decision]:
    for spec, result in zip(body.files, answer.files, strict=True):
        kind = "put" if result.upload is not None else "multipart"
        yield Decision(
            result.status,
            _code(result.error),
            result.key,
            spec.file_name,
            spec.file_size,
            _checksum(spec.sha256, spec.md5),
            signed=int(result.status == "ready"),
            signed_kind=kind,
        )


def parts_signed(body: PartsRequest, answer: PartsResponse) -> Iterator[Decision]:
    yield Decision(
        "signed", key=body.key, size=body.file_size, signed=len(answer.parts), signed_kind="part"
    )


def completed(body: CompleteRequest, answer: CompleteResponse) -> Iterator[Decision]:
    for item, result in zip(body.files, answer.files, strict=True):
        checksum = _checksum(result.sha256 or result.parts_sha256 or item.sha256)
        yield Decision(result.status, _code(result.error), item.key, None, item.file_size, checksum)


def compared(body: StatusRequest, answer: StatusResponse) -> Iterator[Decision]:
    for spec, result in zip(body.files, answer.files, strict=True):
        checksum = _checksum(spec.sha256)
        code = _code(result.error)
        yield Decision(result.status, code, result.key, spec.file_name, spec.file_size, checksum)


def aborted(answer: AbortResponse) -> Iterator[Decision]:
    yield Decision(answer.status, key=answer.key)


def downloaded(answer: DownloadsResponse) -> Iterator[Decision]:
    for result in answer.files:
        found = result.download is not None
        yield Decision(
            result.status,
            _code(result.error),
            result.key,
            result.file_name,
            result.size,
            _checksum(result.sha256),
            signed=int(found),
            signed_kind="get",
        )
