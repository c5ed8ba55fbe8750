"""The audit trail written in batches: a hook call hands its rows over and answers; one thread per process
writes what has gathered every ``interval_s`` in a single transaction.

Why: one transaction per hook call (BEGIN IMMEDIATE, insert, commit) was about an eighth of a typical call's
time, and under load the workers queued for SQLite's write lock. A batch costs one commit for many calls.

What can be lost:
- a graceful stop (SIGTERM, SIGINT, gunicorn's worker restart, ``Services.close``): nothing. ``close`` is
  registered with ``atexit`` and writes everything still pending before the process exits;
- kill -9, or a worker killed by gunicorn's timeout: the rows of the calls answered since the last write,
  at most ``interval_s`` (0.25 s by default) of calls, and never more than ``max_pending`` rows (a call that
  finds that many pending writes the batch itself before it answers). Rows already written are committed;
- a failed write (database down, disk full): that batch's rows; the error is logged and each call in the
  batch is counted in ``cds_audit_failures_total``. The clinician's cards are never held back for the audit.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

Rows = list[Mapping[str, Any]]


class _Writes(Protocol):
    def record_audit(self, rows: Iterable[Mapping[str, Any]]) -> None: ...


class AuditQueue:
    """Pending audit rows of this process and the thread that writes them (started on first use, so a
    gunicorn worker starts its own after the fork)."""

    def __init__(self, store: _Writes, on_failure: Callable[[int], None], interval_s: float = 0.25,
                 max_pending: int = 5_000) -> None:
        self._store = store
        self._on_failure = on_failure
        self._interval_s = interval_s
        self._max_pending = max_pending
        self._lock = threading.Lock()  # guards the pending lists and the thread's start
        self._write_lock = threading.Lock()  # one batch at a time, in order
        self._pending: Rows = []
        self._calls = 0  # hook calls whose rows are pending
        self._wake = threading.Event()
        self._stopped = False
        self._owner_pid: int | None = None
        self._thread: threading.Thread | None = None

    def add(self, rows: Rows) -> None:
        """Queue one hook call's rows; writes them at once only when ``max_pending`` rows are waiting."""
        if not rows:
            return
        with self._lock:
            self._pending.extend(rows)
            self._calls += 1
            full = len(self._pending) >= self._max_pending
            if not full and not self._stopped:
                self._start_locked()
        if full or self._stopped:
            self.flush()

    def flush(self) -> int:
        """Write every pending row now; returns how many were written."""
        with self._write_lock:
            with self._lock:
                rows, calls = self._pending, self._calls
                self._pending, self._calls = [], 0
            if not rows:
                return 0
            try:
                self._store.record_audit(rows)
            except SQLAlchemyError as exc:  # the cards went out; the gap is logged and counted
                log.error("audit write failed", extra={"rows": len(rows), "reason": type(exc).__name__})
                self._on_failure(calls)
                return 0
            return len(rows)

    def close(self) -> None:
        """Stop the thread and write what is pending (graceful shutdown; also run at interpreter exit)."""
        with self._lock:
            self._stopped = True
            thread = self._thread if self._owner_pid == os.getpid() else None
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        self.flush()

    def _start_locked(self) -> None:
        if self._thread is not None and self._owner_pid == os.getpid():
            return
        self._owner_pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self._interval_s)
            try:
                self.flush()
            except Exception:  # a bug here must not stop the writer: logged with its traceback, batch dropped
                log.exception("audit writer bug")
