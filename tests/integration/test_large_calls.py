"""How the pool picks a worker (cli/workers.py): large calls take turns, one per worker, an ordinary call never
waits behind them, and calls one at a time stay on one worker.

A real pool of two forked workers runs a tiny WSGI app that holds a large request for 0.4 s. Four large
requests and, just after them, one ordinary request: no worker ever runs two large ones at once, the last two
large ones start only when the first two are done, and the ordinary one is answered before that.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cds_service.cli.workers import LARGE_BODY_BYTES, Pool, Request, Worker

pytestmark = pytest.mark.slow


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    started = time.monotonic()
    body = environ["wsgi.input"].read()
    if len(body) >= LARGE_BODY_BYTES:
        time.sleep(0.4)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"pid": os.getpid(), "start": started, "end": time.monotonic()}).encode()]


def request(size: int) -> Request:
    return Request("POST", "/x", [("Content-Length", str(size))], b"x" * size, "127.0.0.1", ("127.0.0.1", 1))


async def run() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    pool = Pool(2, 4, lambda: app)
    await pool.start()
    try:
        large = [asyncio.create_task(pool.call(request(LARGE_BODY_BYTES), 10)) for _ in range(4)]
        await asyncio.sleep(0.05)
        small = await pool.call(request(100), 10)
        done = await asyncio.gather(*large)
        return [json.loads(r.body) for r in done], json.loads(small.body)
    finally:
        await pool.stop(2)


def test_large_calls_take_turns_and_an_ordinary_call_does_not_wait() -> None:
    with ThreadPoolExecutor(1) as thread:  # its own thread: a test before may leave a loop running in this one
        large, small = thread.submit(asyncio.run, run()).result(timeout=60)
    by_worker: dict[int, list[tuple[float, float]]] = {}
    for answer in large:
        by_worker.setdefault(answer["pid"], []).append((answer["start"], answer["end"]))
    assert len(by_worker) == 2
    for spans in by_worker.values():
        spans.sort()
        assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(spans))
    second_turn = sorted(a["start"] for a in large)[2]
    assert small["end"] < second_turn


def test_calls_one_at_a_time_stay_on_one_worker_and_busy_ones_spread() -> None:
    """Ties go to the first worker (its caches stay warm); the fewest in flight still wins, and an ordinary call
    avoids a worker running a large one."""
    pool = Pool(2, 4, lambda: app)
    first, second = pool.workers[:] = [Worker(1, None, None), Worker(2, None, None)]  # type: ignore[arg-type]
    assert [pool._pick() for _ in range(3)] == [first, first, first]
    first.waiting[1] = None  # type: ignore[assignment]
    assert pool._pick() is second
    second.waiting[2] = second.waiting[3] = None  # type: ignore[assignment]
    assert pool._pick() is first
    first.large = 1
    assert pool._pick() is second
