"""How fast `s3sign sign` is against its peers, measured in one run on this machine.

    python bench/sign_bench.py [--quick] [--summary FILE]

1. Cold start: `s3sign sign` vs `aws s3 presign` vs `python -c <boto3 presign>`,
   median wall time and peak RSS of whole processes.
2. In-process signing: s3sign's Presigner vs boto3's generate_presigned_url
   in a loop, URLs per second, after checking both produce the same URL.
3. `s3sign sign --batch FILE` of 100,000 JSON lines (20,000 with --quick) as
   a whole process, start-up included (one process per core), and the same
   lines on stdin (one process), against the boto3 loop of (2) timed in turn
   with them, and `aws s3 presign` run once per URL (from (1)); and its peak
   RSS for 10x the lines, which must not grow.

Ratios are printed only for peers that ran; a failed peer is named with why.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

from harness import clean_environment, machine, measure_process

from s3sign.credentials import Credentials
from s3sign.signing.presign import Presigner, SignRequest

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"
ENV = {
    **clean_environment(),
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}
BOTO3_SNIPPET = (
    "import boto3; from botocore.config import Config;"
    "c = boto3.client('s3', config=Config(signature_version='s3v4'));"
    "print(c.generate_presigned_url('put_object', Params={'Bucket': 'b-1', 'Key': 'k',"
    " 'ContentLength': 5}, ExpiresIn=900))"
)


@dataclass(frozen=True)
class ColdStart:
    name: str
    walls: list[float]
    peak_rss_kib: int
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.walls)


def _bin(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def cold_starts(commands: dict[str, list[str] | None], runs: int) -> list[ColdStart]:
    """Run the commands round-robin, so that load on the machine hits them all alike."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, int] = dict.fromkeys(commands, 0)
    errors: dict[str, str] = {
        name: "not installed (pip install '.[bench]')"
        for name, argv in commands.items()
        if not argv
    }
    for round_ in range(runs + 1):  # round 0 warms the page cache: start-up, not the disk
        for name, argv in commands.items():
            if argv is None or name in errors:
                continue
            result = measure_process(argv, ENV)
            if result.exit_code:
                errors[name] = f"exited with {result.exit_code}"
            elif round_:
                walls[name].append(result.wall)
                peaks[name] = max(peaks[name], result.peak_kib)
    return [ColdStart(name, walls[name], peaks[name], errors.get(name)) for name in commands]


def rates(loops: dict[str, tuple[Callable[[int], None], int]], rounds: int) -> dict[str, float]:
    """Calls per second of each ``loop(count)``: best round, rounds interleaved across loops."""
    best = dict.fromkeys(loops, float("inf"))
    for _ in range(rounds):
        for name, (loop, count) in loops.items():
            start = time.perf_counter()
            loop(count)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: loops[name][1] / best[name] for name in loops}


def main() -> int:  # noqa: PLR0915 - one linear script of cases
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, for a smoke check")
    parser.add_argument("--summary", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    runs = 3 if args.quick else 9

    print(f"# s3sign sign benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}\n")

    s3sign = _bin("s3sign")
    aws = _bin("aws")
    cases = cold_starts(
        {
            "s3sign sign": [s3sign, "sign", "b-1", "k", "--size", "5"] if s3sign else None,
            "aws s3 presign": [aws, "s3", "presign", "s3://b-1/k"] if aws else None,
            "python -c boto3 presign": [sys.executable, "-c", BOTO3_SNIPPET],
        },
        runs,
    )
    ours = cases[0]
    print(f"## 1. Cold start, median of {runs} runs\n")
    print("| command | median wall | min–max | peak RSS | s3sign's time as share of it |")
    print("|---|---|---|---|---|")
    for case in cases:
        if case.error:
            print(f"| {case.name} | failed: {case.error} | | | no ratio |")
            continue
        share = f"{ours.median / case.median:.2f}×" if not ours.error else "no ratio"
        print(
            f"| {case.name} | {case.median * 1000:.0f} ms | {min(case.walls) * 1000:.0f}–"
            f"{max(case.walls) * 1000:.0f} ms | {case.peak_rss_kib / 1024:.0f} MiB | {share} |"
        )

    print("\n## 2. In-process signing (PUT with content-length), URLs per second\n")
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    presigner = Presigner(Credentials(ACCESS_KEY, SECRET_KEY), REGION)
    request = SignRequest("b-1", "logs/build-1234/step_file_1.json", size=2048000)

    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "virtual"},
            request_checksum_calculation="when_required",
        ),
    )
    params = {"Bucket": request.bucket, "Key": request.key, "ContentLength": request.size}

    def boto3_url() -> str:
        url: str = client.generate_presigned_url("put_object", Params=params, ExpiresIn=900)
        return url

    with mock.patch("botocore.auth.get_current_datetime", return_value=moment.replace(tzinfo=None)):
        same = boto3_url() == presigner.sign(request, moment).url
    if not same:
        print("boto3 and s3sign made different URLs: no ratio")
        return 1

    def ours_loop(n: int) -> None:
        for _ in range(n):
            presigner.sign(request)

    def boto3_loop(n: int) -> None:
        for _ in range(n):
            boto3_url()

    measured = rates(
        {
            "s3sign": (ours_loop, 2000 if args.quick else 10000),
            "boto3": (boto3_loop, 200 if args.quick else 1000),
        },
        rounds=3 if args.quick else 7,
    )
    ours_rate, boto_rate = measured["s3sign"], measured["boto3"]
    print("| signer | URLs/s | ratio |")
    print("|---|---|---|")
    print(f"| s3sign Presigner.sign | {ours_rate:,.0f} | {ours_rate / boto_rate:.1f}× boto3 |")
    print(f"| boto3 generate_presigned_url | {boto_rate:,.0f} | 1.0× |")
    print("\nSame URL from both (checked before timing): yes")

    aws_case = cases[1]
    aws_rate = None if aws_case.error else 1 / aws_case.median
    batch = batch_lines(
        s3sign, 20_000 if args.quick else 100_000, boto3_loop, aws_rate, 3 if args.quick else 5
    )
    if args.summary:
        rates_per_s = {"s3sign signer": ours_rate, "boto3 loop": boto_rate}
        if batch:
            rates_per_s["s3sign sign --batch (whole process)"] = batch[0]
            rates_per_s["boto3 loop, alongside the batch runs"] = batch[1]
        starts = {case.name: case.median * 1000 for case in cases if not case.error}
        document = {"cold start (ms)": starts, "URLs per second": rates_per_s}
        args.summary.write_text(json.dumps({"sign": document}))
    return 0


