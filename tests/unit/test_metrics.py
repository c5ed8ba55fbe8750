"""Metrics: bounded labels, the FHIR hook, and what a hook call, feedback and an odd id add to /metrics."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cds_service.cli.fixtures import hook_request, materialise
from cds_service.ops import metrics
from cds_service.ops.metrics import Metrics
from tests.helpers import EXTERNAL


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_labels_are_bounded_to_known_values() -> None:
    m = Metrics(["spine-order-select"], ["conditions"])
    m.observe_request("hook", "Patient/123", 200, 0.01)
    m.observe_request("made-up", "spine-order-select", 999, 0.01)
    m.observe_card("spine-order-select", "<script>")
    m.observe_rating("spine-order-select", "rated", "usually-appropriate")
    m.observe_prefetch("spine-order-select", {"conditions": "prefetch", "evil": "fetched"})
    text = m.exposition().decode()
    assert "Patient/123" not in text and "script" not in text and "evil" not in text
    assert value(text, "cds_http_requests_total", endpoint="hook", service="unknown", status="200") == 1
    assert value(text, "cds_http_requests_total", endpoint="unknown", service="spine-order-select",
                 status="unknown") == 1
    assert value(text, "cds_cards_total", service="spine-order-select", indicator="unknown") == 1
    assert value(text, "cds_prefetch_keys_total", service="spine-order-select", key="unknown", origin="fetched") == 1


def test_the_fhir_fetcher_hook_reaches_the_installed_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_active", metrics._active)  # the process's metrics come back afterwards
    m = Metrics(["s"], ["patient"])
    metrics.install(m)
    metrics.observe_fhir("patient", 0.12, "ok")
    metrics.observe_fhir("patient", 0.4, "timeout")
    text = m.exposition().decode()
    assert value(text, "cds_fhir_requests_total", key="patient", outcome="timeout") == 1
    assert value(text, "cds_fhir_request_seconds_count", key="patient") == 2


def test_a_hook_call_feedback_and_odd_ids_show_up_in_metrics(client: Any) -> None:
    scenario = materialise("seed-worsening-benign-vcf", date.today())
    body = hook_request(scenario, "order-select", with_prefetch=True, fhir_server=None)
    response = client.post("/cds-services/spine-order-select", json=body)
    assert response.status_code == 200
    feedback = json.loads((EXTERNAL / "spec-feedback-overridden.json").read_text())
    client.post("/cds-services/spine-order-select/feedback", json=feedback)
    client.post("/cds-services/spine-order-select/feedback", json=feedback)
    client.post("/cds-services/vcf-seed-patient-42", json=body)
    exposition = client.get("/metrics")
    assert exposition.status_code == 200 and exposition.mimetype == "text/plain"
    text = exposition.get_data(as_text=True)
    assert value(text, "cds_http_requests_total", endpoint="hook", service="spine-order-select", status="200") == 1
    assert value(text, "cds_http_requests_total", endpoint="hook", service="unknown", status="404") == 1
    assert "vcf-seed-patient-42" not in text
    cards = sum(v for (name, _), v in samples(text).items() if name == "cds_cards_total")
    assert cards == len(response.json["cards"])
    assert sum(v for (name, _), v in samples(text).items() if name == "cds_ratings_total") >= 1
    assert value(text, "cds_prefetch_keys_total", service="spine-order-select", key="conditions",
                 origin="prefetch") == 1
    assert value(text, "cds_feedback_total", service="spine-order-select", outcome="overridden") == 2
    assert value(text, "cds_feedback_stored_total", service="spine-order-select") == 1


def test_readiness_checks_criteria_and_database(client: Any) -> None:
    assert client.get("/readyz").json == {"status": "ok", "checks": {"criteria": True, "database": True}}


def test_a_failed_audit_write_still_answers_and_is_counted(client: Any, app: Any,
                                                           monkeypatch: Any) -> None:
    import sqlalchemy as sa

    def fail(rows: Any) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(app.extensions["cds"].store, "record_audit", fail)
    scenario = materialise("seed-worsening-benign-vcf", date.today())
    body = hook_request(scenario, "order-select", with_prefetch=True, fhir_server=None)
    assert client.post("/cds-services/spine-order-select", json=body).status_code == 200
    app.extensions["cds"].audit.flush()  # the batch writer's next round, now
    assert value(client.get("/metrics").get_data(as_text=True), "cds_audit_failures_total") == 1
