"""The whole-call deadline (CDS_CALL_DEADLINE): past it the answer is a 'not checked in time' card, nothing is
rated or written onto the orders, and the call is never a 5xx. Counts and outcomes, no timings."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from cds_service import create_app
from cds_service.cli.fixtures import hook_request, materialise
from cds_service.settings import load_settings


def test_past_the_deadline_the_orders_are_named_as_not_checked(tmp_path: Path) -> None:
    settings = load_settings({"CDS_CALL_DEADLINE": "0"}, data_dir=str(tmp_path))
    body = hook_request(materialise("seed-worsening-benign-vcf", date(2026, 12, 1)), "order-sign",
                        with_prefetch=True, fhir_server=None)
    response = create_app(settings).test_client().post("/cds-services/spine-order-sign", json=body)
    assert response.status_code == 200
    answer = response.get_json()
    assert "systemActions" not in answer
    [card] = answer["cards"]
    assert card["indicator"] == "warning"
    assert card["summary"] == "Kyphoplasty, thoracic: not checked, the record could not be read in time"


def test_with_the_default_deadline_the_same_call_is_rated(tmp_path: Path) -> None:
    body = hook_request(materialise("seed-worsening-benign-vcf", date(2026, 12, 1)), "order-sign",
                        with_prefetch=True, fhir_server=None)
    answer = create_app(load_settings({}, data_dir=str(tmp_path))).test_client().post(
        "/cds-services/spine-order-sign", json=body).get_json()
    assert answer["cards"][0]["summary"].startswith("Kyphoplasty, thoracic: usually appropriate")
    assert answer["systemActions"]
