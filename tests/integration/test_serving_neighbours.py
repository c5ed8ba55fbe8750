"""bench/serving.py's ``neighbours`` and ``balance`` phases keep running against a real ``cds-service serve``:
eight heavy (8 MB) calls beside one ordinary caller, and fresh starts measured in turn, with the summaries and
the verdict lines printed.

No timing is asserted (the machine is shared); what is checked is that the heavy body is accepted (under
CDS_MAX_BODY_BYTES), every call answers 200, and every start gets its runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow


def test_the_neighbours_phase_runs_without_errors() -> None:
    # --hold 4: an ordinary call beside the heavy ones takes about a second here, so a shorter window may hold none
    run = subprocess.run([sys.executable, str(REPO / "bench" / "serving.py"), "--stacks", "front",
                          "--phases", "neighbours", "--hold", "4"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.search(r"^\| front neighbours: ordinary p99 ms \| [\d.]+ \| < 1000 \| (PASS|FAIL) \|$", run.stdout,
                     re.MULTILINE), run.stdout
    row = json.loads(run.stderr.strip().splitlines()[-1])["front"]["neighbours"]
    for name in ("ordinary", "alone", "c8"):
        assert row[name]["errors"] == 0 and row[name]["ok"] >= 1, (name, row[name])
    assert 7_500_000 <= row["heavy_bytes"] <= 8_500_000


def test_the_balance_phase_measures_every_start_in_turn() -> None:
    """Two fresh starts, up at once, three short runs each taken in turn: both get their runs and a verdict."""
    run = subprocess.run([sys.executable, str(REPO / "bench" / "serving.py"), "--stacks", "front",
                          "--phases", "balance", "--starts", "2", "--duration", "1.5"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    starts = json.loads(run.stderr.strip().splitlines()[-1])["front"]["balance"]
    assert len(starts) == 2
    for start in starts:
        assert len(start["runs"]) == 3 and start["errors"] == 0 and start["requests"] >= 3, start
    for check in ("slowest start's req/s / best", "worst start's p99 / best"):
        assert re.search(rf"^\| front balance, 2 fresh starts: {check} \| [\d.]+ \| [<>]= [\d.]+ \| (PASS|FAIL) \|$",
                         run.stdout, re.MULTILINE), run.stdout
