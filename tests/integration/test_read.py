"""The read half of protocol v1 against the real ``serve`` and SeaweedFS: a run listed page
by page, signed downloads with what is stored, and tokens scoped to read or to upload."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from s3sign.cli import run as cli_run
from s3sign.cli.environment import Environment
from s3sign.server.tokens import mint_link, mint_token
from s3sign.transfer.api import push
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.listing import stored_files
from tests.integration.conftest import SECRET, Backend

NAMES = ["a.txt", "logs/b.log", "logs/deep/c d.json", "ü/é.txt", "zero.bin"]


@pytest.fixture(scope="module")
def pushed(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A run of five files (nested, unicode, a space, 0 bytes), pushed as a worker does."""
    root = tmp_path_factory.mktemp("read")
    for index, name in enumerate(NAMES):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"" if name == "zero.bin" else f"file {index}: {name}\n".encode() * 50)
    run = f"read-{uuid.uuid4().hex[:8]}"
    env = {"S3SIGN_BACKEND": backend.url, "S3SIGN_TOKEN": backend.token(run), "HOME": "/"}
    assert push(run, ["."], base=root, env=env).status == "success"
    return run, root


def read_token(*runs: str, scopes: tuple[str, ...] = ("read",)) -> str:
    first, *more = runs
    return mint_token(first, 3600, SECRET.encode(), scopes=scopes, more_runs=tuple(more))[0]


