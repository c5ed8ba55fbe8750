"""End-to-end benchmark of the service under `cds-service serve` on loopback; prints one table (``make bench``).

Rows (each: requests/s, latency percentiles, errors, peak RSS per worker, cards in the answer):
  1 baseline      the typical row's request (the same bytes) answered by a trivial Flask app that parses it and
                  returns no cards, under the same ``cds-service serve``: issue 16's anchor, "the same server
                  stack answering the same body with no work". baseline-empty: the same app sent ``{}`` (the
                  anchor of the runs before 2026-12-01; info only). baseline@1: at concurrency 1, measured in
                  turn with typical@1, for the latency ratio (info)
  2 typical       order-select, full prefetch, the seed scenario padded to ~60 resources
  3 large-500     the same with 500 Observations;  large-5000: with 5,000 Observations;
    conditions-8000: with 8,000 Conditions. Rows 2-3 are served with the hook templates' ``_count`` removed
    (an operator's hook file may name none), since the service cuts a prefetch key at its template's count
  3b flood-10000   the typical chart plus 10,000 Observations sent to the service as shipped (``_count=200``):
                  the cut at the count keeps it near the typical row
  4 fetch         order-select without prefetch: the service reads sekmet-fhir through a proxy adding
                  ``--delay-ms`` per request (bench/delay_proxy.py)
  5 query         the slowest single FHIR query of the hook's prefetch templates, sent directly (sequentially)
                  through the same proxy: the floor for row 4 when the service's reads run in parallel
    query-all     every template's query sent at once (one connection each), wall time until the last
                  answer: the floor including the FHIR server's own handling of 10 concurrent searches.
                  query-all@4: four such callers at the same time, the load the fetch row puts on the FHIR
                  server and the proxy (both run on this machine too): the floor for row 4 at concurrency 4
The baseline and typical rows (their ratio is a target) are measured in turn, ``IN_TURN`` short runs each
alternated, both servers up: the machine's speed drifts by a third within minutes here, and rows measured a
minute apart compared that drift as much as the service. A row named ``name@1`` runs at concurrency 1 (service
time without queueing: the per-resource cost and the fetch overhead are computed from those); other rows run at
``--concurrency``.

Everything listens on 127.0.0.1 only, and every process started here is stopped at the end. The load
comes from a separate process (bench/loadgen.py). Defaults take about 2 minutes; ``--duration`` scales it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from loadgen import pooled  # noqa: E402
from records import padded_scenario, prefetched_call, resource_count  # noqa: E402

from cds_service.cli.fixtures import default_definition, hook_request  # noqa: E402

FHIR_VENV = REPO / ".venv-fhir"
IN_TURN = 4  # short runs each of the baseline and the typical row, alternated (``load_in_turn``)
TARGETS = {"p99_typical_ms": 10.0, "p50_typical_at_1_ms": 2.5, "throughput_ratio": 0.25, "fetch_overhead_ms": 15.0,
           "per_resource_ratio": 1.2, "conditions_8000_ms": 300.0, "rss_mb": 150.0}  # issue 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A subprocess in its own session, logging to a file (a pipe nobody reads would block it)."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = self.log_path.open("wb")
        self.popen = subprocess.Popen(argv, cwd=REPO, env={**os.environ, **(env or {})}, stdout=self.log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {url} within {timeout} s")

    def stop(self) -> None:
        """SIGTERM to this process's own group (the front and its workers), SIGKILL after 10 s."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self.log.close()


def worker_rss(master_pid: int) -> dict[int, int]:
    """Resident bytes of each child of the front (the workers): psutil if installed, else Linux /proc."""
    try:
        import psutil
    except ImportError:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
        rss = {}
        for pid in map(int, children):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            kib = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), "0")
            rss[pid] = int(kib) * 1024
        return rss
    rss = {}
    for child in psutil.Process(master_pid).children(recursive=True):
        try:
            rss[child.pid] = child.memory_info().rss
        except psutil.Error:
            continue
    return rss


