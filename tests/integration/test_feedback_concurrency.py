"""Hundreds of feedback posts from several threads to ``cds-service serve`` with two gunicorn workers:
nothing is lost, a repeated item is stored once, and /metrics counts every worker's requests in every scrape.
Run on the default SQLite store and on a real PostgreSQL."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import LiveService

pytestmark = pytest.mark.slow

CARDS = 100
POSTS = 400
THREADS = 8


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[LiveService]:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    live = LiveService({"CDS_DATA_DIR": str(tmp_path / "data"), "CDS_DATABASE_URL": database_url,
                        "CDS_LOG_LEVEL": "WARNING", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, workers=2)
    yield live
    live.stop()


def item(n: int) -> dict[str, Any]:
    return {"card": f"{uuid.UUID(int=n)}", "outcome": "overridden" if n % 2 else "accepted",
            "acceptedSuggestions": [{"id": "s"}], "outcomeTimestamp": "2026-01-15T10:05:31Z"}


def counter(text: str, name: str, **labels: str) -> float:
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_concurrent_feedback_is_stored_once_and_counted_across_workers(service: LiveService,
                                                                       database_url: str) -> None:
    chooser = random.Random(6)
    posts = [[item(n) for n in chooser.sample(range(CARDS), 2)] for _ in range(POSTS - CARDS)]
    posts += [[item(n)] for n in range(CARDS)]  # every card at least once
    chooser.shuffle(posts)
    url = service.url("/cds-services/spine-order-select/feedback")

    def post(items: list[dict[str, Any]]) -> tuple[int, int]:
        response = requests.post(url, json={"feedback": items}, timeout=30)
        return response.status_code, response.json().get("stored", -1)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(post, posts))
    assert {status for status, _ in results} == {200}
    assert sum(stored for _, stored in results) == CARDS
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(DISTINCT card_uuid) FROM feedback")).scalar() == CARDS
        assert conn.execute(sa.text("SELECT count(*) FROM feedback")).scalar() == CARDS
    engine.dispose()
    sent = sum(len(items) for items in posts)
    for _ in range(6):  # whichever worker answers the scrape, it reports every worker's counts
        text = requests.get(service.url("/metrics"), timeout=10).text
        assert counter(text, "cds_http_requests_total", endpoint="feedback", status="200") == POSTS
        assert counter(text, "cds_feedback_total", service="spine-order-select") == sent
        assert counter(text, "cds_feedback_stored_total") == CARDS
