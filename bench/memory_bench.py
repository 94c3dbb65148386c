"""Memory of `s3sign push` in the number of files, against s5cmd, on one local SeaweedFS.

    python bench/memory_bench.py [--quick] [--million] [--summary FILE]

Pushes trees of 10-byte files (100 folders) with `s3sign push` (8 uploads in flight) and
with `s5cmd cp` (8 workers), one after the other, and prints each one's wall time and
peak RSS (GNU time), and how s3sign's peak grows per 1,000 files. Sizes: 10,000 and
100,000 files (10,000 only with --quick); --million adds 1,000,000, which takes the
store about 20 minutes on 2 cores (s5cmd is not run at that size). The target (issue 15):
peak RSS at most 64 MiB at 100,000 files and at 1,000,000, with no loss of speed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from harness import SECRET, backend, measure_process, store_environment

from s3sign.local.seaweed import LocalS3
from s3sign.server.tokens import mint_token

FOLDERS = 100
PEER_UP_TO = 100_000  # s5cmd's memory is flat; at a million files it would double the time


def tree(root: Path, count: int) -> Path:
    """``count`` files of 10 bytes in ``FOLDERS`` folders."""
    for folder in range(FOLDERS):
        (root / f"d{folder:03}").mkdir(parents=True)
    for index in range(count):
        path = root / f"d{index % FOLDERS:03}" / f"f{index:07}.log"
        with open(path, "wb") as handle:
            handle.write(b"0123456789")
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 files only")
    parser.add_argument("--million", action="store_true", help="also 1,000,000 files")
    parser.add_argument("--summary", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    sizes = [10_000] if args.quick else [10_000, 100_000]
    if args.million:
        sizes.append(1_000_000)
    s5cmd = shutil.which("s5cmd")
    figures: dict[str, dict[str, float]] = {}
    print("## 5. Memory in the number of files (10-byte files, 8 in flight)\n")
    print("| files | s3sign push | peak RSS | s5cmd cp | peak RSS | s3sign's time as share |")
    print("|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        with LocalS3(scratch / "store", bucket="bench") as store:
            env = store_environment(store)
            with backend(store) as url:
                for count in sizes:
                    root = tree(scratch / f"tree-{count}", count)
                    run_id = f"memory-{count}-{time.monotonic_ns()}"
                    token, _ = mint_token(run_id, 7200, SECRET.encode())
                    ours = measure_process(
                        [
                            "s3sign",
                            "-q",
                            "push",
                            run_id,
                            str(root),
                            "--base",
                            str(root),
                            "--backend",
                            url,
                            "--token",
                            token,
                        ],
                        env,
                    )
                    peer = (
                        measure_process(
                            [
                                s5cmd,
                                "--endpoint-url",
                                store.endpoint_url,
                                "--numworkers",
                                "8",
                                "cp",
                                f"{root}/*",
                                f"s3://bench/s5-{count}/",
                            ],
                            env,
                        )
                        if s5cmd and count <= PEER_UP_TO
                        else None
                    )
                    if ours.exit_code != 0:
                        print(f"| {count:,} | failed: {ours.stderr_tail} | | | | |")
                        continue
                    peer_cells = (
                        f"{peer.wall:.1f} s | {peer.peak_kib / 1024:.0f} MiB"
                        if peer and peer.exit_code == 0
                        else "not measured | "
                    )
                    share = f"{ours.wall / peer.wall:.2f}×" if peer and peer.exit_code == 0 else "—"
                    print(
                        f"| {count:,} | {ours.wall:.1f} s | {ours.peak_kib / 1024:.0f} MiB | "
                        f"{peer_cells} | {share} |"
                    )
                    figures[f"{count} files"] = {
                        "s3sign seconds": ours.wall,
                        "s3sign peak MiB": ours.peak_kib / 1024,
                        **(
                            {"s5cmd seconds": peer.wall, "s5cmd peak MiB": peer.peak_kib / 1024}
                            if peer and peer.exit_code == 0
                            else {}
                        ),
                    }
    peaks = [(int(k.split()[0]), v["s3sign peak MiB"]) for k, v in figures.items()]
    if len(peaks) >= 2:
        (small, low), (large, high) = peaks[0], peaks[-1]
        growth = (high - low) * 1024 / ((large - small) / 1000)
        print(
            f"\ns3sign's peak RSS grows {growth:.1f} KiB per 1,000 files ({small:,} to {large:,})."
        )
        figures["growth"] = {"KiB per 1,000 files": growth}
    if args.summary:
        args.summary.write_text(json.dumps({"memory": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
