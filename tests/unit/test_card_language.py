"""Cards are for clinicians: every card of every fixture scenario (both hooks, with and without prefetch, and
with the safety data unobtainable) is held to plain clinical language and to authoritative sources.

No fact keys, variant ids, "seed", "status", file or section names in any text a clinician reads; every URL
on a card is https and on a host a hospital would accept as a citation (ACR, PubMed/DOI, CMS, NASS)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from cds_service import create_app
from cds_service.cli.fixtures import hook_request, list_scenarios, materialise, search
from cds_service.clinical.facts import VOCABULARY
from cds_service.settings import load_settings
from tests.helpers import JsonServer

TODAY = date(2026, 12, 1)
SERVICES = {"order-select": "spine-order-select", "order-sign": "spine-order-sign"}
CITATION_HOSTS = {"acsearch.acr.org", "gravitas.acr.org", "www.acr.org", "pubmed.ncbi.nlm.nih.gov", "doi.org",
                  "www.cms.gov", "www.spine.org", "north-american-spine-society.foleon.com"}
INTERNAL = re.compile(
    r"\b(?:v\d{1,2}|seed|status|section|reference notes|project specification)\b|\.json\b|\w=\w|\bacr-vcf-"
    r"|\b(?:painScores|boneDensity|imagingReports|imagingStudies)\b"  # prefetch keys
    r"|\b(?:" + "|".join(n for n in VOCABULARY if "_" in n) + r")\b", re.IGNORECASE)
SAFETY_KEYS = ("observations",)  # where the neurologic examination lives


def clinician_texts(card: dict[str, Any]) -> list[str]:
    texts = [card["summary"], card.get("detail", ""), card["source"].get("label", "")]
    texts += [s["label"] for s in card.get("suggestions", ())] + [link["label"] for link in card.get("links", ())]
    texts += [r["display"] for r in card.get("overrideReasons", ())]
    # the references in "Data used: Condition/x, ..." are FHIR ids of the record, not our vocabulary
    return [re.sub(r"Data used: [^\n]*|\]\(https://[^)\s]*\)|<https://[^>\s]*>", "", t) for t in texts]


def urls(card: dict[str, Any]) -> list[str]:
    found = [card["source"].get("url"), *(link["url"] for link in card.get("links", ()))]
    found += re.findall(r"\]\((https?://[^)\s]+)\)|<(https?://[^>\s]+)>", card.get("detail", ""))
    flat = [u for item in found for u in (item if isinstance(item, tuple) else (item,)) if u]
    return flat


@pytest.fixture(scope="module")
def responses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    current: dict[str, Any] = {}

    def answer(path: str) -> tuple[int, Any]:
        query = unquote(path.split("/fhir/", 1)[1])
        scenario = current["scenario"]
        if query.startswith("Patient/"):
            return 200, next(r for r in scenario.resources if r["resourceType"] == "Patient")
        return 200, search(scenario.resources, query, scenario.patient_id)

    server = JsonServer(answer)
    base = server.url("/fhir")
    settings = load_settings({"CDS_FHIR_ALLOWLIST": base, "CDS_FHIR_TIMEOUT": "5", "CDS_FHIR_BUDGET": "10",
                              "CDS_CALL_DEADLINE": "30"},
                             data_dir=str(tmp_path_factory.mktemp("cards")))
    client = create_app(settings).test_client()
    out: dict[str, dict[str, Any]] = {}
    try:
        for name in list_scenarios():
            current["scenario"] = materialise(name, TODAY)
            for hook, service in SERVICES.items():
                for mode in ("prefetch", "fetched", "safety-data-unavailable"):
                    body = hook_request(current["scenario"], hook, with_prefetch=mode != "fetched",
                                        fhir_server=None if mode == "prefetch" else base)
                    if mode == "safety-data-unavailable":  # the EHR's own prefetch failed; no server to ask
                        body.pop("fhirServer", None)
                        for key in SAFETY_KEYS:
                            body["prefetch"][key] = {"resourceType": "OperationOutcome", "issue": [
                                {"severity": "error", "code": "exception"}]}
                    response = client.post(f"/cds-services/{service}", json=body)
                    assert response.status_code == 200, (name, hook, mode, response.text)
                    out[f"{name} {hook} {mode}"] = response.get_json()
    finally:
        server.stop()
    return out


def test_every_card_speaks_plain_clinical_language(responses: dict[str, dict[str, Any]]) -> None:
    problems = [f"{key}: {card['summary']!r}: {match.group(0)!r}"
                for key, response in responses.items() for card in response["cards"]
                for text in clinician_texts(card) for match in [INTERNAL.search(text)] if match]
    assert problems == []
    assert sum(len(r["cards"]) for r in responses.values()) > 100


def test_every_url_on_a_card_is_an_authoritative_https_citation(responses: dict[str, dict[str, Any]]) -> None:
    bad = sorted({url for response in responses.values() for card in response["cards"] for url in urls(card)
                  if urlsplit(url).scheme != "https" or urlsplit(url).hostname not in CITATION_HOSTS})
    assert bad == []


def test_summaries_are_short_and_do_not_open_the_detail(responses: dict[str, dict[str, Any]]) -> None:
    for response in responses.values():
        for card in response["cards"]:
            assert len(card["summary"]) < 140
            assert not card.get("detail", "").startswith(f"**{card['summary']}")


def test_unchecked_neurologic_data_is_never_assumed_absent(responses: dict[str, dict[str, Any]]) -> None:
    """The seed patient's kyphoplasty is usually appropriate; without the exam data the red flag stays unknown
    (a new deficit would leave neither of the open variants), and so do the pain trend and whether the fracture
    is symptomatic (a pain score there may be the latest), so the order is not rated: the card says what would
    decide it and what could not be read, and nothing is written onto the order."""
    for hook in SERVICES:
        full = responses[f"seed-worsening-benign-vcf {hook} prefetch"]
        blind = responses[f"seed-worsening-benign-vcf {hook} safety-data-unavailable"]
        assert full["cards"][0]["summary"] == "Kyphoplasty, thoracic: usually appropriate (ACR 8/9)"
        rating = blind["cards"][0]
        assert rating["summary"] == "Kyphoplasty, thoracic: rating depends on facts not in the record"
        assert "ACR 8/9" not in rating["detail"] and "provisional" not in rating["detail"].lower()
        written = [a for a in blind.get("systemActions", ()) if a["resource"]["resourceType"] == "ServiceRequest"]
        assert written == []  # the order is not marked appropriate on incomplete data
        assert "What would decide it: neurologic red flag, symptoms from the fracture" in rating["detail"]
        assert "**Data not available** (not checked" in rating["detail"]
        assert "examination and imaging findings: prefetch is an OperationOutcome" in rating["detail"]


def cervical_mri_without_fracture() -> dict[str, Any]:
    """The knee patient (no spine problem on record) with a cervical MRI: no built topic covers it."""
    body = hook_request(materialise("no-spine-problem", TODAY), "order-sign", with_prefetch=True, fhir_server=None)
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["code"] = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72141"}]}
    return body


def test_an_order_outside_the_criteria_gets_no_card_only_no_criteria_apply(tmp_path: Path) -> None:
    settings = load_settings({"CDS_CRITERIA": "acr-vcf-2022"}, data_dir=str(tmp_path))  # no cervical topic on
    response = create_app(settings).test_client().post("/cds-services/spine-order-sign",
                                                       json=cervical_mri_without_fracture()).get_json()
    assert response["cards"] == []
    codes = [e["valueCodeableConcept"]["coding"][0]["code"] for a in response["systemActions"]
             for e in a["resource"]["extension"] if e["url"].endswith("/pama-rating")]
    assert codes and set(codes) == {"no-criteria-apply"}


def test_the_explanation_card_can_be_switched_on_for_testing(tmp_path: Path) -> None:
    settings = load_settings({"CDS_EXPLAIN_OUT_OF_SCOPE": "true", "CDS_CRITERIA": "acr-vcf-2022"},
                             data_dir=str(tmp_path))
    client = create_app(settings).test_client()
    cards = client.post("/cds-services/spine-order-sign", json=cervical_mri_without_fracture()).get_json()["cards"]
    assert [c["summary"] for c in cards] == [
        "MRI cervical spine without contrast: no ACR criteria in this service apply"]


def test_what_the_problem_list_would_show_is_never_stated_when_it_could_not_be_read(tmp_path: Path) -> None:
    """The seed patient's kyphoplasty with the problem list unobtainable: the coverage checklist says its items
    could not be checked (not "not recorded"), and no card says there is no cancer."""
    body = hook_request(materialise("seed-worsening-benign-vcf", TODAY), "order-sign", with_prefetch=True,
                        fhir_server=None)
    body["prefetch"]["conditions"] = {"resourceType": "OperationOutcome",
                                      "issue": [{"severity": "error", "code": "exception"}]}
    client = create_app(load_settings({}, data_dir=str(tmp_path))).test_client()
    cards = client.post("/cds-services/spine-order-sign", json=body).get_json()["cards"]
    [coverage] = [c for c in cards if "Medicare augmentation coverage" in c["summary"]]
    for item in ("Acute or subacute fracture", "No infection or pregnancy recorded"):
        assert f"- [ ] {item}: could not be checked (problem list unavailable)" in coverage["detail"]
    assert "not recorded" not in coverage["detail"]
    assert not [c["summary"] for c in cards if "malignancy: none" in c.get("detail", "")]


def test_pain_and_conservative_care_are_never_stated_absent_when_their_data_could_not_be_read(tmp_path: Path) -> None:
    """The seed patient's kyphoplasty with neither the pain scores nor the exam and survey observations
    obtainable (and no medication list): the checklist's pain items and failed conservative care could not be
    checked; it never says "not recorded" or "not documented" for data it did not read."""
    body = hook_request(materialise("seed-worsening-benign-vcf", TODAY), "order-sign", with_prefetch=True,
                        fhir_server=None)
    for key in ("painScores", "observations", "medications"):
        body["prefetch"][key] = {"resourceType": "OperationOutcome",
                                 "issue": [{"severity": "error", "code": "exception"}]}
    client = create_app(load_settings({}, data_dir=str(tmp_path))).test_client()
    cards = client.post("/cds-services/spine-order-sign", json=body).get_json()["cards"]
    [coverage] = [c for c in cards if "Medicare augmentation coverage" in c["summary"]]
    for item in ("Pain score of 5 or more (0-10)", "Worsening pain", "Pain persists despite non-surgical management"):
        assert f"- [ ] {item}: could not be checked (" in coverage["detail"], item
    assert "not recorded" not in coverage["detail"] and "not documented" not in coverage["detail"]


def test_a_low_back_pain_red_flag_is_never_assumed_absent_when_its_data_could_not_be_read(tmp_path: Path) -> None:
    """Acute uncomplicated low back pain: MRI is usually not appropriate (variant 1). Without the medication list
    long-term steroid use (variant 6, usually appropriate) could not be checked, so the MRI is not rated and no
    rating is written onto the order; the card names the medication list as not available."""
    client = create_app(load_settings({}, data_dir=str(tmp_path))).test_client()
    body = hook_request(materialise("lbp-v1-acute-uncomplicated", TODAY), "order-select", with_prefetch=True,
                        fhir_server=None)
    full = client.post("/cds-services/spine-order-select", json=body).get_json()
    assert full["cards"][0]["summary"].endswith("usually not appropriate (ACR 1/9)")
    body["prefetch"]["medications"] = {"resourceType": "OperationOutcome",
                                       "issue": [{"severity": "error", "code": "exception"}]}
    blind = client.post("/cds-services/spine-order-select", json=body).get_json()
    rating = blind["cards"][0]
    assert "ACR 1/9" not in rating["summary"] and "medication list: prefetch is an OperationOutcome" in rating["detail"]
    assert not [a for a in blind.get("systemActions", ()) if a["resource"]["resourceType"] == "ServiceRequest"]


def test_a_latest_pain_score_or_trend_is_never_taken_from_part_of_the_pain_data(tmp_path: Path) -> None:
    """An incidental fracture recorded without symptoms: kyphoplasty is usually not appropriate (variant 5). With
    the pain scores unobtainable but the exam observations read, a later score among those not read could make
    the fracture symptomatic (the latest evidence wins), so the order is not rated and nothing is written; the
    checklist says the pain items could not be checked instead of 'not documented'."""
    client = create_app(load_settings({}, data_dir=str(tmp_path))).test_client()
    body = hook_request(materialise("asymptomatic-incidental-vcf", TODAY), "order-select", with_prefetch=True,
                        fhir_server=None)
    full = client.post("/cds-services/spine-order-select", json=body).get_json()
    assert any(c["summary"] == "Kyphoplasty, thoracic: usually not appropriate (ACR 3/9)" for c in full["cards"])
    body["prefetch"]["painScores"] = {"resourceType": "OperationOutcome",
                                      "issue": [{"severity": "error", "code": "exception"}]}
    blind = client.post("/cds-services/spine-order-select", json=body).get_json()
    [rating] = [c for c in blind["cards"] if c["summary"].startswith("Kyphoplasty, thoracic:")]
    assert "ACR 3/9" not in rating["summary"] and "symptoms from the fracture: no" not in rating["detail"]
    assert "What would decide it: symptoms from the fracture" in rating["detail"]
    assert "- If ACR variant 5 applies: usually not appropriate (3).\n" in rating["detail"]  # the variant named once
    assert not [a for a in blind.get("systemActions", ()) if a["resource"]["resourceType"] == "ServiceRequest"]
    [coverage] = [c for c in blind["cards"] if "Medicare augmentation coverage" in c["summary"]]
    for item in ("Pain score of 5 or more (0-10)", "Worsening pain"):
        assert f"- [ ] {item}: could not be checked (pain scores unavailable)" in coverage["detail"], item


@pytest.mark.parametrize("name", ["lbp-v1-acute-uncomplicated", "tbp-v5-immunosuppressed"])
def test_an_order_is_never_recorded_as_outside_the_criteria_when_the_scope_could_not_be_checked(
        tmp_path: Path, name: str) -> None:
    """Back pain imaging is rated with full data. Without the problem list, whether the patient has high-energy
    trauma or a vertebral fracture (which put the order under other ACR criteria) is unknown: the order used to
    get no card and 'no criteria apply' written onto it. Now it is not rated, nothing is written, and the card
    says why and names the problem list as not available."""
    client = create_app(load_settings({}, data_dir=str(tmp_path))).test_client()
    body = hook_request(materialise(name, TODAY), "order-select", with_prefetch=True, fhir_server=None)
    full = client.post("/cds-services/spine-order-select", json=body).get_json()
    assert re.search(r": (usually|may be) (not )?appropriate \(ACR \d/9\)$", full["cards"][0]["summary"])
    body["prefetch"]["conditions"] = {"resourceType": "OperationOutcome",
                                      "issue": [{"severity": "error", "code": "exception"}]}
    blind = client.post("/cds-services/spine-order-select", json=body).get_json()
    assert not [a for a in blind.get("systemActions", ()) if a["resource"]["resourceType"] == "ServiceRequest"]
    [rating] = [c for c in blind["cards"] if "not rated" in c["summary"]]
    assert "Which ACR criteria apply to this order depends on data that could not be read" in rating["detail"]
    assert "problem list: prefetch is an OperationOutcome" in rating["detail"]
