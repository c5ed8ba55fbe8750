"""A JWT replayed to ``cds-service serve`` with two gunicorn workers is accepted exactly once, whichever
worker sees each copy: the jti cache lives in the database, not in a worker's memory."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from tests.conftest import EXTERNAL, REPO, LiveService

pytestmark = pytest.mark.slow

BASE = "https://cds.example.org"
TOKENS = 40
COPIES = 4


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LiveService]:
    live = LiveService({"CDS_DATA_DIR": str(tmp_path), "CDS_LOG_LEVEL": "WARNING", "CDS_PUBLIC_BASE_URL": BASE,
                        "CDS_TRUSTED_ISSUERS_FILE": str(REPO / "tests/data/issuers/sandbox-dev.json")}, workers=2)
    yield live
    live.stop()


def sandbox_token(aud: str) -> str:
    key = serialization.load_pem_private_key((EXTERNAL / "sandbox-private-key.pem").read_bytes(), None)
    now = int(time.time())
    return jwt.encode({"iss": "https://sandbox.cds-hooks.org", "aud": aud, "iat": now, "exp": now + 300,
                       "jti": str(uuid.uuid4())}, key, algorithm="ES384",
                      headers={"kid": "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f", "typ": "JWT"})


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
