"""Mutated real request bodies never make the service fail: no 5xx, no traceback, 4xx bodies explain.

In CI: ``FUZZ_EXAMPLES`` (default 3,000) cases against the Flask app in-process, and ``FUZZ_LIVE_EXAMPLES``
(default 300) against the real ``cds-service serve`` under gunicorn, where the HTTP parsing is gunicorn's.
Both are derandomized (the same cases every run), so a red CI is a regression, not luck.
The full run (>= 20,000 cases) is ``.venv/bin/python bench/fuzz.py``; see docs/performance-deployment.md.
The counts (status codes, how many calls reached the clinical engine) are printed with ``pytest -s``.
"""

from __future__ import annotations

import http.client
import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cds_service import web
from tests.fuzz.fuzzing import Case, corpus, fuzz_test
from tests.helpers import LiveService

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3000"))
LIVE_EXAMPLES = int(os.environ.get("FUZZ_LIVE_EXAMPLES", "300"))


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    """One JSON log line per fuzz case would drown the report; warnings and errors still show."""
    logging.disable(logging.INFO)
    yield
    logging.disable(logging.NOTSET)


def test_corpus_has_real_and_fixture_bodies() -> None:
    names = [seed.name for seed in corpus()]
    assert sum(n.startswith("external/") for n in names) >= 20
    assert sum(n.startswith("fixture/") for n in names) >= 10


def test_fuzzed_requests_in_process(client: Any, monkeypatch: pytest.MonkeyPatch, quiet_logs: None) -> None:
    last: dict[str, bool] = {}
    real_run_hook = web.run_hook

    def spy(*args: Any, **kwargs: Any) -> Any:
        outcome = real_run_hook(*args, **kwargs)
        last["engine"] = outcome.data is not None  # orders recognised and patient data gathered
        return outcome

    monkeypatch.setattr(web, "run_hook", spy)

    def send(case: Case) -> tuple[int, bytes, str | None]:
        last.clear()
        headers = {"Content-Type": case.content_type} if case.content_type else {}
        response = client.post(case.path, data=case.raw, headers=headers)
        return response.status_code, response.data, response.content_type

    stats: Counter[str] = Counter()
    fuzz_test(send, stats, EXAMPLES, reached=lambda body: last.get("engine", False), derandomize=True)()
    print(f"\nin-process fuzz: {dict(sorted(stats.items()))}")
    assert stats["requests"] >= EXAMPLES * 0.9
    assert stats["reached clinical engine"] > 0, "no fuzz case reached the clinical engine: the corpus is broken"


@pytest.fixture
def own_live_service(tmp_path: Path) -> Iterator[LiveService]:
    """A service of its own: fuzzed feedback must not land in the store other tests read."""
    service = LiveService({"CDS_DATA_DIR": str(tmp_path), "CDS_LOG_LEVEL": "WARNING"})
    yield service
    service.stop()


@pytest.mark.slow
def test_fuzzed_requests_against_gunicorn(own_live_service: LiveService) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", own_live_service.port, timeout=30)

    def send(case: Case) -> tuple[int, bytes, str | None]:
        headers = {"Content-Type": case.content_type} if case.content_type else {}
        try:
            connection.request("POST", case.path, body=case.raw, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()  # e.g. the server closed after a 413; retry once on a fresh connection
            connection.request("POST", case.path, body=case.raw, headers=headers)
            response = connection.getresponse()
            body = response.read()
        if response.getheader("Connection", "").lower() == "close":
            connection.close()
        return response.status, body, response.getheader("Content-Type")

    stats: Counter[str] = Counter()
    try:
        fuzz_test(send, stats, LIVE_EXAMPLES, derandomize=True)()
    finally:
        connection.close()
    print(f"\ngunicorn fuzz: {dict(sorted(stats.items()))}")
    assert stats["requests"] >= LIVE_EXAMPLES * 0.9
