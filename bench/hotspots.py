"""Where a hook call spends its time: pyinstrument over repeated in-process calls, top functions by self time.

Profiles what ``bench/run.py`` measures (order-select, full prefetch) through the Flask test client, so
HTTP parsing, validation, the clinical steps and JSON encoding all show, and gunicorn does not. Prints the
functions with the most self time (file:function) and the call tree of the slowest path.

    .venv/bin/pip install pyinstrument
    .venv/bin/python bench/hotspots.py --observations 45 --calls 200
    .venv/bin/python bench/hotspots.py --observations 5000 --calls 5
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from records import padded_scenario, prefetched_call  # noqa: E402

from cds_service import create_app  # noqa: E402
from cds_service.cli.fixtures import default_definition  # noqa: E402
from cds_service.settings import load_settings  # noqa: E402


def accumulate(frame: Any, own: Counter[str], inclusive: Counter[str], root: Path, stack: frozenset[str]) -> None:
    """Self and inclusive time per 'relative/file.py:function' (library frames keep their path tail).

    Inclusive time is counted at the outermost call only, so recursion does not count twice.
    """
    if frame.is_synthetic:  # pyinstrument's "[self]" nodes repeat their parent's time
        return
    path = Path(frame.file_path or "?")
    try:
        where = str(path.relative_to(root))
    except ValueError:
        where = "/".join(path.parts[-2:])
    name = f"{where}:{frame.function}"
    own[name] += frame.total_self_time
    if name not in stack:
        inclusive[name] += frame.time
    for child in frame.children:
        accumulate(child, own, inclusive, root, stack | {name})


def main() -> int:
    from pyinstrument import Profiler

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=45)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--tree", action="store_true", help="also print pyinstrument's call tree")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the request log line is not what we look for
    definition = default_definition("order-select")
    body = json.dumps(prefetched_call(padded_scenario(date.today(), args.observations))).encode()
    with tempfile.TemporaryDirectory() as data_dir:
        client = create_app(load_settings({}, data_dir=data_dir)).test_client()
        url = f"/cds-services/{definition.id}"
        for _ in range(3):  # warm-up: lazy imports, compiled schemas
            assert client.post(url, data=body, content_type="application/json").status_code == 200
        profiler = Profiler(interval=0.0005)
        started = time.perf_counter()
        with profiler:
            for _ in range(args.calls):
                client.post(url, data=body, content_type="application/json")
        per_call = (time.perf_counter() - started) / args.calls * 1000
    session = profiler.last_session
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    accumulate(session.root_frame(), own, inclusive, BENCH.parent, frozenset())
    total = sum(own.values())
    print(f"{args.observations} observations, body {len(body)} bytes: {per_call:.2f} ms per call "
          f"(profiled, {args.calls} calls)\n")
    print("| self % | self ms/call | function |\n|---|---|---|")
    for name, seconds in own.most_common(args.top):
        print(f"| {100 * seconds / total:.1f} | {seconds / args.calls * 1000:.3f} | {name} |")
    print("\n| incl. % | incl. ms/call | cds_service function |\n|---|---|---|")
    ours = Counter({k: v for k, v in inclusive.items() if k.startswith("cds_service/")})
    for name, seconds in ours.most_common(args.top):
        print(f"| {100 * seconds / total:.1f} | {seconds / args.calls * 1000:.3f} | {name} |")
    if args.tree:
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
