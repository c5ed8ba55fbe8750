"""Resident memory of each ``cds-service serve`` worker: right after start, after warm-up, and the peak while
serving the large bench bodies (``bench/records.py``), as ``bench/run.py`` measures it and more precisely.

Columns, per worker (MB = 10^6 bytes, the unit of ``bench/run.py``'s "RSS MB/wkr"):
  VmRSS  resident pages now, shared ones included (what ``bench/run.py`` samples every 50 ms; its peak is the
         issue-16 figure)
  VmHWM  the kernel's own high-water mark of VmRSS: the exact peak, no sampling gap
  Pss    proportional set size: a page shared with the front and the other worker counts 1/n (smaps_rollup)
  USS    private pages only (Private_Clean + Private_Dirty): what the worker alone costs

Each large body is posted ``--calls`` times one at a time (``@1``), then ``--calls`` times from 4 threads at once
(``@4``, as the ``large-5000`` row of ``bench/run.py``). Loopback only; every process started is stopped.

    .venv/bin/python bench/memory.py
    .venv/bin/python bench/memory.py --json /tmp/mem.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import tempfile
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from records import padded_scenario, prefetched_call  # noqa: E402
from run import RssSampler, post, start_cds, uncapped_hooks  # noqa: E402

from cds_service.cli.fixtures import default_definition  # noqa: E402

FIELDS = ("VmRSS", "VmHWM", "Pss", "USS")


def memory(pid: int) -> dict[str, float]:
    """One worker's figures in MB, from /proc (Linux)."""
    status = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in
                                                 Path(f"/proc/{pid}/status").read_text().splitlines())
              if k in {"VmRSS", "VmHWM"}}
    rollup: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        rollup[key] = int(value.split()[0])
    kib = {**status, "Pss": rollup["Pss"], "USS": rollup["Private_Clean"] + rollup["Private_Dirty"]}
    return {key: kib[key] * 1024 / 1e6 for key in FIELDS}


def workers(master: int) -> list[int]:
    return sorted(map(int, Path(f"/proc/{master}/task/{master}/children").read_text().split()))


def snapshot(master: int) -> dict[str, float]:
    """The largest value of each figure over the workers (the bench reports the worst worker)."""
    per_worker = [memory(pid) for pid in workers(master)]
    return {key: max(m[key] for m in per_worker) for key in FIELDS}


def status(url: str, body: bytes) -> int:
    return post(url, body)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--calls", type=int, default=8, help="calls per body and phase")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    today = date.today()
    definition = default_definition("order-select")
    bodies = {"typical": padded_scenario(today), "large-5000": padded_scenario(today, 5000),
              "conditions-8000": padded_scenario(today, conditions=8000)}
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="cds-memory-") as tmp:
        work = Path(tmp)
        data = {name: json.dumps(prefetched_call(s)).encode() for name, s in bodies.items()}
        server, base = start_cds("cds", [sys.executable, "-m", "cds_service", "serve"], args, work,
                                 uncapped_hooks(work))
        url = f"{base}/cds-services/{definition.id}"
        try:
            rows["start"] = snapshot(server.popen.pid)
            for _ in range(20):
                assert post(url, data["typical"])[0] == 200
            rows["warm (typical x20)"] = snapshot(server.popen.pid)
            for name in ("large-5000", "conditions-8000"):
                for concurrency in (1, 4):
                    with RssSampler(server.popen.pid) as sampler, \
                            concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
                        statuses = list(pool.map(partial(status, url), [data[name]] * args.calls))
                    assert statuses == [200] * args.calls, statuses
                    rows[f"{name}@{concurrency}"] = {**snapshot(server.popen.pid),
                                                     "sampled peak VmRSS": sampler.peak_mb}
        finally:
            server.stop()
    sizes = {name: f"{len(body) / 1e6:.1f} MB" for name, body in data.items()}
    print(f"workers={args.workers} threads={args.threads} calls={args.calls} bodies: {sizes}")
    print("| after | " + " | ".join(FIELDS) + " | sampled peak VmRSS |\n|" + "---|" * (len(FIELDS) + 2))
    for name, row in rows.items():
        sampled = row.get("sampled peak VmRSS")
        print(f"| {name} | " + " | ".join(f"{row[k]:.1f}" for k in FIELDS)
              + f" | {'-' if sampled is None else f'{sampled:.1f}'} |")
    print("(VmRSS, Pss, USS: after the phase; VmHWM: the peak since the worker started; max over the workers)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
