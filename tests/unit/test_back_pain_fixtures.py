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
    "router-high-risk-trauma": (None, None, None, False),
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
