"""Large calls take turns, one per worker, and an ordinary call never waits behind them (cli/workers.py).

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

from cds_service.cli.workers import LARGE_BODY_BYTES, Pool, Request

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