class RssSampler:
    """Peak resident memory of each worker (children of the front), sampled every 50 ms."""

    def __init__(self, master_pid: int) -> None:
        self.master_pid = master_pid
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid, rss in worker_rss(self.master_pid).items():
                self.peaks[pid] = max(rss, self.peaks.get(pid, 0))
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return max(self.peaks.values(), default=0) / 1e6


def post(url: str, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:300].decode(errors="replace")


def sanity_call(url: str, body_file: Path) -> int | None:
    """One call that must answer 200; the number of cards it gave."""
    status, answer = post(url, body_file.read_bytes())
    if status != 200:
        print(f"  warning: sanity call answered {status}: {answer}", file=sys.stderr)
    return len(answer.get("cards", [])) if isinstance(answer, dict) else None


def loadgen(url: str, body_file: Path, concurrency: int, seconds: float, warmup: float,
            latencies: bool = False) -> dict[str, Any]:
    """bench/loadgen.py's summary of one closed-loop run (``latencies``: with every latency, sorted)."""
    out = subprocess.run([sys.executable, str(BENCH / "loadgen.py"), "--url", url, "--body", str(body_file),
                          "-c", str(concurrency), "-d", str(seconds), "--warmup", str(warmup),
                          *(["--latencies"] if latencies else [])], check=True, capture_output=True, text=True,
                         timeout=seconds + warmup + 60).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def load(url: str, body_file: Path, args: argparse.Namespace, server: Process, concurrency: int) -> dict[str, Any]:
    """One sanity call (must be 200), then the timed run from loadgen.py, with RSS sampled meanwhile."""
    cards = sanity_call(url, body_file)
    with RssSampler(server.popen.pid) as rss:
        result = loadgen(url, body_file, concurrency, args.duration, args.warmup)
    result.update(rss_mb=rss.peak_mb, cards=cards, concurrency=concurrency)
    return result


def load_in_turn(rows: dict[str, tuple[str, Path, Process]], args: argparse.Namespace,
                 concurrency: int) -> dict[str, dict[str, Any]]:
    """Rows whose ratio is a target (the baseline and the typical call), measured in ``IN_TURN`` short runs
    each, alternated, so the machine's drift (a third within minutes here) touches both alike: req/s over all
    their measured time, percentiles over all their calls, peak RSS over all runs."""
    cards = {name: sanity_call(url, body) for name, (url, body, _) in rows.items()}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in rows}
    peaks: dict[str, list[float]] = {name: [] for name in rows}
    for turn in range(IN_TURN):
        for name in list(rows) if turn % 2 == 0 else list(reversed(rows)):  # neither always goes first
            url, body, server = rows[name]
            with RssSampler(server.popen.pid) as rss:
                runs[name].append(loadgen(url, body, concurrency, args.duration / IN_TURN, min(args.warmup, 0.5),
                                          latencies=True))
            peaks[name].append(rss.peak_mb)
    results = {}
    for name, ours in runs.items():
        whole = pooled(ours)
        results[name] = {**whole, "rps": whole["requests"] / args.duration, "runs": ours,
                         "rss_mb": max(peaks[name], default=float("nan")), "cards": cards[name],
                         "concurrency": concurrency}
    return results


