"""How a worker runs its calls (cli/workers.py ``Runners``): one thread on duty reads and runs them in order; a
call that waits on the network (waits.py) or a large call lets another thread take the next ones meanwhile; the
thread count bounds the calls held at once; once the front is gone, every call already read is finished."""

from __future__ import annotations

import gc
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator

import pytest

from cds_service import waits
from cds_service.cli.workers import LARGE_BODY_BYTES, Request, Runners


def request(size: int = 10) -> Request:
    return Request("POST", "/x", [], b"x" * size, "127.0.0.1", ("127.0.0.1", 1))


class Calls:
    """A stand-in for the app: records which thread ran each call, in what order; call ids in ``held`` wait
    for their event, on the network (inside ``waiting_on_network``) or, for a large call, just held."""

    def __init__(self) -> None:
        self.ran: list[tuple[int, int]] = []  # (call id, thread id), in the order the calls ended
        self.started: dict[int, threading.Event] = {}
        self.held: dict[int, threading.Event] = {}
        self.lock = threading.Lock()

    def hold(self, call_id: int) -> threading.Event:
        self.started[call_id] = threading.Event()
        self.held[call_id] = threading.Event()
        return self.held[call_id]

    def run(self, call_id: int, req: Request) -> None:
        if call_id in self.held:
            self.started[call_id].set()
            if len(req.body) >= LARGE_BODY_BYTES:
                assert self.held[call_id].wait(5)
            else:
                with waits.waiting_on_network():
                    assert self.held[call_id].wait(5)
        with self.lock:
            self.ran.append((call_id, threading.get_ident()))

    def ended(self) -> list[int]:
        with self.lock:
            return [call_id for call_id, _ in self.ran]


@pytest.fixture
def calls() -> Iterator[Calls]:
    yield Calls()
    waits.listen(None)


class Front:
    """The front's side of the socket: calls sent are read by the thread on duty; ``close`` is the front gone."""

    def __init__(self, calls: Calls, count: int) -> None:
        self.sent: queue.SimpleQueue[tuple[int, Request] | None] = queue.SimpleQueue()
        self.serving = threading.Thread(target=Runners(count, self.sent.get, calls.run).serve)
        self.serving.start()

    def submit(self, call_id: int, req: Request) -> None:
        self.sent.put((call_id, req))

    def stop(self) -> None:
        self.sent.put(None)
        self.serving.join(5)
        assert not self.serving.is_alive()


def started_runners(calls: Calls, count: int = 4) -> Front:
    return Front(calls, count)


def until(condition: Callable[[], bool]) -> None:
    stop = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < stop, "timed out"
        time.sleep(0.005)


def test_calls_that_need_no_network_run_in_order_on_one_thread(calls: Calls) -> None:
    runners = started_runners(calls)
    for call_id in range(20):
        runners.submit(call_id, request())
    runners.stop()
    assert calls.ended() == list(range(20))
    assert len({thread for _, thread in calls.ran}) == 1


def test_a_call_waiting_on_the_network_lets_the_next_ones_run(calls: Calls) -> None:
    release = calls.hold(0)
    runners = started_runners(calls)
    runners.submit(0, request())
    assert calls.started[0].wait(5)
    for call_id in (1, 2, 3):
        runners.submit(call_id, request())
    until(lambda: calls.ended() == [1, 2, 3])  # answered while call 0 still waits
    release.set()
    runners.stop()
    assert calls.ended() == [1, 2, 3, 0]
    threads = dict(calls.ran)
    assert threads[1] == threads[2] == threads[3] != threads[0]  # the next thread on duty took them all


def test_a_large_call_never_holds_up_an_ordinary_one(calls: Calls) -> None:
    release = calls.hold(0)
    runners = started_runners(calls)
    runners.submit(0, request(LARGE_BODY_BYTES))
    runners.submit(1, request())
    until(lambda: calls.ended() == [1])
    release.set()
    runners.stop()
    assert calls.ended() == [1, 0]


def test_the_thread_count_bounds_the_calls_held_at_once(calls: Calls) -> None:
    first, second = calls.hold(0), calls.hold(1)
    runners = started_runners(calls, count=2)
    runners.submit(0, request())
    runners.submit(1, request())
    assert calls.started[0].wait(5) and calls.started[1].wait(5)
    runners.submit(2, request())
    time.sleep(0.1)
    assert calls.ended() == []  # both threads are waiting on the network: the third call waits its turn
    first.set()
    until(lambda: calls.ended() == [0, 2])
    second.set()
    runners.stop()
    assert calls.ended() == [0, 2, 1]



def test_no_thread_keeps_a_finished_request_alive(calls: Calls) -> None:
    """An idle thread holding its last request would keep an 8 MB body resident per thread (bench/memory.py:
    8,000 Conditions peaked 20 MB higher)."""
    runners = started_runners(calls)
    finished = []
    for call_id in range(3):  # large calls: each hands duty on, so each ends on a thread that then waits
        req = request(LARGE_BODY_BYTES)
        finished.append(weakref.ref(req))
        runners.submit(call_id, req)
        del req
        until(lambda n=call_id: len(calls.ended()) == n + 1)
    gc.collect()
    assert [ref() for ref in finished] == [None, None, None]
    runners.stop()


def test_a_failing_call_or_a_broken_channel_never_leaves_the_worker_stuck(calls: Calls) -> None:
    """A bug escaping a call must not take the duty with it; a read that fails ends the worker (it exits)."""
    reads = iter([(0, request()), (1, request()), (2, request())])

    def read() -> tuple[int, Request] | None:
        try:
            return next(reads)
        except StopIteration:
            raise OSError("connection reset") from None

    def run(call_id: int, req: Request) -> None:
        if call_id == 1:
            raise RuntimeError("a bug")
        calls.run(call_id, req)

    serving = threading.Thread(target=Runners(2, read, run).serve)
    serving.start()
    serving.join(5)
    assert not serving.is_alive()
    assert calls.ended() == [0, 2]