def get_files(backend: Backend, run: str, token: str, **query: Any) -> requests.Response:
    return requests.get(
        f"{backend.url}/v1/runs/{run}/files",
        params=query,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def test_a_run_lists_with_sizes_and_checksums(backend: Backend, pushed: tuple[str, Path]) -> None:
    run, root = pushed
    page = get_files(backend, run, read_token(run), details="true")
    assert page.status_code == 200, page.text
    document = page.json()
    assert "nextCursor" not in document
    files = {f["fileName"]: f for f in document["files"]}
    assert sorted(files) == sorted(NAMES)
    for name in NAMES:
        data = (root / name).read_bytes()
        assert files[name]["size"] == len(data)
        assert files[name]["lastModified"].endswith("Z")
        assert files[name]["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert files["logs/deep/c d.json"]["contentType"] == "application/json"
    plain = get_files(backend, run, read_token(run)).json()["files"]
    assert all("sha256" not in f for f in plain)  # without details: the listing alone


def test_more_files_than_a_page_list_completely(backend: Backend, pushed: tuple[str, Path]) -> None:
    run, _ = pushed
    token, names, cursor = read_token(run), [], None
    for _ in range(10):
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        document = get_files(backend, run, token, **query).json()
        names += [f["fileName"] for f in document["files"]]
        cursor = document.get("nextCursor")
        if cursor is None:
            break
    assert names == sorted(NAMES, key=lambda n: n.encode())
    under = get_files(backend, run, token, prefix="logs/").json()["files"]
    assert [f["fileName"] for f in under] == ["logs/b.log", "logs/deep/c d.json"]
    bad = get_files(backend, run, token, cursor="!!not-a-cursor!!")
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_cursor")


def test_downloads_are_signed_gets_with_what_is_stored(
    backend: Backend, pushed: tuple[str, Path]
) -> None:
    run, root = pushed
    body = {"files": [{"fileName": "logs/b.log"}, {"fileName": "nope"}, {"fileName": "../x"}]}
    answer = backend.post(f"/v1/runs/{run}/downloads", body, read_token(run))
    assert answer.status_code == 200, answer.text
    ready, missing, refused = answer.json()["files"]
    assert ready["status"] == "ready"
    assert ready["download"]["method"] == "GET"
    fetched = requests.get(ready["download"]["url"], timeout=60)
    assert fetched.content == (root / "logs/b.log").read_bytes()
    assert ready["size"] == len(fetched.content)
    assert ready["sha256"]
    assert (missing["status"], missing["error"]["code"]) == ("not_found", "not_found")
    assert refused["status"] == "rejected"
    quick = backend.post(f"/v1/runs/{run}/downloads", body | {"lookup": False}, read_token(run))
    ready, unlooked, refused = quick.json()["files"]
    assert ready["status"] == unlooked["status"] == "ready"  # no HEAD: the GET will say
    assert "size" not in ready
    assert refused["status"] == "rejected"
    signed = ready["download"]
    fetched = requests.get(signed["url"], headers=signed["headers"], timeout=60)
    assert fetched.content == (root / "logs/b.log").read_bytes()
    assert fetched.headers["x-amz-checksum-sha256"] == answer.json()["files"][0]["sha256"]
    bare = requests.get(signed["url"], timeout=60)  # the header is part of the signature
    assert bare.status_code == 403


def test_scopes_and_runs(backend: Backend, pushed: tuple[str, Path]) -> None:
    run, _ = pushed
    upload_only = backend.token(run)
    listing = get_files(backend, run, upload_only)
    assert (listing.status_code, listing.json()["error"]["code"]) == (403, "wrong_scope")
    body = {"files": [{"fileName": "a.txt"}]}
    download = backend.post(f"/v1/runs/{run}/downloads", body, upload_only)
    assert (download.status_code, download.json()["error"]["code"]) == (403, "wrong_scope")
    read_only = read_token(run)
    create = backend.post(
        f"/v1/runs/{run}/uploads", {"files": [{"fileName": "x", "fileSize": 1}]}, read_only
    )
    assert (create.status_code, create.json()["error"]["code"]) == (403, "wrong_scope")
    other = get_files(backend, run, read_token("another-run"))
    assert (other.status_code, other.json()["error"]["code"]) == (403, "wrong_run")
    both_runs = read_token("earlier-run", run)
    assert get_files(backend, run, both_runs).status_code == 200
    assert get_files(backend, "earlier-run", both_runs).json()["files"] == []
    upload_and_read = read_token(run, scopes=("upload", "read"))
    assert get_files(backend, run, upload_and_read).status_code == 200
    assert get_files(backend, run, "not-a-token").status_code == 401


def run_ls(backend: Backend, run: str, *args: str, token: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    env.update(S3SIGN_BACKEND=backend.url, S3SIGN_TOKEN=token, AWS_EC2_METADATA_DISABLED="true")
    return subprocess.run(
        [sys.executable, "-m", "s3sign", "ls", run, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ls_lists_every_file_with_size_and_checksum(
    backend: Backend, pushed: tuple[str, Path]
) -> None:
    run, root = pushed
    done = run_ls(backend, run, "--json", token=read_token(run))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["version"], report["runId"], report["status"]) == (1, run, "success")
    by_name = {f["fileName"]: f for f in report["files"]}
    assert sorted(by_name) == sorted(NAMES)
    for name in NAMES:
        data = (root / name).read_bytes()
        assert by_name[name]["size"] == len(data)
        assert by_name[name]["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    piped = run_ls(backend, run, "logs", "*.txt", token=read_token(run))
    assert piped.stdout.splitlines() == ["a.txt", "logs/b.log", "logs/deep/c d.json"]
    refused = run_ls(backend, run, token=backend.token(run))  # an upload token
    assert refused.returncode == 4
    assert "wrong_scope" in refused.stderr
    assert "--scope read" in refused.stderr


def test_ls_walks_every_page(backend: Backend, pushed: tuple[str, Path]) -> None:
    """More files than one page (a page of 2 here): every one is listed, once, in order."""
    run, _ = pushed
    client = BackendClient(backend.url, read_token(run))
    try:
        names = [f.file_name for f in stored_files(client, run, page_size=2)]
        chosen = [f.file_name for f in stored_files(client, run, ["logs/**/*.json"], page_size=1)]
    finally:
        client.close()
    assert names == sorted(NAMES, key=lambda n: n.encode())
    assert chosen == ["logs/deep/c d.json"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_ls_on_a_terminal_is_a_table(backend: Backend, pushed: tuple[str, Path]) -> None:
    run, _ = pushed
    stdout, stderr = Terminal(), io.StringIO()
    env = {"S3SIGN_BACKEND": backend.url, "S3SIGN_TOKEN": read_token(run), "HOME": "/"}
    assert cli_run(["ls", run, "ü"], Environment(io.BytesIO(), stdout, stderr, env)) == 0
    [row] = stdout.getvalue().splitlines()
    size, day, time_of_day, name = row.split()
    assert (size, name) == ("900B", "ü/é.txt")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", day)
    assert re.fullmatch(r"\d\d:\d\d:\d\d", time_of_day)
    assert "1 file, 900B" in stderr.getvalue()


def test_a_stable_link_opens_one_file_and_nothing_else(
    backend: Backend, pushed: tuple[str, Path]
) -> None:
    run, root = pushed
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    env.update(S3SIGN_BACKEND=backend.url, S3SIGN_SERVER_SECRET=SECRET)
    done = subprocess.run(
        [sys.executable, "-m", "s3sign", "link", run, "logs/deep/c d.json", "--ttl", "30d"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    assert link.startswith(f"{backend.url}/v1/runs/{run}/files/logs/deep/c%20d.json?token=")
    opened = requests.get(link, timeout=60)  # follows the 307 to a fresh signed GET
    assert opened.content == (root / "logs/deep/c d.json").read_bytes()
    assert opened.headers["Content-Type"] == "application/json"  # the stored type
    first = requests.get(link, timeout=60, allow_redirects=False)
    assert first.status_code == 307
    assert first.headers["Cache-Control"] == "no-store"
    if shutil.which("curl"):
        curl = subprocess.run(["curl", "-fsSL", link], capture_output=True, timeout=60, check=True)
        assert curl.stdout == (root / "logs/deep/c d.json").read_bytes()
    another = link.replace("logs/deep/c%20d.json", "a.txt")
    refused = requests.get(another, timeout=60, allow_redirects=False)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "wrong_file")
    past = datetime.now(UTC) - timedelta(days=40)
    old, _ = mint_link(run, "a.txt", 30 * 86400, SECRET.encode(), past)
    expired = requests.get(f"{backend.url}/v1/runs/{run}/files/a.txt?token={old}", timeout=60)
    assert (expired.status_code, expired.json()["error"]["code"]) == (401, "link_expired")
    gone, _ = mint_link(run, "nope.txt", 3600, SECRET.encode())
    missing = requests.get(f"{backend.url}/v1/runs/{run}/files/nope.txt?token={gone}", timeout=60)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    too_long = subprocess.run(
        [sys.executable, "-m", "s3sign", "link", run, "a.txt", "--ttl", "400d"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert too_long.returncode == 2
    assert "max_link_ttl" in too_long.stderr


def test_the_stable_path_takes_a_read_token_too(backend: Backend, pushed: tuple[str, Path]) -> None:
    run, root = pushed
    url = f"{backend.url}/v1/runs/{run}/files/a.txt"
    read = requests.get(url, headers={"Authorization": f"Bearer {read_token(run)}"}, timeout=60)
    assert read.content == (root / "a.txt").read_bytes()
    upload = requests.get(
        url, headers={"Authorization": f"Bearer {backend.token(run)}"}, timeout=60
    )
    assert (upload.status_code, upload.json()["error"]["code"]) == (403, "wrong_scope")
    assert requests.get(url, timeout=60).status_code == 401
