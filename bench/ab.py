"""CPU a hook call costs in this checkout against another one, measured in one process, rounds alternated.

Why: on a shared 2-core machine the speed of the whole machine drifts by a third within minutes, so two runs of
``bench/run.py`` taken a few minutes apart cannot tell a 5 % change from the noise. Here both versions of the
service run in the same process (the other checkout's ``cds_service`` is loaded under another package name),
each call as a ``cds-service serve`` worker runs it (``cli/workers.call_app`` on a pickled request, the hook
files without ``_count`` as ``bench/run.py`` serves its charts), and their
rounds alternate, so drift touches both alike; the answer is the ratio of the medians of thread CPU time.
Both must give the same answer bytes, or the comparison stops.

    .venv/bin/python bench/ab.py --base ../other-checkout            # the typical order-select
    .venv/bin/python bench/ab.py --base ../other-checkout --long 20  # reports 2 KB longer each
    .venv/bin/python bench/ab.py --base ../other-checkout --conditions 8000 --calls 2 --rounds 6
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import logging
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from records import TYPICAL_CONDITIONS, TYPICAL_OBSERVATIONS, padded_scenario, prefetched_call  # noqa: E402
from run import uncapped_hooks  # noqa: E402

import cds_service  # noqa: E402
from cds_service.cli.fixtures import default_definition  # noqa: E402
from cds_service.cli.workers import Request, call_app  # noqa: E402
from cds_service.settings import load_settings  # noqa: E402

FILLER = (" Alignment is maintained. The visualized soft tissues are within normal limits. Vascular calcifications"
          " are present.")  # 112 characters of a report that name no finding


def other_package(checkout: Path, into: Path) -> Any:
    """The other checkout's ``cds_service`` as package ``cds_base`` (its data files read from its own copy)."""
    shutil.copytree(checkout / "cds_service", into / "cds_base", ignore=shutil.ignore_patterns("__pycache__"))
    datafiles = into / "cds_base" / "datafiles.py"
    datafiles.write_text(datafiles.read_text().replace('PACKAGE = "cds_service"', 'PACKAGE = "cds_base"'))
    sys.path.insert(0, str(into))
    return importlib.import_module("cds_base")


def request_body(observations: int, conditions: int, long: int) -> bytes:
    document = prefetched_call(padded_scenario(date.today(), observations, conditions))
    for value in document["prefetch"].values():
        for entry in value.get("entry", []) if isinstance(value, dict) else []:
            resource = entry.get("resource", {})
            if resource.get("resourceType") == "DiagnosticReport" and isinstance(resource.get("conclusion"), str):
                resource["conclusion"] += FILLER * long
    return json.dumps(document).encode()


def caller(app: Any, frame: bytes) -> Callable[[], bytes]:
    def one() -> bytes:
        _, request = pickle.loads(frame)  # our own bytes, made in main()
        return call_app(app, request).body

    return one


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (a git worktree, say)")
    parser.add_argument("--observations", type=int, default=TYPICAL_OBSERVATIONS, help="Observations of the chart")
    parser.add_argument("--conditions", type=int, default=TYPICAL_CONDITIONS, help="Conditions of the chart")
    parser.add_argument("--long", type=int, default=0, help="lengthen each report by this many filler sentences")
    parser.add_argument("--calls", type=int, default=100, help="calls per round")
    parser.add_argument("--rounds", type=int, default=15, help="rounds per version, alternated")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    definition = default_definition("order-select")
    body = request_body(args.observations, args.conditions, args.long)
    request = Request("POST", f"/cds-services/{definition.id}", [("Content-Type", "application/json")], body,
                      "127.0.0.1", ("127.0.0.1", 80))
    frame = pickle.dumps((1, request))
    with tempfile.TemporaryDirectory(prefix="cds-ab-") as tmp:
        work = Path(tmp)
        base = other_package(args.base.resolve(), work / "pkg")
        hooks = {"CDS_HOOKS_DIR": str(uncapped_hooks(work))}  # as bench/run.py serves these charts
        base_settings = importlib.import_module("cds_base.settings").load_settings(hooks, data_dir=str(work / "base"))
        calls = {"base": caller(base.create_app(base_settings), frame),
                 "this": caller(cds_service.create_app(load_settings(hooks, data_dir=str(work / "this"))), frame)}
        answers = {name: [one() for _ in range(20)][-1] for name, one in calls.items()}  # warm up
        if answers["base"] != answers["this"]:
            print("the two checkouts answer differently: no comparison", file=sys.stderr)
            return 1
        gc.collect()
        gc.freeze()  # as serve's workers do
        times: dict[str, list[float]] = {name: [] for name in calls}
        for round_number in range(args.rounds):
            order = list(calls.items())
            for name, one in order if round_number % 2 == 0 else reversed(order):  # neither always goes first
                started = time.thread_time()
                for _ in range(args.calls):
                    one()
                times[name].append((time.thread_time() - started) / args.calls * 1000)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{len(body):,} bytes, {args.rounds} x {args.calls} calls each; CPU ms per call, median (min):")
    for name, values in times.items():
        print(f"  {name}: {medians[name]:.3f} ({min(values):.3f})")
    print(f"this / base: {medians['this'] / medians['base']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