def batch_lines(
    s3sign: str | None,
    count: int,
    boto3_loop: Callable[[int], None],
    aws_rate: float | None,
    rounds: int,
) -> tuple[float, float] | None:
    """(s3sign's URLs/s, boto3's URLs/s): ``sign --batch FILE`` of ``count`` lines as a whole
    process and a boto3 loop, in turn each round, the best round of each (as in (2)).

    ``--batch -`` (stdin) runs in the same rounds: one process, where FILE is cut into
    one part per core.
    """
    import tempfile

    print(f"\n## 3. `s3sign sign --batch`, {count:,} lines, whole process, best of {rounds}\n")
    if s3sign is None:
        print("s3sign is not installed: no figures")
        return None
    with tempfile.TemporaryDirectory() as scratch:
        paths = []
        for lines in (count, 10 * count):
            path = Path(scratch) / f"{lines}.jsonl"
            with path.open("w") as out:
                for index in range(lines):
                    out.write(
                        f'{{"bucket": "b-1", "key": "logs/run-{index % 97}/step_{index}.json", '
                        f'"size": {1000 + index}}}\n'
                    )
            paths.append(path)
        from_file = [s3sign, "sign", "--batch", str(paths[0])]
        # Through a pipe: stdin redirected from the file would be a regular file, cut too.
        from_stdin = ["sh", "-c", 'cat "$1" | "$0" sign --batch -', s3sign, str(paths[0])]
        walls = {"file": float("inf"), "stdin": float("inf"), "boto3": float("inf")}
        peak = 0
        for _ in range(rounds):
            for name, argv in (("file", from_file), ("stdin", from_stdin)):
                result = measure_process(argv, ENV)
                if result.exit_code:
                    print(f"s3sign sign --batch failed ({result.exit_code}): {result.stderr_tail}")
                    return None
                walls[name] = min(walls[name], result.wall)
                peak = max(peak, result.peak_kib)
            start = time.perf_counter()
            boto3_loop(1000)
            walls["boto3"] = min(walls["boto3"], (time.perf_counter() - start) * count / 1000)
        more = measure_process([s3sign, "sign", "--batch", str(paths[1])], ENV)
    rate, stdin_rate, boto_rate = (count / walls[name] for name in ("file", "stdin", "boto3"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    print("| command | URLs/s | × boto3's rate |")
    print("|---|---|---|")
    print(
        f"| s3sign sign --batch FILE ({count:,} lines, {walls['file']:.2f} s; one process per "
        f"core, {cores} here) | {rate:,.0f} | {rate / boto_rate:.1f}× |"
    )
    print(
        f"| s3sign sign --batch - (the same lines through a pipe: one process) | "
        f"{stdin_rate:,.0f} | {stdin_rate / boto_rate:.1f}× |"
    )
    print(f"| boto3 generate_presigned_url loop (one process) | {boto_rate:,.0f} | 1.0× |")
    if aws_rate is None:
        print("| aws s3 presign, one process per URL | failed | no ratio |")
    else:
        share = aws_rate / boto_rate
        print(f"| aws s3 presign, one process per URL | {aws_rate:,.1f} | {share:.4f}× |")
    print(
        f"\nPeak RSS: {peak / 1024:.0f} MiB for {count:,} lines, {more.peak_kib / 1024:.0f} MiB "
        f"for {10 * count:,} lines ({10 * count / more.wall:,.0f} URLs/s)"
    )
    return rate, boto_rate


if __name__ == "__main__":
    sys.exit(main())
