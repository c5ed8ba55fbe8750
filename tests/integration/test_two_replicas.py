"""Two replicas of the service, as Kubernetes runs them behind one Service: two ``cds-service serve``
processes on their own ports (and data directories), one PostgreSQL database (the embedded server).

What must hold across replicas, because a load balancer sends each request to either one:
- the schema is migrated once, though both replicas (and each one's workers) start at the same moment;
- a JWT accepted by one replica is refused by the other (the jti cache is in the database);
- the same feedback posted to both is stored once;
- every hook call leaves its audit rows, whichever replica answered it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from cds_service.cli.fixtures import hook_request, materialise
from tests.helpers import SANDBOX_ISSUERS, LiveService, new_database, sandbox_token

pytestmark = pytest.mark.slow

BASE = "https://cds.example.org"  # the load balancer's public URL: both replicas check JWT aud against it
SELECT = "/cds-services/spine-order-select"
CALLS_PER_REPLICA = 4


@pytest.fixture(scope="module")
def database(postgres_server_url: str) -> str:
    return new_database(postgres_server_url)


@pytest.fixture(scope="module")
def replicas(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveService, LiveService]]:
    """Both started before either is waited for, so their migrations overlap."""
    started = [LiveService({"CDS_DATA_DIR": str(tmp_path_factory.mktemp(f"replica-{n}")),
                            "CDS_DATABASE_URL": database, "CDS_LOG_LEVEL": "WARNING", "CDS_PUBLIC_BASE_URL": BASE,
                            "CDS_TRUSTED_ISSUERS_FILE": str(SANDBOX_ISSUERS)}, workers=2, wait=False)
               for n in ("a", "b")]
    try:
        for replica in started:
            replica.wait_ready()
        yield started[0], started[1]
    finally:
        for replica in started:
            replica.stop()


def query(database: str, sql: str) -> list[Any]:
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)).all())
    finally:
        engine.dispose()


def call(replica: LiveService, path: str, token: str, body: Any = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if body is None:
        return requests.get(replica.url(path), headers=headers, timeout=30)
    return requests.post(replica.url(path), json=body, headers=headers, timeout=30)


def test_the_schema_is_migrated_once(replicas: tuple[LiveService, LiveService], database: str) -> None:
    assert [tuple(row) for row in query(database, "SELECT version FROM schema_version")] == [(1,)]
    tables = {row[0] for row in query(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"schema_version", "feedback", "audit", "jti"}


def test_a_token_accepted_by_one_replica_is_refused_by_the_other(replicas: tuple[LiveService, LiveService]) -> None:
    first, second = replicas
    for accepting, replaying in ((first, second), (second, first)):
        token = sandbox_token(f"{BASE}/cds-services")
        assert call(accepting, "/cds-services", token).status_code == 200
        replayed = call(replaying, "/cds-services", token)
        assert replayed.status_code == 401 and replayed.json()["issue"][0]["diagnostics"] == "unauthorized"
        assert call(accepting, "/cds-services", token).status_code == 401  # and by itself, a second time


def test_every_call_is_audited_whichever_replica_answers_and_feedback_is_stored_once(
        replicas: tuple[LiveService, LiveService], database: str) -> None:
    scenario = materialise("seed-worsening-benign-vcf", date.today())
    jobs = [(replica, hook_request(scenario, "order-select", with_prefetch=True, fhir_server=None))
            for replica in replicas for _ in range(CALLS_PER_REPLICA)]

    def hook_call(job: tuple[LiveService, dict[str, Any]]) -> dict[str, Any]:
        replica, body = job
        response = call(replica, SELECT, sandbox_token(BASE + SELECT), body)
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(hook_call, jobs))
    wanted = {body["hookInstance"] for _, body in jobs}
    deadline = time.monotonic() + 10  # audit rows are written in a batch shortly after each call (ops/audit.py)
    while True:
        audited = query(database, "SELECT hook_instance, card_uuid FROM audit")
        if {row[0] for row in audited} >= wanted or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert {row[0] for row in audited} == wanted  # from both replicas
    card_uuids = {card["uuid"] for answer in answers for card in answer["cards"]}
    assert card_uuids and {row[1] for row in audited} == card_uuids

    card = answers[0]["cards"][0]["uuid"]  # answered by the first replica; feedback goes to both
    feedback = {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:05:31Z",
                              "overrideReason": {"reason": {"code": "x", "system": "urn:example"}}}]}
    stored = [call(replica, f"{SELECT}/feedback", sandbox_token(f"{BASE}{SELECT}/feedback"), feedback).json()
              for replica in replicas]
    assert [(s["stored"], s["received"]) for s in stored] == [(1, 1), (0, 1)]
    assert all("comment" not in s for s in stored)  # the second replica knows the first one's card
    assert query(database, f"SELECT count(*) FROM feedback WHERE card_uuid = '{uuid.UUID(card)}'") == [(1,)]
