"""Protocol v1's two codecs agree: pydantic on the server, ``to_wire``/``from_wire`` in push."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from s3sign import protocol
from s3sign.codec import WireError, from_wire, to_wire
from s3sign.protocol import (
    AbortRequest,
    AbortResponse,
    CompletedPart,
    CompleteFile,
    CompleteResult,
    CreateUploadsRequest,
    CreateUploadsResponse,
    ErrorInfo,
    FileResult,
    FileSpec,
    MultipartPlan,
    PartsRequest,
    ServerInfo,
    SignedUpload,
    StatusFile,
    StatusRequest,
    StatusResponse,
    StatusResult,
    StoreChecks,
)

SAMPLES: list[Any] = [
    CreateUploadsRequest(
        files=[
            FileSpec("a.log", 5),
            FileSpec("b", 0, "text/plain", "x="),
            FileSpec("big", 500, part_checksum="sha256"),
        ]
    ),
    CreateUploadsResponse(
        files=[
            FileResult(
                "a.log",
                "ready",
                "runs/r/a.log",
                upload=SignedUpload("PUT", "http://s3/a?X=1", {"Content-Length": "5"}, "2026Z"),
            ),
            FileResult("big", "ready", "runs/r/big", multipart=MultipartPlan("u-1", 16, 3)),
            FileResult(
                "bound", "ready", "runs/r/b", multipart=MultipartPlan("u-2", 16, 3, "sha256")
            ),
            FileResult("../x", "rejected", error=ErrorInfo("invalid_file_name", "no")),
        ]
    ),
    PartsRequest("runs/r/big", "u-1", 48, [1, 2, 3]),
    PartsRequest("runs/r/big", "u-1", 48, [1, 2], sha256=["s1=", "s2="]),
    PartsRequest("runs/r/big", "u-1", 48, [3], md5=["m3="]),
    CompleteFile("runs/r/big", 48, None, "u-1", [CompletedPart(1, "e1"), CompletedPart(2, "e2")]),
    CompleteFile(
        "runs/r/b", 32, None, "u-2", [CompletedPart(1, "e1", "s1="), CompletedPart(2, "e")]
    ),
    CompleteResult("runs/r/a.log", "complete", 5, "etag", None),
    CompleteResult("runs/r/big", "complete", 48, "etag-3", parts_sha256="c=-3"),
    ServerInfo(1, "runs", 10, 500, 100, 16),
    ServerInfo(1, "runs", 10, 500, 100, 16, StoreChecks(True, False, None, True, False, True)),
    CompleteFile("runs/r/a.log", 5, etag="abc"),
    StatusRequest([StatusFile("a", 1), StatusFile("b", 2, "s=", "p=-2", "e")]),
    StatusResponse(
        [
            StatusResult("a", "missing", "runs/r/a"),
            StatusResult("b", "same", "runs/r/b", 2, "e", match="partsSha256"),
            StatusResult("../c", "rejected", error=ErrorInfo("invalid_name", "no")),
        ]
    ),
    AbortRequest("runs/r/a.log", etag="abc"),
    AbortResponse("runs/r/a.log", "kept"),
]


@pytest.mark.parametrize("document", SAMPLES, ids=lambda d: type(d).__name__)
def test_both_codecs_write_and_read_the_same_json(document: Any) -> None:
    server = TypeAdapter(type(document))  # what the backend uses
    server_json = json.loads(server.dump_json(document, by_alias=True, exclude_none=True))
    assert to_wire(document) == server_json
    assert from_wire(type(document), server_json) == document
    assert server.validate_json(json.dumps(to_wire(document))) == document


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        (FileSpec, {"fileName": "a", "fileSize": "12"}),  # no coercion
        (FileSpec, {"fileName": "a", "fileSize": True}),
        (FileSpec, {"fileName": 3, "fileSize": 1}),
        (FileSpec, {"fileName": "a"}),  # missing
        (FileResult, {"fileName": "a", "status": "maybe"}),  # not one of the literals
        (FileSpec, {"fileName": "a", "fileSize": 1, "partChecksum": "crc32"}),
        (
            PartsRequest,
            {"key": "k", "uploadId": "u", "fileSize": 1, "partNumbers": [1], "sha256": "s"},
        ),
        (SignedUpload, {"method": "PUT", "url": "u", "headers": {"a": 1}, "expiresAt": "t"}),
        (CreateUploadsRequest, {"files": {"fileName": "a", "fileSize": 1}}),
        (CreateUploadsRequest, [1]),
        (StoreChecks, {"sha256": 1}),  # a boolean is true or false, not 1
        (StoreChecks, {"md5": "true"}),
        (StatusResult, {"fileName": "a", "status": "same", "match": "crc32"}),
    ],
)
def test_both_codecs_refuse_the_same_documents(kind: type, data: Any) -> None:
    with pytest.raises(WireError):
        from_wire(kind, data)
    with pytest.raises(ValidationError):
        TypeAdapter(kind).validate_json(json.dumps(data))


def test_both_codecs_take_snake_case_and_ignore_unknown_fields() -> None:
    data = {"file_name": "a", "fileSize": 1, "newerField": {"x": 1}}
    assert from_wire(FileSpec, data) == TypeAdapter(FileSpec).validate_json(json.dumps(data))


def test_error_names_the_field() -> None:
    files = [{"fileName": "a", "fileSize": 1}, {"fileName": "b", "fileSize": "2"}]
    with pytest.raises(WireError, match=r"files\[1\]\.fileSize: expected an integer"):
        from_wire(CreateUploadsRequest, {"files": files})


def test_push_side_imports_no_pydantic() -> None:
    code = "import sys, s3sign.transfer.push; print('pydantic' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert "pydantic" not in protocol.__dict__
