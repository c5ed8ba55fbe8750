"""The spine topics of issue 14 through the real service (Flask test client): the rating card speaks the
scenario in words, shows the deciding findings, and names the one unknown fact to document."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_topic_scenarios_14 import CPT, DIABETES, DISCITIS, condition


def _hook(client: Any, code: str, *conditions: dict[str, Any], born: str | None = None) -> dict[str, Any]:
    draft = {"resourceType": "ServiceRequest", "id": "o1", "status": "draft", "intent": "order",
             "code": {"coding": [{"system": CPT, "code": code}]}, "subject": {"reference": "Patient/p1"}}
    empty = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    prefetch: dict[str, Any] = {key: empty for key in ("painScores", "boneDensity", "observations", "medications",
                                                      "imagingReports", "imagingStudies", "procedures")}
    prefetch["conditions"] = {**empty, "entry": [{"resource": c} for c in conditions]}
    prefetch["patient"] = {"resourceType": "Patient", "id": "p1", **({"birthDate": born} if born else {})}
    body = {"hook": "order-sign", "hookInstance": "6a4d8c1e-3f0b-4b1e-9c55-0d7c2a1f9b10",
            "context": {"userId": "Practitioner/dr", "patientId": "p1",
                        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]}},
            "prefetch": prefetch}
    response = client.post("/cds-services/spine-order-sign", json=body)
    assert response.status_code == 200, response.text
    return response.get_json()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from cds_service import create_app
    from cds_service.settings import load_settings
    return create_app(load_settings({}, data_dir=str(tmp_path_factory.mktemp("data")))).test_client()


def test_the_service_rates_a_cervical_mri_for_a_suspected_infection_under_its_own_criteria(client: Any) -> None:
    response = _hook(client, "72141", DISCITIS)  # MRI cervical spine without contrast
    [rating] = [c for c in response["cards"] if c["source"]["topic"]["code"].endswith("-rating")]
    assert rating["summary"].endswith("(ACR 7/9)")
    assert rating["detail"].startswith("Suspected spine infection with new or worsening back or neck pain")


def test_the_card_names_the_one_unknown_fact_to_document(client: Any) -> None:
    response = _hook(client, "72141", condition("m3", "G95.9", "Myelopathy"))
    [card] = [c for c in response["cards"] if "not rated" in c["summary"]]
    assert "To rate it, document: course of the myelopathy (acute onset, or chronic or progressive)." in card["detail"]
    assert "myelopathy_course" not in card["detail"]


def test_the_infection_red_flags_appear_among_the_deciding_findings(client: Any) -> None:
    response = _hook(client, "72141", DISCITIS, DIABETES)
    [rating] = [c for c in response["cards"] if c["source"]["topic"]["code"].endswith("-rating")]
    assert "- infection risk factors (diabetes, IV drug use, cancer, HIV, dialysis, abnormal ESR/CRP/WBC): diabetes" \
        in rating["detail"]
