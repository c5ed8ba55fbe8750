"""Issue 5 acceptance, over HTTP against the real server: for every fixture scenario, the cards by indicator and
topic, and the rating written onto each order (systemActions), are exactly what a radiologist expects."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
import requests

from cds_service.cds_hooks.response import check_response
from cds_service.cli.fixtures import hook_request, materialise

pytestmark = pytest.mark.slow
PAMA = "http://fhir.org/argonaut/Extension/pama-rating"
ACR = "https://spine-order-cds.example.org/fhir/StructureDefinition/acr-rating"

RATING, GAP, COVERAGE = "acr-vcf-2022-rating", "osteoporosis-treatment-gap", "medicare-pva-coverage-check"
MALIGNANCY, NEW_FX, NEURO = "spine-pathologic-fracture-pathway", "spine-new-fracture-workup", "spine-neuro-red-flag"

# scenario -> (cards as (indicator, topic) in order, {order id: (pama-rating, acr-rating)})
EXPECTED: dict[str, tuple[list[tuple[str, str]], dict[str, tuple[str, str | None]]]] = {
    "seed-worsening-benign-vcf": (
        [("info", RATING), ("info", GAP), ("info", COVERAGE)],
        {"vcf-seed-82f-draft-kyphoplasty": ("appropriate", "usually-appropriate")}),
    "seed-with-neuro-deficit": (
        [("critical", NEURO), ("info", "acr-vcf-2022-no-variant"), ("info", GAP),
         ("info", "nass-auc-vcf-osteoporotic-surgery-neuro"), ("info", COVERAGE)],
        {}),  # red flags exclude the benign variants: no rating is written, the escalation leads
    "new-symptomatic-vcf-no-cancer": (
        [("info", RATING)], {"vcf-new-74f-draft-mri-lspine": ("appropriate", "usually-appropriate")}),
    "new-symptomatic-vcf-cancer-history": (
        [("warning", MALIGNANCY), ("info", RATING)],
        {"vcf-new-onc-68f-draft-mri-lspine": ("appropriate", "usually-appropriate")}),
    "asymptomatic-incidental-vcf": (
        [("warning", NEW_FX), ("warning", RATING), ("info", GAP), ("info", COVERAGE)],
        {"vcf-incidental-79f-draft-kyphoplasty": ("not-appropriate", "usually-not-appropriate")}),
    "asymptomatic-vcf-cancer-history": (
        [("warning", MALIGNANCY), ("info", RATING)],
        {"vcf-incid-onc-70f-draft-mri-lspine": ("appropriate", "usually-appropriate")}),
    "pathologic-vcf-metastasis": (
        [("warning", MALIGNANCY), ("info", RATING)],
        {"vcf-mets-71m-draft-ablation": ("appropriate", "usually-appropriate")}),
    "on-osteoporosis-therapy": (  # denosumab 4 months ago still counts: no gap card
        [("info", RATING), ("info", COVERAGE)],
        {"vcf-dmab-77f-draft-kyphoplasty": ("appropriate", "usually-appropriate")}),
    "symptomatic-vcf-marrow-edema": (
        [("info", RATING), ("info", GAP), ("info", COVERAGE)],
        {"vcf-edema-80f-draft-kyphoplasty": ("appropriate", "usually-appropriate")}),
    "new-pain-after-prior-vertebroplasty": (
        [("info", RATING), ("info", GAP)],
        {"vcf-postvp-84f-draft-mri-lspine": ("appropriate", "usually-appropriate")}),
    "no-spine-problem": ([], {}),
}


def call(live_service: Any, body: dict[str, Any], hook: str = "order-select") -> dict[str, Any]:
    service = {"order-select": "spine-order-select", "order-sign": "spine-order-sign"}[hook]
    response = requests.post(live_service.url(f"/cds-services/{service}"), json=body, timeout=10)
    assert response.status_code == 200, response.text
    payload = response.json()
    check_response(payload)
    return payload


def written_ratings(payload: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    result = {}
    for action in payload.get("systemActions", []):
        extensions = {e["url"]: e for e in action["resource"]["extension"]}
        acr = extensions.get(ACR)
        result[action["resource"]["id"]] = (extensions[PAMA]["valueCodeableConcept"]["coding"][0]["code"],
                                            acr["valueCodeableConcept"]["coding"][0]["code"] if acr else None)
    return result


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_cards_and_written_ratings(live_service: Any, name: str) -> None:
    cards, ratings = EXPECTED[name]
    payload = call(live_service, hook_request(materialise(name, date.today()), "order-select",
                                              with_prefetch=True, fhir_server=None))
    assert [(c["indicator"], c["source"]["topic"]["code"]) for c in payload["cards"]] == cards
    assert written_ratings(payload) == ratings
    if ratings:  # the sandbox reads only extension.systemActions
        assert payload["extension"]["systemActions"] == payload["systemActions"]


def test_order_sign_rates_every_draft_order(live_service: Any) -> None:
    scenario = materialise("pathologic-vcf-metastasis", date.today())
    payload = call(live_service, hook_request(scenario, "order-sign", with_prefetch=True, fhir_server=None),
                   "order-sign")
    assert written_ratings(payload) == {
        "vcf-mets-71m-draft-ablation": ("appropriate", "usually-appropriate"),
        "vcf-mets-71m-draft-radonc-referral": ("appropriate", "usually-appropriate")}


def test_seed_patient_kyphoplasty_matches_the_seed_article(live_service: Any) -> None:
    payload = call(live_service, hook_request(materialise("seed-worsening-benign-vcf", date.today()),
                                              "order-select", with_prefetch=True, fhir_server=None))
    rating = payload["cards"][0]
    assert rating["summary"] == "Kyphoplasty, thoracic: usually appropriate (ACR 8/9)"
    assert "ACR variant 8" in rating["detail"]
    assert "medical management only is rated may be appropriate (5/9)" in rating["detail"]
    assert all(card["indicator"] != "critical" for card in payload["cards"])


def test_new_neuro_deficit_puts_a_critical_referral_first(live_service: Any) -> None:
    payload = call(live_service, hook_request(materialise("seed-with-neuro-deficit", date.today()),
                                              "order-select", with_prefetch=True, fhir_server=None))
    critical = payload["cards"][0]
    assert critical["indicator"] == "critical"
    (suggestion,) = critical["suggestions"]
    (action,) = suggestion["actions"]
    assert action["type"] == "create"
    assert action["resource"]["code"]["coding"][0]["code"] == "308482002"  # referral to neurosurgeon
    assert action["resource"]["priority"] == "stat"


def test_not_appropriate_mri_gets_a_one_click_swap(live_service: Any) -> None:
    """New symptomatic VCF, no malignancy (2022 variant 1): MRI with contrast (72149) is usually not appropriate;
    the suggestion rewrites the same draft order to MRI without contrast (72148), rating included."""
    body = hook_request(materialise("new-symptomatic-vcf-no-cancer", date.today()), "order-select",
                        with_prefetch=True, fhir_server=None)
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    original = copy.deepcopy(order)
    order["code"] = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72149",
                                 "display": "MRI lumbar spine with contrast"}]}
    payload = call(live_service, body)
    card = next(c for c in payload["cards"] if c["source"]["topic"]["code"] == RATING)
    assert card["indicator"] == "warning"
    assert card["summary"].endswith("usually not appropriate (ACR 3/9)")
    assert card["selectionBehavior"] == "any"
    assert {r["code"] for r in card["overrideReasons"]}
    (suggestion,) = card["suggestions"]
    (action,) = suggestion["actions"]
    assert action["type"] == "update" and action["resource"]["id"] == original["id"]
    assert action["resource"]["code"]["coding"][0]["code"] == "72148"
    assert action["resource"]["subject"] == original["subject"]
    assert action["resource"]["reasonCode"] == original["reasonCode"]
    swapped = {e["url"]: e for e in action["resource"]["extension"]}
    assert swapped[PAMA]["valueCodeableConcept"]["coding"][0]["code"] == "appropriate"
    assert written_ratings(payload) == {original["id"]: ("not-appropriate", "usually-not-appropriate")}


def test_red_flag_is_not_suppressed_when_the_order_is_not_rated(live_service: Any) -> None:
    """Cauda equina, no vertebral fracture, a neurosurgery referral (a VCF order only with a fracture): the
    referral gets no rating, but the critical escalation is still shown."""
    body = hook_request(materialise("no-spine-problem", date.today()), "order-select", with_prefetch=True,
                        fhir_server=None)
    patient = body["context"]["patientId"]
    body["prefetch"]["conditions"]["entry"].append({"resource": {
        "resourceType": "Condition", "id": "cauda-equina", "subject": {"reference": f"Patient/{patient}"},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G83.4",
                             "display": "Cauda equina syndrome"}]},
        "onsetDateTime": date.today().isoformat()}})
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["code"] = {"coding": [{"system": "http://snomed.info/sct", "code": "308482002",
                                 "display": "Referral to neurosurgeon"}]}
    payload = call(live_service, body)
    assert [(c["indicator"], c["source"]["topic"]["code"]) for c in payload["cards"]] == [("critical", NEURO)]
    assert "systemActions" not in payload
