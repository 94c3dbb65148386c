"""CI with no stored secret, against the real `s3sign serve` over SeaweedFS and a local
OIDC issuer (its own RSA keys and JWKS on 127.0.0.1, and a stand-in for GitHub Actions'
ID token request endpoint): `s3sign push` and `pull` given no run token trade the job's
ID token for one; every way a token can be wrong is refused over HTTP, saying which rule.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from s3sign.local.seaweed import LocalS3
from tests.integration.conftest import Backend, running_backend
from tests.oidc_issuer import GITHUB_REQUEST_TOKEN, Issuer, rsa_key

RUN = "gh-123-1"  # what the rule derives from the issuer's claims


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as running:
        yield running


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oidc-audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def backend(
    local_s3: LocalS3, issuer: Issuer, audit: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    log = tmp_path_factory.mktemp("oidc") / "serve.log"
    # a second rule: the release workflow may also seal its run
    sealing = issuer.rule(claims={"repository": "org/app", "workflow": "release"})
    rules = json.dumps([issuer.rule(), sealing | {"scopes": ["upload", "read", "seal"]}])
    with running_backend(local_s3, log, oidc=rules, audit_log=str(audit)) as running:
        yield running


def exchange(backend: Backend, token: str, **more: object) -> requests.Response:
    return requests.post(
        f"{backend.url}/v1/token/exchange", json={"token": token, **more}, timeout=30
    )


def test_a_good_id_token_is_exchanged_and_its_token_uploads(
    backend: Backend, issuer: Issuer, audit: Path
) -> None:
    answer = exchange(backend, issuer.mint(), runId=RUN)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["runId"], body["scopes"]) == (RUN, ["upload", "read"])
    files = {"files": [{"fileName": "a.txt", "fileSize": 1}]}
    created = backend.post(f"/v1/runs/{RUN}/uploads", files, body["token"])
    assert created.status_code == 200
    assert backend.post("/v1/runs/gh-999-1/uploads", files, body["token"]).status_code == 403
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    exchanged = next(line for line in lines if line["result"] == "exchanged")
    assert exchanged["ci"] == "repo:org/app:ref:refs/heads/main"
    assert exchanged["run"] == RUN
    signed = next(line for line in lines if line["action"] == "create_uploads")
    assert signed["ci"] == "repo:org/app:ref:refs/heads/main"  # every later line names the job
    assert body["token"] not in audit.read_text()


@pytest.mark.parametrize(
    ("wrong", "status", "code"),
    [
        ("audience", 401, "wrong_audience"),
        ("issuer", 401, "unknown_issuer"),
        ("repository", 403, "claim_mismatch"),
        ("expired", 401, "token_expired"),
        ("other key", 401, "invalid_token"),
        ("alg none", 401, "invalid_token"),
        ("hs256 with the public key", 401, "invalid_token"),
        ("run", 403, "wrong_run"),
    ],
)
def test_a_wrong_id_token_is_refused_saying_which_rule(
    backend: Backend, issuer: Issuer, wrong: str, status: int, code: str
) -> None:
    header = {"typ": "JWT", "kid": issuer.kid}
    tokens: dict[str, Callable[[], str]] = {
        "audience": lambda: issuer.mint(aud="https://github.com/org"),
        "issuer": lambda: issuer.mint(iss="https://token.actions.githubusercontent.com"),
        "repository": lambda: issuer.mint(repository="fork/app"),
        "expired": lambda: issuer.mint(iat=1_700_000_000, nbf=1_700_000_000, exp=1_700_000_300),
        "other key": lambda: issuer.mint(key=rsa_key()),
        "alg none": lambda: issuer.unsigned(header | {"alg": "none"}),
        "hs256 with the public key": lambda: issuer.unsigned(
            header | {"alg": "HS256"}, issuer.public_pem()
        ),
        "run": issuer.mint,
    }
    token = tokens[wrong]()
    answer = exchange(backend, token, runId="release-1" if wrong == "run" else RUN)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    base |= {"AWS_EC2_METADATA_DISABLED": "true", "HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "s3sign", *args],
        env=base | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_push_and_pull_in_github_actions_need_no_stored_secret(
    backend: Backend, issuer: Issuer, tmp_path: Path
) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "app.tar").write_bytes(b"artifact\n" * 100)
    github = {
        "S3SIGN_BACKEND": backend.url,
        "ACTIONS_ID_TOKEN_REQUEST_URL": issuer.github_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": GITHUB_REQUEST_TOKEN,
    }
    pushed = cli(["push", RUN, "dist"], github, tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    issuer_tokens = issuer.requests["/github-token"]
    assert issuer_tokens >= 1
    pulled = cli(["pull", RUN, "-o", "back"], github, tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "back" / "dist" / "app.tar").read_bytes() == b"artifact\n" * 100
    assert GITHUB_REQUEST_TOKEN not in pushed.stderr + pulled.stderr

    # a run the rule does not derive: exit 4, naming the run the job's token is for
    other = cli(["push", "release-1", "dist"], github, tmp_path)
    assert other.returncode == 4
    assert "this ID token is for run gh-123-1" in other.stderr
    # GitHub's endpoint refusing (no id-token: write): exit 4 with the hint
    refused = cli(
        ["push", RUN, "dist"], github | {"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "wrong"}, tmp_path
    )
    assert refused.returncode == 4
    assert "id-token: write" in refused.stderr
    # sealing: the build workflow's rule does not allow it
    not_sealed = cli(["seal", RUN], github, tmp_path)
    assert not_sealed.returncode == 4
    assert "wrong_scope" in not_sealed.stderr


def test_a_second_rule_lets_the_release_workflow_seal_its_run(
    backend: Backend, issuer: Issuer, tmp_path: Path
) -> None:
    release = issuer.mint(workflow="release", run_id="456")
    env = {"S3SIGN_BACKEND": backend.url, "S3SIGN_OIDC_TOKEN": release}
    sealed = cli(["seal", "gh-456-1"], env, tmp_path)
    assert sealed.returncode == 0, sealed.stderr
    (tmp_path / "late.txt").write_text("late\n")
    late = cli(["push", "gh-456-1", "late.txt"], env, tmp_path)
    assert late.returncode == 4
    assert "run_sealed" in late.stderr


def test_push_with_an_id_token_in_the_environment_gitlab_style(
    backend: Backend, issuer: Issuer, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a\n")
    env = {"S3SIGN_BACKEND": backend.url, "S3SIGN_OIDC_TOKEN": issuer.mint()}
    pushed = cli(["push", RUN, "a.txt"], env, tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    forged = cli(
        ["push", RUN, "a.txt"],
        env | {"S3SIGN_OIDC_TOKEN": issuer.mint(repository="fork/app")},
        tmp_path,
    )
    assert forged.returncode == 4
    assert "claim_mismatch" in forged.stderr
    assert "refused the job's OIDC ID token" in forged.stderr
