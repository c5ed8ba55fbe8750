"""Closed-loop HTTP load generator: N client processes, one keep-alive connection each, for a fixed duration.

Runs apart from the server (``bench/run.py`` starts it) so that its CPU time is not the server's, and each
connection is its own process so that no client waits for another's GIL before it reads its answer (design
choice: threads in one process can add that wait to a measured latency; an A/B run on a busy machine,
baseline and typical at concurrency 4, showed no difference beyond the noise).
Each client sends the same request again as soon as the previous answer is read; latency is measured from
sending the request to reading the whole body. The first ``--warmup`` seconds are not counted (lazy
imports, first connections). Prints one JSON object on stdout.

    python bench/loadgen.py --url http://127.0.0.1:8080/cds-services/x --body body.json -c 4 -d 10
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several short runs (each made with ``--latencies``) as one: counts summed, percentiles over all their
    calls. The runs' latency lists are taken out (they are long)."""
    latencies = sorted(value for run in runs for value in run.pop("latencies_ms"))
    statuses: Counter[str] = Counter()
    for run in runs:
        statuses.update(run["statuses"])
    ok = statuses.get("200", 0)
    return {"requests": len(latencies), "ok": ok, "errors": len(latencies) - ok, "statuses": dict(statuses),
            **{f"p{q}_ms": percentile(latencies, q / 100) for q in (50, 95, 99)},
            "max_ms": latencies[-1] if latencies else float("nan")}


def worker(host: str, port: int, path: str, body: bytes | None, start: float, count_from: float, stop: float,
           latencies: list[float], statuses: Counter[str], lock: threading.Lock) -> None:
    method = "POST" if body is not None else "GET"
    headers = {"Content-Type": "application/json"} if body is not None else {}
    mine: list[float] = []
    seen: Counter[str] = Counter()
    connection = http.client.HTTPConnection(host, port, timeout=30)
    while time.perf_counter() < start:
        time.sleep(0.001)
    while True:
        sent = time.perf_counter()
        if sent >= stop:
            break
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = str(response.status)
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
        except (OSError, http.client.HTTPException) as exc:
            status = type(exc).__name__
            connection.close()
        if sent >= count_from:
            mine.append(time.perf_counter() - sent)
            seen[status] += 1
    connection.close()
    with lock:
        latencies.extend(mine)
        statuses.update(seen)


def client(args: tuple[Any, ...], results: Connection) -> None:
    """One client process: ``worker`` on its own connection, its latencies and statuses sent back."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    worker(*args, latencies, statuses, threading.Lock())
    results.send((latencies, dict(statuses)))
    results.close()


def run(url: str, body: bytes | None, concurrency: int, duration: float, warmup: float,
        with_latencies: bool = False) -> dict[str, object]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    start = time.perf_counter() + 0.5  # every client starts and connects, then all begin together
    count_from = start + warmup
    stop = count_from + duration
    forked = multiprocessing.get_context("fork")  # perf_counter is the system's monotonic clock: shared
    clients, pipes = [], []
    for _ in range(concurrency):
        ours, theirs = forked.Pipe(duplex=False)
        process = forked.Process(target=client, args=((parts.hostname, parts.port, path, body, start, count_from,
                                                      stop), theirs))
        process.start()
        theirs.close()
        clients.append(process)
        pipes.append(ours)
    for pipe in pipes:
        mine, seen = pipe.recv()
        latencies.extend(mine)
        statuses.update(seen)
    for process in clients:
        process.join()
    latencies.sort()
    ok = statuses.get("200", 0)
    return {
        **({"latencies_ms": [round(value * 1000, 3) for value in latencies]} if with_latencies else {}),
        "requests": len(latencies),
        "ok": ok,
        "errors": len(latencies) - ok,
        "statuses": dict(statuses),
        "rps": len(latencies) / duration,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", type=Path, help="file POSTed as application/json (GET when absent)")
    parser.add_argument("-c", "--concurrency", type=int, default=4)
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds run before measuring")
    parser.add_argument("--latencies", action="store_true", help="also print every latency (ms, sorted)")
    args = parser.parse_args()
    body = args.body.read_bytes() if args.body else None
    print(json.dumps(run(args.url, body, args.concurrency, args.duration, args.warmup, args.latencies)))


if __name__ == "__main__":
    main()
