"""Audit rows are written in batches, and none is lost on a graceful shutdown (ops/audit.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from cds_service.ops.audit import AuditQueue


class FakeStore:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[Mapping[str, Any]]] = []
        self.fail = fail

    def record_audit(self, rows: Iterable[Mapping[str, Any]]) -> None:
        if self.fail:
            raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))
        self.batches.append(list(rows))


def test_many_calls_make_one_write_and_close_loses_nothing() -> None:
    store, failures = FakeStore(), []
    queue = AuditQueue(store, failures.append, interval_s=60)  # the thread will not write on its own here
    for call in range(100):
        queue.add([{"consult_id": f"c{call}", "row": i} for i in range(2)])
    assert store.batches == []  # handed over, not written by the calls
    queue.close()
    assert len(store.batches) == 1 and len(store.batches[0]) == 200 and failures == []


def test_the_writer_thread_writes_without_a_flush() -> None:
    store = FakeStore()
    written = threading.Event()
    original = store.record_audit

    def record(rows: Iterable[Mapping[str, Any]]) -> None:
        original(rows)
        written.set()

    store.record_audit = record  # type: ignore[method-assign]
    queue = AuditQueue(store, lambda calls: None, interval_s=0.01)
    queue.add([{"consult_id": "c1"}])
    assert written.wait(5)
    assert store.batches == [[{"consult_id": "c1"}]]
    queue.close()


def test_a_full_queue_is_written_by_the_call_that_fills_it() -> None:
    store = FakeStore()
    queue = AuditQueue(store, lambda calls: None, interval_s=60, max_pending=10)
    for call in range(5):
        queue.add([{"consult_id": f"c{call}"}, {"consult_id": f"c{call}"}])
    assert [len(b) for b in store.batches] == [10]
    queue.close()


def test_a_failed_batch_counts_each_of_its_calls() -> None:
    failures: list[int] = []
    queue = AuditQueue(FakeStore(fail=True), failures.append, interval_s=60)
    queue.add([{"consult_id": "c1"}])
    queue.add([{"consult_id": "c2"}, {"consult_id": "c3"}])
    assert queue.flush() == 0
    assert failures == [2]
    queue.close()


def test_rows_added_after_close_are_written_at_once() -> None:
    store = FakeStore()
    queue = AuditQueue(store, lambda calls: None, interval_s=60)
    queue.close()
    queue.add([{"consult_id": "late"}])
    assert store.batches == [[{"consult_id": "late"}]]
