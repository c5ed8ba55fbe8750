"""A JWT replayed to ``cds-service serve`` with two gunicorn workers is accepted exactly once, whichever
worker sees each copy: the jti cache lives in the database, not in a worker's memory."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.helpers import SANDBOX_ISSUERS, LiveService, sandbox_token

pytestmark = pytest.mark.slow

BASE = "https://cds.example.org"
TOKENS = 40
COPIES = 4


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LiveService]:
    live = LiveService({"CDS_DATA_DIR": str(tmp_path), "CDS_LOG_LEVEL": "WARNING", "CDS_PUBLIC_BASE_URL": BASE,
                        "CDS_TRUSTED_ISSUERS_FILE": str(SANDBOX_ISSUERS)}, workers=2)
    yield live
    live.stop()


def test_each_token_is_accepted_once_across_workers(service: LiveService) -> None:
    tokens = [sandbox_token(f"{BASE}/cds-services") for _ in range(TOKENS)]
    attempts = [t for t in tokens for _ in range(COPIES)]

    def call(token: str) -> tuple[str, int]:
        response = requests.get(service.url("/cds-services"), headers={"Authorization": f"Bearer {token}"},
                                timeout=30)
        return token, response.status_code

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(call, attempts))
    accepted = Counter(token for token, status in results if status == 200)
    assert {status for _, status in results} <= {200, 401}
    assert all(accepted[token] == 1 for token in tokens), accepted
    assert requests.get(service.url("/cds-services"), timeout=10).status_code == 401  # no token
