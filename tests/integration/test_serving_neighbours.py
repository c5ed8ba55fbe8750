"""bench/serving.py's ``neighbours`` phase keeps running: eight heavy (8 MB) calls and one ordinary caller
against a real ``cds-service serve``, with the summary and the verdict line printed.

No timing is asserted (the machine is shared); what is checked is that the heavy body is accepted (under
CDS_MAX_BODY_BYTES) and every call, heavy and ordinary, answers 200.
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
