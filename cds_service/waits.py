"""A hook call about to wait on the network says so, so the process running it can start the next call meanwhile;
and a long loop over a large chart lets the worker's other calls run (``let_others_run``).

Why: a ``cds-service serve`` worker runs its calls one after another on one thread (``cli/workers.py``
``Runners``, which says why and what it measured). A call that waits on the FHIR server or on a JWKS download
computes nothing meanwhile, so it lets the worker give its place to another thread. Outside such a worker (the
Flask development server, gunicorn, tests) nobody listens and the wait is all there is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

LET_OTHERS_RUN_EVERY = 1_024  # items (resources, JSON objects) a long loop handles between two calls

_listener: Callable[[], None] | None = None  # set once per worker process, before its first call


def listen(on_wait: Callable[[], None] | None) -> None:
    """``on_wait`` runs in a call's own thread each time it is about to wait on the network."""
    global _listener
    _listener = on_wait


@contextmanager
def waiting_on_network() -> Iterator[None]:
    """Wrap a wait on the network: the worker may start another call on another thread before it begins."""
    if _listener is not None:
        _listener()
    yield


def let_others_run() -> None:
    """Called every ``LET_OTHERS_RUN_EVERY`` items by the loops over a whole chart (reading a large body, checking
    its entries, indexing it). Compiled modules (build_native.py) keep the interpreter lock until they run Python
    code again, so a call reading an 8 MB chart held it through all of its loops and a neighbouring call on another
    thread of the worker waited that long (bench/serving.py neighbours: ordinary p99 48 ms from source, 196 ms
    compiled). Entering a Python function is where the interpreter hands the lock to a thread that has waited
    for it longer than the switch interval (5 ms); this module stays Python for that, so the body is empty and a
    call costs a fraction of a microsecond (``time.sleep(0)``, which always lets go, costs 80 us here)."""
