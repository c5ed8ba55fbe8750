"""``make bench`` keeps running: every row of bench/run.py, about a second each, with the table and the verdicts;
and bench/ab.py (the side-by-side comparison of two checkouts) runs.

No timing is asserted (the machine is shared); what is checked is that the harness starts the baseline, the
service (capped and uncapped) and sekmet-fhir, that every row answers 200 with cards and no errors, and that
every target of issue 16 gets a verdict line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ROWS = ("baseline", "baseline-empty", "baseline@1", "typical", "typical@1", "large-500@1", "large-5000@1", "large-5000",
        "conditions-8000@1", "flood-10000@1", "fetch", "fetch@1", "query", "query-all", "query-all@4")
CHECKS = ("throughput typical/baseline", "typical p99 ms", "typical@1 p50 ms", "8,000 Conditions p50 ms",
          "per-resource cost 5000/500", "peak RSS MB per worker", "fetch p50 - slowest query p50, ms")


def test_the_benchmark_harness_runs_every_row(tmp_path: Path) -> None:
    if not (REPO / ".venv-fhir" / "bin" / "uvicorn").exists():
        pytest.fail("sekmet-fhir is not installed: make .venv-fhir/.installed")
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--duration", "0.8", "--warmup", "0.2",
                          "--query-repeat", "2", "--json", str(out)], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "warning" not in run.stderr, run.stderr[-3000:]
    written = json.loads(out.read_text())
    rows = written["rows"]
    assert tuple(rows) == ROWS
    assert set(written["machine"]) == {"before the rows", "after them"}  # the machine probe, printed too
    assert "machine (a fixed pure-Python loop, ms): before the rows best " in run.stdout
    for name, row in rows.items():
        assert row["errors"] == 0 and row["ok"] >= 1, name
        if name not in {"baseline", "baseline-empty", "baseline@1", "query", "query-all", "query-all@4"}:
            assert row["cards"] >= 1, name
    verdicts = [line for line in run.stdout.splitlines() if line.startswith("| ") and line.rstrip().endswith(
        ("PASS |", "FAIL |"))]
    for check in CHECKS:
        assert any(line.startswith(f"| {check} |") for line in verdicts), check


def test_the_side_by_side_comparison_runs_each_checkout_as_it_is_built() -> None:
    """``bench/ab.py`` against this very checkout: both workers answer alike, each in the build mode of its
    checkout (compiled where ``make test`` compiled it), and a ratio is printed."""
    run = subprocess.run([sys.executable, str(REPO / "bench" / "ab.py"), "--base", str(REPO), "--rounds", "2",
                          "--calls", "3", "--long", "2"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.splitlines()[-1].startswith("this / base: ")
    from cds_service import native

    assert f"(base {native.MODE}, this {native.MODE})" in run.stdout
