"""The back-pain fixture scenarios (fhir_fixtures/lbp-*, tbp-*, router-*) through the whole service, in process.

One scenario per variant of Low Back Pain 2021 and Thoracic Back Pain 2024 and per router precedence: the
rating card of the selected order (its ACR score), the rating written onto the order, and the removal
suggestion for the uncomplicated variants.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cds_service import create_app
from cds_service.cli.fixtures import hook_request, materialise
from cds_service.settings import load_settings

TODAY = date.today()  # the service reads the clock: the story is moved to today
ACR = "https://spine-order-cds.example.org/fhir/StructureDefinition/acr-rating"
# scenario -> (rating card topic, ACR score in its summary, written ACR category, delete suggested)
EXPECTED: dict[str, tuple[str | None, int | None, str | None, bool]] = {
    "lbp-v1-acute-uncomplicated": ("acr-low-back-pain-2021-rating", 1, "usually-not-appropriate", True),
    "lbp-v2-chronic-no-management": ("acr-low-back-pain-2021-rating", 1, "usually-not-appropriate", True),
    "lbp-v3-failed-management-candidate": ("acr-low-back-pain-2021-rating", 9, "usually-appropriate", False),
    "lbp-v4-cauda-equina": ("acr-low-back-pain-2021-rating", 9, "usually-appropriate", False),
    "lbp-v5-prior-lumbar-surgery": ("acr-low-back-pain-2021-rating", 9, "usually-appropriate", False),
    "lbp-v6-elderly-osteoporosis-no-fracture": ("acr-low-back-pain-2021-rating", 8, "usually-appropriate", False),
    "lbp-v7-cancer-history": ("acr-low-back-pain-2021-rating", 9, "usually-appropriate", False),
    "router-elderly-osteoporosis-with-vcf": ("acr-vcf-2022-rating", 9, "usually-appropriate", False),
    "router-high-risk-trauma": ("acr-acute-spinal-trauma-2024-rating", 1, "usually-not-appropriate", False),
    "tbp-v1-acute-uncomplicated": ("acr-thoracic-back-pain-2024-rating", 1, "usually-not-appropriate", True),
    "tbp-v2-failed-conservative": ("acr-thoracic-back-pain-2024-rating", 5, "may-be-appropriate", False),
    "tbp-v3-radiculopathy": ("acr-thoracic-back-pain-2024-rating", 8, "usually-appropriate", False),
    "tbp-v4-chronic-steroids": ("acr-thoracic-back-pain-2024-rating", 7, "usually-appropriate", False),
    "tbp-v5-immunosuppressed": ("acr-thoracic-back-pain-2024-rating", 9, "usually-appropriate", False),
    "tbp-v6-radiograph-lytic-lesion": ("acr-thoracic-back-pain-2024-rating", 9, "usually-appropriate", False),
    "tbp-v7-post-thoracic-fusion": ("acr-thoracic-back-pain-2024-rating", 7, "usually-appropriate", False),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = load_settings({}, data_dir=str(tmp_path_factory.mktemp("data")))
    return create_app(settings).test_client()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_back_pain_scenario(client: Any, name: str) -> None:
    topic, score, category, delete = EXPECTED[name]
    scenario = materialise(name, TODAY)
    body = hook_request(scenario, "order-select", with_prefetch=True, fhir_server=None)
    response = client.post("/cds-services/spine-order-select", json=body)
    assert response.status_code == 200, response.text
    payload = response.get_json()
    rating_cards = [c for c in payload["cards"] if c["source"]["topic"]["code"].endswith("-rating")]
    written = [e["valueCodeableConcept"]["coding"][0]["code"] for a in payload.get("systemActions", [])
               for e in a["resource"]["extension"] if e["url"] == ACR]
    if topic is None:
        assert rating_cards == [] and written == []
        return
    [rated] = rating_cards
    assert rated["source"]["topic"]["code"] == topic
    assert f"(ACR {score}/9)" in rated["summary"]
    assert written == [category]
    deletes = [a for s in rated.get("suggestions", []) for a in s["actions"] if a["type"] == "delete"]
    assert bool(deletes) == delete
    if delete:
        assert deletes[0]["resourceId"] == list(scenario.selections)


def test_fixture_files_exist() -> None:
    folder = Path(__file__).resolve().parents[2] / "fhir_fixtures"
    assert all((folder / f"{name}.scenario.json").is_file() for name in EXPECTED)


def _without(body: dict[str, Any], *suffixes: str) -> dict[str, Any]:
    for value in body["prefetch"].values():
        if value and value.get("resourceType") == "Bundle":
            value["entry"] = [e for e in value.get("entry", []) if not e["resource"]["id"].endswith(suffixes)]
    return body


def test_an_unknown_fact_that_decides_the_rating_gives_one_card_and_no_rating(client: Any) -> None:
    """4 months of low back pain and nothing about treatment or surgery: V3 (MRI 9) or V2 (MRI 1)."""
    body = _without(hook_request(materialise("lbp-v3-failed-management-candidate", TODAY), "order-select",
                                 with_prefetch=True, fhir_server=None), "-radic", "-pt-eval")
    payload = client.post("/cds-services/spine-order-select", json=body).get_json()
    [undecided] = [c for c in payload["cards"] if c["source"]["topic"]["code"] == "acr-low-back-pain-2021-undecided"]
    assert ("- If 6 weeks of medical management have failed and surgery or an intervention is considered: "
            "usually appropriate (9) (ACR variant 3).\n- Otherwise: usually not appropriate (1) (ACR variant 2).") \
        in undecided["detail"]
    assert not [c for c in payload["cards"] if c["source"]["topic"]["code"].endswith("-rating")]
    assert "systemActions" not in payload  # no rating written onto the order


def test_open_variants_that_agree_rate_nothing_when_none_may_apply(client: Any) -> None:
    """V3 and V2 both rate CT with contrast 1/9, but neither is confirmed and no later variant fits: without the
    missing facts no criteria may apply, so the order is not rated and the card says what to document."""
    body = _without(hook_request(materialise("lbp-v3-failed-management-candidate", TODAY), "order-select",
                                 with_prefetch=True, fhir_server=None), "-radic", "-pt-eval")
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["code"] = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72132"}],
                     "text": "CT lumbar spine with contrast"}  # rated 1 in both V3 and V2
    payload = client.post("/cds-services/spine-order-select", json=body).get_json()
    assert [c for c in payload["cards"] if c["source"]["topic"]["code"] == "acr-low-back-pain-2021-rating"] == []
    [unrated] = [c for c in payload["cards"] if c["source"]["topic"]["code"] == "acr-low-back-pain-2021-no-variant"]
    assert "not rated" in unrated["summary"] and "(ACR 1/9)" not in unrated["summary"]
    assert "does not show enough to choose between ACR variants 3, 2" in unrated["detail"]
    assert "To rate it, document:" in unrated["detail"]
    assert [a for a in payload.get("systemActions", ()) if a["resource"]["resourceType"] == "ServiceRequest"] == []
