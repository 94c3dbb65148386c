"""Protocol bodies in and out: parsed strictly from the JSON text (pydantic), answered in
camelCase without empty fields, and the CPU work for both kept off the event loop where it
would hold every other request (``answer``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from s3sign.protocol import ProtocolError

_ADAPTERS: dict[type, TypeAdapter[Any]] = {}
Body = TypeVar("Body")


def adapter(kind: type[Body]) -> TypeAdapter[Body]:
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(kind)
    return _ADAPTERS[kind]


def reply(document: Any) -> Response:
    """A wire type as the JSON answer: camelCase, without fields that are None."""
    body = adapter(type(document)).dump_json(document, by_alias=True, exclude_none=True)
    return Response(body, media_type="application/json")


def parse(data: bytes, kind: type[Body]) -> Body:
    """The request body as ``kind``, validated from the JSON text (strict types).

    Read here rather than by FastAPI: FastAPI validates parsed Python objects,
    where pydantic's strict mode refuses a dict for a dataclass.
    """
    try:
        return adapter(kind).validate_json(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


# CPU work (parsing, signing, writing answers): off the event loop, where a batch of
# 1,000 files (~20 ms) would hold every other request, /healthz too; and in few threads,
# one per core, so that the loop waits for Python's lock behind no more than these.
_cpu = ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="s3sign-cpu")
INLINE_BODY = 8 * 1024  # bytes: a request this small (~150 files) costs the loop ~2 ms


async def answer(
    request: Request,
    kind: type[Body],
    work: Callable[[Body], Any],
    waits: Callable[[Body], bool] = lambda _: True,
) -> Response:
    """Read the body on the event loop; parse it and do ``work`` on a CPU thread (on the
    loop itself for a small body, where that costs less than the hand-over to a thread
    and back), unless ``waits(body)``: work that waits on the store goes to the shared
    thread pool, which may hold many such calls at once."""
    data = await request.body()

    def cpu_part() -> tuple[Body, Response | None]:
        body = parse(data, kind)
        return body, None if waits(body) else reply(work(body))

    if len(data) <= INLINE_BODY:
        body, response = cpu_part()
    else:
        body, response = await asyncio.get_running_loop().run_in_executor(_cpu, cpu_part)
    if response is None:
        response = await run_in_threadpool(lambda: reply(work(body)))
    return response


def body_schema(kind: type) -> dict[str, Any]:
    """``openapi_extra`` naming ``kind`` as the request body (see ``_document_request_bodies``)."""
    reference = {"$ref": f"#/components/schemas/{kind.__name__}"}
    content = {"application/json": {"schema": reference}}
    return {"requestBody": {"required": True, "content": content}}


def at_least_one(items: list[Any], name: str = "files", most: int | None = None) -> None:
    if not items or (most is not None and len(items) > most):
        limit = f"1 to {most}" if most is not None else "at least 1"
        raise ProtocolError(422, "invalid_request", f"{name}: give {limit} item(s)")
