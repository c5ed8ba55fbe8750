"""``cds-service serve`` runs each worker on a CPU of its own only when the service's CPUs are exactly as many as
its workers (``cli/affinity.py``); a worker started again after a crash takes the CPU of the one it replaces."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from cds_service.cli.affinity import worker_cpus
from tests.helpers import LiveService

CPUS = sorted(os.sched_getaffinity(0))


def allowed(pid: int) -> set[int]:
    """The CPUs the kernel lets the process run on (``Cpus_allowed_list``, e.g. ``0-1,4``)."""
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("Cpus_allowed_list"))
    found: set[int] = set()
    for part in line.split(":", 1)[1].strip().split(","):
        low, _, high = part.partition("-")
        found.update(range(int(low), int(high or low) + 1))
    return found


def workers(service: LiveService, count: int) -> list[int]:
    """The service's worker processes, once all ``count`` of them run."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = [int(p) for p in Path(f"/proc/{service.process.pid}/task/{service.process.pid}/children")
                .read_text().split()]
        if len(pids) == count:
            return pids
        time.sleep(0.1)
    raise AssertionError(f"not {count} workers: {pids}")


def test_the_rule() -> None:
    assert worker_cpus(2, True, {0, 1}) == (0, 1)
    assert worker_cpus(2, True, {3, 7}) == (3, 7)  # an exclusive cpuset: its own CPUs, in order
    assert worker_cpus(2, True, {0, 1, 2, 3}) == ()  # a larger shared set: every replica would pile onto 0 and 1
    assert worker_cpus(4, True, {0, 1}) == ()  # more workers than CPUs: the kernel places them
    assert worker_cpus(2, False, {0, 1}) == ()


@pytest.mark.skipif(len(CPUS) > 8, reason="one worker per CPU: kept to small machines")
def test_one_worker_per_cpu_each_on_its_own_and_a_restarted_one_on_the_same(tmp_path: Path) -> None:
    service = LiveService({"CDS_DATA_DIR": str(tmp_path), "CDS_LOG_LEVEL": "WARNING"}, workers=len(CPUS))
    try:
        pids = workers(service, len(CPUS))
        placed = {pid: allowed(pid) for pid in pids}
        assert sorted(placed.values(), key=min) == [{cpu} for cpu in CPUS]
        os.kill(pids[-1], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and set(workers(service, len(CPUS))) & {pids[-1]}:
            time.sleep(0.1)
        (new,) = set(workers(service, len(CPUS))) - set(pids)
        assert allowed(new) == placed[pids[-1]]
    finally:
        service.stop()


def test_switched_off_every_worker_may_run_anywhere(tmp_path: Path) -> None:
    service = LiveService({"CDS_DATA_DIR": str(tmp_path), "CDS_LOG_LEVEL": "WARNING", "CDS_PIN_WORKERS": "false"},
                          workers=len(CPUS))
    try:
        assert [allowed(pid) for pid in workers(service, len(CPUS))] == [set(CPUS)] * len(CPUS)
    finally:
        service.stop()
