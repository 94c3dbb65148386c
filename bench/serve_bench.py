"""Load on `s3sign serve`: concurrent workers asking for batches of upload URLs.

    python bench/serve_bench.py [--quick] [--clients 1,10,50] [--files 30] [--seconds 30]
        [--summary FILE] [--cluster]

Starts a local SeaweedFS and one `s3sign serve` process (one worker) on free
127.0.0.1 ports, then runs the clients, each on its own kept-alive
connection, for the given time (after a short warm-up). Prints requests/s,
signed URLs/s, p50/p99 latency and the error count, with the machine and date.
Goal (issue 3): >= 2,000 URLs/s per worker process, p99 < 200 ms, 0 errors.

Then the event loop under the heaviest batches: 200 clients each asking for
1,000 URLs at a time, and /healthz polled meanwhile on a connection of its own.
Goal (issue 14): /healthz p99 < 100 ms.

``--cluster``: the same load through HAProxy on the local cluster
(deploy/local_cluster/), first with one replica, then with three: the ratio of signed
URLs per second (issue 18).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import SECRET, backend, machine

from s3sign.local.seaweed import LocalS3

RUN = "bench-run"


async def client(
    port: int,
    request: bytes,
    stop_at: float,
    record_from: float,
    latencies: list[float],
    errors: list[str],
    answered: list[float] | None = None,
) -> None:
    """Ask again and again on one connection; ``answered``: when each good answer came."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (now := time.perf_counter()) < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            elapsed = time.perf_counter() - now
            if status != b"200" or b'"rejected"' in body:
                errors.append(status.decode())
                continue
            if answered is not None:
                answered.append(time.perf_counter())
            if now >= record_from:
                latencies.append(elapsed)
    finally:
        writer.close()


PROBE = r"""
import json, socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
sock = socket.create_connection(("127.0.0.1", port))
probe = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
delays, stop_at = [], time.perf_counter() + seconds
while (now := time.perf_counter()) < stop_at:
    sock.sendall(probe)
    answer = b""
    while b"}" not in answer:
        answer += sock.recv(65536)
    delays.append(time.perf_counter() - now)
    time.sleep(0.02)
print(json.dumps(delays))
"""


async def healthz_under_load(
    port: int, token: str, clients: int, files: int, seconds: float
) -> dict[str, float]:
    """/healthz latencies (every 20 ms, from a process of its own so that the crowd's
    client does not delay them) while ``clients`` ask for ``files`` URLs each."""
    loaded = asyncio.ensure_future(load(port, token, clients, files, seconds + 2))
    await asyncio.sleep(2)  # the crowd is in
    probe = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROBE, str(port), str(seconds), stdout=asyncio.subprocess.PIPE
    )
    output, _ = await probe.communicate()
    delays: list[float] = json.loads(output)
    crowd = await loaded
    quantiles = statistics.quantiles(delays, n=100, method="inclusive")
    return {
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
        "max_ms": max(delays) * 1000,
        "probes": len(delays),
        "crowd_requests_per_s": crowd["requests_per_s"],
        "crowd_errors": crowd["errors"],
    }


def upload_request(port: int, token: str, files: int) -> bytes:
    """One create-uploads request for ``files`` files, as raw HTTP/1.1."""
    body = json.dumps(
        {
            "files": [
                {"fileName": f"step_{i}/output.json", "fileSize": 2048000 + i} for i in range(files)
            ]
        }
    ).encode()
    return (
        f"POST /v1/runs/{RUN}/uploads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def load(port: int, token: str, clients: int, files: int, seconds: float) -> dict[str, float]:
    request = upload_request(port, token, files)
    latencies: list[float] = []
    errors: list[str] = []
    warmup = min(3.0, seconds / 5)
    start = time.perf_counter()
    await asyncio.gather(
        *(
            client(port, request, start + warmup + seconds, start + warmup, latencies, errors)
            for _ in range(clients)
        )
    )
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / seconds,
        "urls_per_s": len(latencies) * files / seconds,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
        "errors": len(errors),
    }


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds (user and system) used so far by each group of processes."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for group, members in pids.items():
        total = 0
        for pid in members:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        used[group] = total / tick
    return used


def part_pids(cluster: Any) -> dict[str, list[int]]:
    """The cluster's processes by kind, and this one (the clients)."""
    groups: dict[str, list[int]] = {"clients": [os.getpid()], "HAProxy": [], "replicas": []}
    groups["SeaweedFS"] = []
    for name, part in cluster.parts.items():
        if part.process is not None:
            kind = (
                "HAProxy"
                if name == "haproxy"
                else "replicas"
                if name.startswith("s3sign")
                else "SeaweedFS"
            )
            groups[kind].append(part.process.pid)
    return groups


def print_scaling(
    rows: list[tuple[float, dict[str, float]]],
    clients: int,
    files: int,
    seconds: float,
    errors: list[str],
) -> None:
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    print(f"# s3sign serve behind HAProxy, replicas added under load — {when}")
    print(f"machine: {machine()}; replicas, HAProxy, SeaweedFS and the clients share these cores\n")
    print(f"{clients} clients, kept-alive, {files} files a request, {seconds:.0f} s a row\n")
    groups = list(rows[0][1])
    print("| replicas | signed URLs/s | " + " | ".join(f"cores: {g}" for g in groups) + " |")
    print("|---|---|" + "---|" * len(groups))
    for count, (rate, busy) in zip((1, 3), rows, strict=True):
        cores = " | ".join(f"{busy[g]:.2f}" for g in groups)
        print(f"| {count} | {rate:,.0f} | {cores} |")
    one, three = rows[0][0], rows[1][0]
    print(f"\n3 replicas / 1: {three / one if one else 0:.2f}x; errors: {len(errors)}")
    for problem, count in Counter(errors).most_common(5):
        print(f"  {count} x {problem}")


