"""A hook call about to wait on the network says so, so the process running it can start the next call meanwhile.

Why: a ``cds-service serve`` worker runs its calls one after another on one thread (``cli/workers.py``
``Runners``, which says why and what it measured). A call that waits on the FHIR server or on a JWKS download
computes nothing meanwhile, so it lets the worker give its place to another thread. Outside such a worker (the
Flask development server, gunicorn, tests) nobody listens and the wait is all there is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
