"""The docker-compose wiring, exercised without Docker: the service's environment from docker-compose.yml
(FHIR server by URL, PostgreSQL by URL, the FHIR allowlist) and the one-shot fixture job's command, with the
container host names replaced by the loopback sekmet-fhir server and the embedded PostgreSQL server."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml

from cds_service.cli.fixtures import hook_request, materialise
from tests.helpers import REPO, LiveService, free_port, new_database

pytestmark = pytest.mark.slow
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
HAPI_URL = "http://hapi:8080/fhir"


@pytest.fixture(scope="module")
def wiring(fhir_base_url: str, postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    database_url = new_database(postgres_server_url)
    job = COMPOSE["services"]["load-fixtures"]["command"]
    assert job[:2] == ["cds-service", "load-fixtures"] and HAPI_URL in job
    argv = [sys.executable, "-m", "cds_service", *[fhir_base_url if a == HAPI_URL else a for a in job[1:]]]
    for _ in range(2):  # the one-shot job may run again: nothing changes
        result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    env = dict(COMPOSE["services"]["cds"]["environment"])
    assert env["CDS_FHIR_ALLOWLIST"] == HAPI_URL and "@cds-db:5432/" in env["CDS_DATABASE_URL"]
    env["CDS_FHIR_ALLOWLIST"] = fhir_base_url
    env["CDS_DATABASE_URL"] = database_url
    env["CDS_DATA_DIR"] = str(tmp_path_factory.mktemp("compose-cds"))
    assert env["CDS_METRICS_BIND"].endswith(":9464")
    env["CDS_METRICS_BIND"] = f"127.0.0.1:{free_port()}"  # loopback only here, on a free port
    service = LiveService(env)
    yield service, fhir_base_url, database_url
    service.stop()


def test_service_reads_patient_data_from_the_fhir_server_it_is_wired_to(wiring: Any) -> None:
    service, fhir_url, _ = wiring
    body = hook_request(materialise("seed-worsening-benign-vcf", date.today()), "order-select",
                        with_prefetch=False, fhir_server=fhir_url)
    response = requests.post(service.url("/cds-services/spine-order-select"), json=body, timeout=10)
    assert response.status_code == 200
    assert response.json()["cards"][0]["summary"] == "Kyphoplasty, thoracic: usually appropriate (ACR 8/9)"


def test_a_fhir_server_off_the_allowlist_is_never_called(wiring: Any) -> None:
    service, fhir_url, _ = wiring
    other = fhir_url.replace("127.0.0.1", "127.0.0.2")  # same port, another loopback host: not allowlisted
    body = hook_request(materialise("seed-worsening-benign-vcf", date.today()), "order-select",
                        with_prefetch=False, fhir_server=other)
    response = requests.post(service.url("/cds-services/spine-order-select"), json=body, timeout=10)
    assert response.status_code == 412
    assert "not on the allowlist" in response.json()["issue"][0]["diagnostics"]


def test_feedback_and_audit_land_in_postgresql_and_readyz_sees_it(wiring: Any) -> None:
    service, _, database_url = wiring
    body = hook_request(materialise("new-symptomatic-vcf-no-cancer", date.today()), "order-select",
                        with_prefetch=True, fhir_server=None)
    cards = requests.post(service.url("/cds-services/spine-order-select"), json=body, timeout=10).json()["cards"]
    feedback = {"feedback": [{"card": cards[0]["uuid"], "outcome": "overridden",
                              "outcomeTimestamp": "2026-11-22T10:00:00Z"}]}
    assert requests.post(service.url("/cds-services/spine-order-select/feedback"), json=feedback,
                         timeout=10).status_code == 200
    engine = sa.create_engine(database_url)
    for _ in range(50):  # audit rows are written in batches (ops/audit.py): a fraction of a second later
        with engine.connect() as conn:
            stored = conn.execute(sa.text("select card_uuid from feedback")).scalars().all()
            audited = conn.execute(sa.text("select procedure from audit where hook_instance = :h"),
                                   {"h": body["hookInstance"]}).scalars().all()
        if audited:
            break
        time.sleep(0.1)
    engine.dispose()
    assert stored == [cards[0]["uuid"]]
    assert "mri-spine-without-contrast" in audited
    ready = requests.get(service.url("/readyz"), timeout=5).json()
    assert ready["checks"] == {"criteria": True, "database": True}


def test_metrics_are_served_only_on_their_own_bind(wiring: Any) -> None:
    service, _, _ = wiring
    assert requests.get(service.url("/metrics"), timeout=5).status_code == 404
    metrics_base = f"http://{service.env['CDS_METRICS_BIND']}"
    assert requests.get(f"{metrics_base}/metrics", timeout=5).status_code == 200
    assert requests.get(f"{metrics_base}/cds-services", timeout=5).status_code == 404  # nothing else there
