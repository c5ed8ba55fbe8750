"""CPU a hook call costs in this checkout against another one, each in a process of its own, rounds alternated.

Why: on a shared 2-core machine the speed of the whole machine drifts by a third within minutes, so two runs of
``bench/run.py`` taken a few minutes apart cannot tell a 5 % change from the noise. Here each version of the
service runs in its own worker-like process (``cli/workers.call_app`` on a pickled request, as a ``cds-service
serve`` worker runs a call, the hook files without ``_count`` as ``bench/run.py`` serves its charts), started from
its own checkout with its own compiled modules, and their rounds alternate, so drift touches both alike; the
answer is the ratio of the medians of thread CPU time. Both must give the same answer bytes, or the comparison
stops. (One process cannot hold both: a checkout's compiled modules bind to the first ``cds_service`` shared
library loaded, so a copy under another package name ran this checkout's compiled code.)

    .venv/bin/python bench/ab.py --base ../other-checkout            # the typical order-select
    .venv/bin/python bench/ab.py --base ../other-checkout --long 20  # reports 2 KB longer each
    .venv/bin/python bench/ab.py --base ../other-checkout --conditions 8000 --calls 2 --rounds 6
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import IO

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from records import TYPICAL_CONDITIONS, TYPICAL_OBSERVATIONS, padded_scenario, prefetched_call  # noqa: E402
from run import uncapped_hooks  # noqa: E402

from cds_service.cli.fixtures import default_definition  # noqa: E402

FILLER = (" Alignment is maintained. The visualized soft tissues are within normal limits. Vascular calcifications"
          " are present.")  # 112 characters of a report that name no finding

# One version's worker: reads the body, warms up, says its build mode and its answer's digest, then runs the
# calls it is told to and answers with the thread CPU time they took.
WORKER = """
import gc, hashlib, json, logging, pickle, sys, time
checkout, settings, path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
sys.path.insert(0, checkout)
from cds_service import create_app, native
from cds_service.cli.workers import Request, call_app
from cds_service.settings import load_settings
logging.disable(logging.INFO)
body = sys.stdin.buffer.read(int(sys.stdin.buffer.readline()))
frame = pickle.dumps((1, Request("POST", path, [("Content-Type", "application/json")], body, "127.0.0.1",
                                 ("127.0.0.1", 80))))
app = create_app(load_settings(settings["environ"], data_dir=settings["data_dir"]))
def one():
    _, request = pickle.loads(frame)
    return call_app(app, request).body
answer = [one() for _ in range(20)][-1]
gc.collect()
gc.freeze()  # as serve's workers do
print(json.dumps({"mode": native.MODE, "answer": hashlib.sha256(answer).hexdigest()}), flush=True)
for line in sys.stdin:
    calls = int(line)
    started = time.thread_time()
    for _ in range(calls):
        one()
    print((time.thread_time() - started) / calls * 1000, flush=True)
"""


def start_worker(checkout: Path, environ: dict[str, str], data_dir: Path, path: str,
                 body: bytes) -> subprocess.Popen[bytes]:
    settings = json.dumps({"environ": environ, "data_dir": str(data_dir)})
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(checkout), settings, path], cwd=checkout,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    stdin = _pipe(worker.stdin)
    stdin.write(b"%d\n" % len(body) + body)
    stdin.flush()
    return worker


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    assert stream is not None  # both pipes are asked for in start_worker
    return stream


def request_body(observations: int, conditions: int, long: int) -> bytes:
    document = prefetched_call(padded_scenario(date.today(), observations, conditions))
    for value in document["prefetch"].values():
        for entry in value.get("entry", []) if isinstance(value, dict) else []:
            resource = entry.get("resource", {})
            if resource.get("resourceType") == "DiagnosticReport" and isinstance(resource.get("conclusion"), str):
                resource["conclusion"] += FILLER * long
    return json.dumps(document).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (a git worktree, say)")
    parser.add_argument("--observations", type=int, default=TYPICAL_OBSERVATIONS, help="Observations of the chart")
    parser.add_argument("--conditions", type=int, default=TYPICAL_CONDITIONS, help="Conditions of the chart")
    parser.add_argument("--long", type=int, default=0, help="lengthen each report by this many filler sentences")
    parser.add_argument("--calls", type=int, default=100, help="calls per round")
    parser.add_argument("--rounds", type=int, default=15, help="rounds per version, alternated")
    args = parser.parse_args()
    definition = default_definition("order-select")
    body = request_body(args.observations, args.conditions, args.long)
    with tempfile.TemporaryDirectory(prefix="cds-ab-") as tmp:
        work = Path(tmp)
        environ = {"CDS_HOOKS_DIR": str(uncapped_hooks(work))}  # as bench/run.py serves these charts
        checkouts = {"base": args.base.resolve(), "this": BENCH.parent}
        workers = {name: start_worker(checkout, environ, work / name, f"/cds-services/{definition.id}", body)
                   for name, checkout in checkouts.items()}
        try:
            lines = {name: _pipe(worker.stdout).readline() for name, worker in workers.items()}
            if not all(lines.values()):
                print("a checkout's worker stopped before answering (its error is above)", file=sys.stderr)
                return 2
            hello = {name: json.loads(line) for name, line in lines.items()}
            if hello["base"]["answer"] != hello["this"]["answer"]:
                print("the two checkouts answer differently: no comparison", file=sys.stderr)
                return 1
            times: dict[str, list[float]] = {name: [] for name in workers}
            for round_number in range(args.rounds):
                order = list(workers.items())
                for name, worker in order if round_number % 2 == 0 else reversed(order):  # neither always first
                    _pipe(worker.stdin).write(b"%d\n" % args.calls)
                    _pipe(worker.stdin).flush()
                    times[name].append(float(_pipe(worker.stdout).readline()))
        finally:
            for worker in workers.values():
                _pipe(worker.stdin).close()
                worker.wait(timeout=60)
    medians = {name: statistics.median(values) for name, values in times.items()}
    modes = ", ".join(f"{name} {hello[name]['mode']}" for name in workers)
    print(f"{len(body):,} bytes, {args.rounds} x {args.calls} calls each ({modes}); CPU ms per call, median (min):")
    for name, values in times.items():
        print(f"  {name}: {medians[name]:.3f} ({min(values):.3f})")
    print(f"this / base: {medians['this'] / medians['base']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