def cluster_scaling(clients: int, files: int, seconds: float) -> int:
    """Signed URLs/s through HAProxy under one steady load: ``seconds`` with one replica,
    then replicas 2 and 3 are started (the load goes on), then ``seconds`` with three;
    and how busy each part kept the cores meanwhile. On the local cluster
    (deploy/local_cluster/cluster.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository
    from deploy.local_cluster.cluster import MAX_REPLICAS, Cluster
    from s3sign.server.tokens import mint_token

    answered: list[float] = []
    errors: list[str] = []
    finished = threading.Event()
    windows: list[tuple[float, dict[str, float]]] = []  # (start, CPU seconds so far)
    with tempfile.TemporaryDirectory() as data, Cluster(Path(data), replicas=1) as cluster:
        token, _ = mint_token(RUN, 3600, cluster.secret.encode())
        port = int(cluster.backend_url.rsplit(":", 1)[1])
        request = upload_request(port, token, files)

        async def steady() -> None:
            far = time.perf_counter() + 3600
            tasks = [
                asyncio.create_task(client(port, request, far, far, [], errors, answered))
                for _ in range(clients)
            ]
            while not finished.is_set():
                await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(outcome, Exception):  # a connection lost: an error, said
                    errors.append(f"{type(outcome).__name__}: {outcome}")

        def sample() -> None:
            windows.append((time.perf_counter(), cpu_seconds(part_pids(cluster))))

        # The load on a thread of its own; the replicas started from this one, which
        # lives as long as they do (the kernel kills a part when the thread that started
        # it ends: die_with_parent).
        loading = threading.Thread(target=asyncio.run, args=(steady(),))
        loading.start()
        time.sleep(3)  # warm-up
        sample()
        time.sleep(seconds)
        sample()
        for number in range(2, MAX_REPLICAS + 1):
            cluster.restart(f"s3sign-{number}")  # started, and ready
        time.sleep(3)  # HAProxy's health checks (every second) take them in
        sample()
        time.sleep(seconds)
        sample()
        finished.set()
        loading.join()
    rows = []
    for (begin, before), (end, after) in (windows[0:2], windows[2:4]):
        rate = sum(begin <= at < end for at in answered) * files / (end - begin)
        busy = {group: (after[group] - before[group]) / (end - begin) for group in after}
        rows.append((rate, busy))
    print_scaling(rows, clients, files, seconds, errors)
    return 0 if not errors else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 seconds instead of 30")
    parser.add_argument("--clients", default="1,10,50", help="client counts, comma-separated")
    parser.add_argument("--summary", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--files", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="through HAProxy on the local cluster: 1 replica, then 3 (the last client count)",
    )
    args = parser.parse_args()
    seconds = 5.0 if args.quick else args.seconds
    if args.cluster:
        return cluster_scaling(int(args.clients.split(",")[-1]), args.files, seconds)

    from s3sign.server.tokens import mint_token

    token, _ = mint_token(RUN, 3600, SECRET.encode())
    with (
        tempfile.TemporaryDirectory() as data,
        LocalS3(Path(data), bucket="bench") as store,
        backend(store) as url,
    ):
        port = int(url.rsplit(":", 1)[1])
        counts = [int(count) for count in args.clients.split(",")]
        results = {
            count: asyncio.run(load(port, token, count, args.files, seconds)) for count in counts
        }
        health = asyncio.run(healthz_under_load(port, token, 200, 1000, seconds))

    print(f"# s3sign serve load — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}; server, clients and SeaweedFS share these cores\n")
    print(f"{args.files} files per request, {seconds:.0f} s per row, 1 worker\n")
    print("| clients | requests/s | signed URLs/s | p50 | p99 | errors |")
    print("|---|---|---|---|---|---|")
    for count, result in results.items():
        print(
            f"| {count} | {result['requests_per_s']:,.0f} | {result['urls_per_s']:,.0f} | "
            f"{result['p50_ms']:.1f} ms | {result['p99_ms']:.1f} ms | {result['errors']:.0f} |"
        )
    worst = results[max(results)]
    met = worst["errors"] == 0 and worst["urls_per_s"] >= 2000 and worst["p99_ms"] < 200
    print(
        f"\ngoal at {max(results)} clients (>= 2,000 URLs/s, p99 < 200 ms, 0 errors): "
        f"{'met' if met else 'NOT met'}"
    )
    print(
        f"\n/healthz every 20 ms while 200 clients ask for 1,000 URLs each "
        f"({health['crowd_requests_per_s']:,.1f} such requests/s, "
        f"{health['crowd_errors']:.0f} errors): p50 {health['p50_ms']:.1f} ms, "
        f"p99 {health['p99_ms']:.1f} ms, max {health['max_ms']:.1f} ms "
        f"({health['probes']:.0f} probes); goal p99 < 100 ms: "
        f"{'met' if health['p99_ms'] < 100 else 'NOT met'}"
    )
    if args.summary:
        figures = {str(k): v for k, v in results.items()}
        args.summary.write_text(json.dumps({"serve": figures, "healthz": {"under load": health}}))
    return 0 if all(result["errors"] == 0 for result in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