def direct_queries(base: str, patient_id: str, templates: dict[str, str], repeat: int) -> dict[str, Any]:
    """Each prefetch query sent ``repeat`` times, one at a time, through the proxy; the slowest by p50."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    results = {}
    for key, template in templates.items():
        path = f"{parts.path}/{template.replace('{{context.patientId}}', patient_id)}"
        times = []
        for i in range(repeat + 2):
            started = time.perf_counter()
            connection.request("GET", path, headers={"Accept": "application/fhir+json"})
            response = connection.getresponse()
            response.read()
            if i >= 2:  # two warm-up reads
                times.append(time.perf_counter() - started)
            if response.status != 200:
                raise RuntimeError(f"direct query {key} answered {response.status}")
        times.sort()
        results[key] = times
    connection.close()
    slowest = max(results, key=lambda k: results[k][len(results[k]) // 2])
    times = results[slowest]

    def pct(fraction: float) -> float:
        return times[min(len(times) - 1, max(0, round(fraction * len(times)) - 1))] * 1000

    return {"query": slowest, "requests": len(times), "ok": len(times), "errors": 0,
            "rps": len(times) / sum(times), "p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "rss_mb": float("nan"), "cards": None, "concurrency": 1}


def parallel_queries(base: str, patient_id: str, templates: dict[str, str], repeat: int,
                     callers: int = 1) -> dict[str, Any]:
    """All prefetch queries at once, as the service sends them; wall time until every answer is read. With
    ``callers`` above 1, that many callers do so at the same time, each ``repeat`` times (closed loop)."""
    import concurrent.futures
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    paths = [f"{parts.path}/{t.replace('{{context.patientId}}', patient_id)}" for t in templates.values()]
    times: list[float] = []

    def caller() -> None:
        connections = [http.client.HTTPConnection(parts.hostname, parts.port, timeout=30) for _ in paths]

        def get(index: int) -> None:
            connections[index].request("GET", paths[index], headers={"Accept": "application/fhir+json"})
            response = connections[index].getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"direct query {paths[index]} answered {response.status}")

        with concurrent.futures.ThreadPoolExecutor(len(paths)) as pool:
            for i in range(repeat + 2):
                started = time.perf_counter()
                list(pool.map(get, range(len(paths))))
                if i >= 2:  # two warm-up rounds
                    times.append(time.perf_counter() - started)
        for connection in connections:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(callers) as group:
        list(group.map(lambda _: caller(), range(callers)))  # a caller's error is raised here
    times.sort()

    def pct(fraction: float) -> float:
        return times[min(len(times) - 1, max(0, round(fraction * len(times)) - 1))] * 1000

    label = f"{len(paths)} at once" + (f", {callers} callers" if callers > 1 else "")
    return {"query": label, "requests": len(times), "ok": len(times), "errors": 0,
            "rps": len(times) / sum(times) * callers, "p50_ms": pct(0.5), "p95_ms": pct(0.95),
            "p99_ms": pct(0.99), "rss_mb": float("nan"), "cards": None, "concurrency": len(paths) * callers}


def start_cds(name: str, argv_prefix: list[str], args: argparse.Namespace, work: Path,
              hooks_dir: Path | None = None) -> tuple[Process, str]:
    port = free_port()
    env = {"CDS_DATA_DIR": str(work / name), "CDS_WORKERS": str(args.workers)}
    if hooks_dir:
        env["CDS_HOOKS_DIR"] = str(hooks_dir)
    (work / name).mkdir()
    server = Process(name, [*argv_prefix, "--host", "127.0.0.1", "--port", str(port),
                            "--workers", str(args.workers), "--threads", str(args.threads)], work, env)
    base = f"http://127.0.0.1:{port}"
    server.wait_http(f"{base}/healthz")
    return server, base


def start_fhir(work: Path, delay_ms: float) -> tuple[list[Process], str, str]:
    """sekmet-fhir (simulator off) on a free port, and the delay proxy in front of it."""
    port, proxy_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{port}/fhir"
    config = work / "sekmet.yaml"
    config.write_text(f"base_url: {upstream}\nhost: 127.0.0.1\nport: {port}\ndata_dir: {work / 'sekmet'}\n"
                      "simulator:\n  enabled: false\nlog_inbound: false\nvalidation:\n  inbound: strict\n")
    fhir = Process("sekmet", [str(FHIR_VENV / "bin" / "uvicorn"), "sekmet.main:app_factory", "--factory",
                              "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                              "--no-access-log"], work, {"SEKMET_CONFIG": str(config)})
    processes = [fhir]
    fhir.wait_http(f"{upstream}/metadata")
    proxy = Process("proxy", [sys.executable, str(BENCH / "delay_proxy.py"), "--port", str(proxy_port),
                              "--upstream", upstream, "--delay-ms", str(delay_ms)], work)
    processes.append(proxy)
    proxied = f"http://127.0.0.1:{proxy_port}/fhir"
    proxy.wait_http(f"{proxied}/metadata")
    return processes, upstream, proxied


def uncapped_hooks(work: Path) -> Path:
    """The shipped hook files with ``_count`` removed from their templates (``records.uncapped``)."""
    hooks = work / "hooks-uncapped"
    hooks.mkdir()
    for path in (REPO / "hooks").glob("*.json"):
        (hooks / path.name).write_text(re.sub(r"&_count=\d+", "", path.read_text()))
    return hooks


def fhir_transaction(base: str, bundle: dict[str, Any]) -> None:
    request = urllib.request.Request(base, data=json.dumps(bundle).encode(),
                                     headers={"Content-Type": "application/fhir+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def machine_probe(times: int = 300) -> dict[str, float]:
    """Best and p50 ms of a fixed piece of pure-Python work (integer arithmetic, no I/O), run ``times`` times.

    Why: this machine's speed moves within minutes (the same loop's p50 measured 2.0 and 3.4 ms an hour apart,
    its best 1.75 both times), and the latency targets are absolute. Taken before and after the rows, it says
    what the machine was doing while they ran; it judges nothing."""
    def work() -> int:
        total = 0
        for i in range(60_000):
            total += i * i
        return total

    taken = []
    for _ in range(times):
        started = time.perf_counter()
        work()
        taken.append((time.perf_counter() - started) * 1000)
    taken.sort()
    return {"best_ms": taken[0], "p50_ms": taken[len(taken) // 2]}


def print_table(rows: dict[str, dict[str, Any]], sizes: dict[str, int], args: argparse.Namespace,
                machine: dict[str, dict[str, float]]) -> None:
    print(f"\nworkers={args.workers} threads={args.threads} "
          f"duration={args.duration}s delay={args.delay_ms}ms cpus={os.cpu_count()}")
    print("machine (a fixed pure-Python loop, ms): " + "; ".join(
        f"{when} best {m['best_ms']:.2f}, p50 {m['p50_ms']:.2f} ({m['p50_ms'] / m['best_ms']:.2f} x best)"
        for when, m in machine.items()))
    header = ("row", "resources", "conc", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "RSS MB/wkr", "cards")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name, r in rows.items():
        label = f"{name} ({r['query']})" if "query" in r else name
        print("| " + " | ".join([label, fmt(sizes.get(name)), fmt(r["concurrency"]), fmt(r["rps"]),
                                 fmt(r["p50_ms"], 2), fmt(r["p95_ms"], 2), fmt(r["p99_ms"], 2),
                                 fmt(r["errors"]), fmt(r["rss_mb"]), fmt(r["cards"])]) + " |")
    print()
    checks: list[tuple[str, float, str, bool]] = []
    if "baseline" in rows and "typical" in rows:
        ratio = rows["typical"]["rps"] / rows["baseline"]["rps"]
        checks.append(("throughput typical/baseline", ratio, f">= {TARGETS['throughput_ratio']:.2f}",
                       ratio >= TARGETS["throughput_ratio"]))
    if "typical" in rows:
        p99 = rows["typical"]["p99_ms"]
        checks.append(("typical p99 ms", p99, f"<= {TARGETS['p99_typical_ms']}", p99 <= TARGETS["p99_typical_ms"]))
    if "typical" in rows and "baseline" in rows:  # latency against the anchor measured in turn: less of the minute
        checks.append(("typical p99 / baseline p99", rows["typical"]["p99_ms"] / rows["baseline"]["p99_ms"], "info",
                       True))
    if "typical@1" in rows:
        p50 = rows["typical@1"]["p50_ms"]
        checks.append(("typical@1 p50 ms", p50, f"<= {TARGETS['p50_typical_at_1_ms']}",
                       p50 <= TARGETS["p50_typical_at_1_ms"]))
    if "typical@1" in rows and "baseline@1" in rows:
        checks.append(("typical@1 p50 / baseline@1 p50", rows["typical@1"]["p50_ms"] / rows["baseline@1"]["p50_ms"],
                       "info", True))
    if "conditions-8000@1" in rows:
        p50 = rows["conditions-8000@1"]["p50_ms"]
        checks.append(("8,000 Conditions p50 ms", p50, f"<= {TARGETS['conditions_8000_ms']}",
                       p50 <= TARGETS["conditions_8000_ms"]))
    if "flood-10000@1" in rows and "typical@1" in rows:
        checks.append(("10,000 Observations over _count p50 / typical@1 p50",
                       rows["flood-10000@1"]["p50_ms"] / rows["typical@1"]["p50_ms"], "info", True))
    for name in ("fetch", "fetch@1"):
        if name in rows and "query" in rows:
            gap = rows[name]["p50_ms"] - rows["query"]["p50_ms"]
            checks.append((f"{name} p50 - slowest query p50, ms", gap, f"<= {TARGETS['fetch_overhead_ms']}",
                           gap <= TARGETS["fetch_overhead_ms"]))
            checks.append((f"{name} p50 / slowest query p50", rows[name]["p50_ms"] / rows["query"]["p50_ms"],
                           "info", True))
        if name in rows and "query-all" in rows:
            gap = rows[name]["p50_ms"] - rows["query-all"]["p50_ms"]
            checks.append((f"{name} p50 - all queries at once p50, ms", gap, "info", True))
        callers = rows[name]["concurrency"] if name in rows else 1
        if callers > 1 and f"query-all@{callers}" in rows:  # the same load on the FHIR side, without the service
            gap = rows[name]["p50_ms"] - rows[f"query-all@{callers}"]["p50_ms"]
            checks.append((f"{name} p50 - all queries at once by {callers} callers p50, ms", gap, "info", True))
    if {"typical@1", "large-500@1", "large-5000@1"} <= rows.keys():
        def cost(name: str) -> float:  # marginal ms per resource above the typical chart, no queueing
            return (rows[name]["p50_ms"] - rows["typical@1"]["p50_ms"]) / (sizes[name] - sizes["typical@1"])
        ratio = cost("large-5000@1") / cost("large-500@1")
        checks.append(("ms/resource at 500", cost("large-500@1"), "info", True))
        checks.append(("ms/resource at 5000", cost("large-5000@1"), "info", True))
        checks.append(("per-resource cost 5000/500", ratio, f"<= {TARGETS['per_resource_ratio']}",
                       ratio <= TARGETS["per_resource_ratio"]))
    peak = max((r["rss_mb"] for r in rows.values() if not math.isnan(r["rss_mb"])), default=float("nan"))
    checks.append(("peak RSS MB per worker", peak, f"<= {TARGETS['rss_mb']}", peak <= TARGETS["rss_mb"]))
    print("| check | value | target | verdict |\n|---|---|---|---|")
    for name, value, target, ok in checks:
        verdict = "" if target == "info" else ("PASS" if ok else "FAIL")
        print(f"| {name} | {value:.3f} | {target} | {verdict} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="serve --threads (its default)")
    parser.add_argument("-c", "--concurrency", type=int, default=4)
    parser.add_argument("-d", "--duration", type=float, default=8.0, help="measured seconds per row")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--delay-ms", type=float, default=50.0, help="latency the proxy adds per FHIR request")
    parser.add_argument("--query-repeat", type=int, default=20, help="sequential reads per query in row 5")
    parser.add_argument("--rows", default="baseline,baseline-empty,baseline@1,typical,typical@1,large-500@1,"
                                          "large-5000@1,large-5000,conditions-8000@1,flood-10000@1,fetch,fetch@1,"
                                          "query,query-all,query-all@4")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    wanted = [row for row in args.rows.split(",") if row]
    today = date.today()
    definition = default_definition("order-select")
    scenarios = {"typical": padded_scenario(today), "large-500": padded_scenario(today, 500),
                 "large-5000": padded_scenario(today, 5000), "conditions-8000": padded_scenario(today, conditions=8000)}
    flood = padded_scenario(today, 10_000)  # sent to the service as shipped: cut at the templates' _count
    sizes = {row: resource_count(scenarios.get(row.split("@")[0], flood if row.startswith("flood") else None)
                                 or scenarios["typical"])
             for row in wanted if row not in {"baseline-empty", "query"} and not row.startswith("query-all")}
    rows: dict[str, dict[str, Any]] = {}
    machine = {"before the rows": machine_probe()}
    cleanup: list[Callable[[], None]] = []

    def concurrency(row: str) -> int:
        return int(row.split("@")[1]) if "@" in row else args.concurrency

    with tempfile.TemporaryDirectory(prefix="cds-bench-") as tmp:
        work = Path(tmp)

        def body_file(name: str, body: dict[str, Any]) -> Path:
            path = work / f"{name}.json"
            path.write_text(json.dumps(body))
            return path

        try:
            bodies = {name: body_file(name, prefetched_call(scenario)) for name, scenario in scenarios.items()}
            serve = [sys.executable, "-m", "cds_service", "serve"]
            uncapped_rows = any(row.split("@")[0] in scenarios for row in wanted)
            if uncapped_rows:
                cds, base = start_cds("cds-uncapped", serve, args, work, uncapped_hooks(work))
                cleanup.append(cds.stop)
                url = f"{base}/cds-services/{definition.id}"
            if {"baseline", "baseline-empty", "baseline@1"} & set(wanted):
                server, floor = start_cds("baseline", [sys.executable, str(BENCH / "baseline_app.py")], args, work)
                cleanup.append(server.stop)
                floor_url = f"{floor}/cds-services/{definition.id}"
                if {"baseline", "typical"} <= set(wanted):  # the ratio's two rows: in turn
                    rows.update(load_in_turn({"baseline": (floor_url, bodies["typical"], server),
                                              "typical": (url, bodies["typical"], cds)}, args, args.concurrency))
                elif "baseline" in wanted:
                    rows["baseline"] = load(floor_url, bodies["typical"], args, server, args.concurrency)
                if "baseline-empty" in wanted:
                    rows["baseline-empty"] = load(floor_url, body_file("empty", {}), args, server, args.concurrency)
                if {"baseline@1", "typical@1"} <= set(wanted):  # the latency ratio's two rows: in turn too
                    rows.update(load_in_turn({"baseline@1": (floor_url, bodies["typical"], server),
                                              "typical@1": (url, bodies["typical"], cds)}, args, 1))
                elif "baseline@1" in wanted:
                    rows["baseline@1"] = load(floor_url, bodies["typical"], args, server, 1)
                server.stop()
            if uncapped_rows:
                for row in wanted:
                    if row.split("@")[0] in scenarios and row not in rows:
                        rows[row] = load(url, bodies[row.split("@")[0]], args, cds, concurrency(row))
                cds.stop()
            cds, base = start_cds("cds", serve, args, work)
            cleanup.append(cds.stop)
            url = f"{base}/cds-services/{definition.id}"
            for row in wanted:
                if row.startswith("flood"):
                    body = body_file("flood", prefetched_call(flood))
                    rows[row] = load(url, body, args, cds, concurrency(row))
            if any(row.split("@")[0] in {"fetch", "query", "query-all"} for row in wanted):
                processes, upstream, proxied = start_fhir(work, args.delay_ms)
                cleanup.extend(p.stop for p in processes)
                fhir_transaction(upstream, scenarios["typical"].bundle)
                fetch_body = body_file("fetch", hook_request(scenarios["typical"], "order-select",
                                                             with_prefetch=False, fhir_server=proxied,
                                                             definition=definition))
                for row in wanted:
                    if row.split("@")[0] == "fetch":
                        rows[row] = load(url, fetch_body, args, cds, concurrency(row))
                if "query" in wanted:
                    rows["query"] = direct_queries(proxied, scenarios["typical"].patient_id,
                                                   dict(definition.prefetch), args.query_repeat)
                for row in wanted:
                    if row.split("@")[0] == "query-all":
                        rows[row] = parallel_queries(proxied, scenarios["typical"].patient_id,
                                                     dict(definition.prefetch), args.query_repeat, concurrency(row)
                                                     if "@" in row else 1)
        finally:
            for stop in reversed(cleanup):
                stop()
    rows = {row: rows[row] for row in wanted if row in rows}  # in the order asked (some were measured in turn)
    machine["after them"] = machine_probe()
    print_table(rows, sizes, args, machine)
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "sizes": sizes,
                                         "machine": machine, "rows": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
