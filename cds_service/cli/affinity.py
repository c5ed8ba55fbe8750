"""Each ``serve`` worker on a CPU of its own, when the machine's CPUs are the workers' own (``CDS_PIN_WORKERS``).

Why: unpinned, the kernel moves the workers between the cores as the front and other processes wake, and a
moved worker starts its next call with cold caches. Measured on the project's 2-core machine (2 workers, the
typical call, concurrency 4, three alternated pairs): 528 / 582 / 605 -> 560 / 691 / 623 req/s, p99 15.8 / 13.9
/ 14.3 -> 14.2 / 10.9 / 12.1 ms, worker CPU a call 3.09 / 2.78 / 2.68 -> 2.92 / 2.42 / 2.66 ms.

When (design choice): only when the CPUs this process may run on are exactly as many as the workers: a
dedicated machine or VM with one worker per core, or a container given an exclusive cpuset (Kubernetes' static
CPU manager). On a larger shared CPU set nothing is pinned: every replica would pile onto the same first CPUs
while the others idle. The front is never pinned; a worker started again after a crash takes its slot's CPU.
"""

from __future__ import annotations

import os


def worker_cpus(workers: int, enabled: bool, allowed: set[int] | None = None) -> tuple[int, ...]:
    """The CPU of each worker slot, or () when the workers are left to the kernel."""
    if not enabled or not hasattr(os, "sched_getaffinity"):
        return ()
    cpus = sorted(os.sched_getaffinity(0) if allowed is None else allowed)
    return tuple(cpus) if len(cpus) == workers else ()


def pin(cpu: int) -> None:
    """Bind the calling process (and the threads it starts from now on) to one CPU."""
    os.sched_setaffinity(0, {cpu})
