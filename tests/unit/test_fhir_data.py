"""Prefetch semantics of gather_fhir_data (CDS Hooks 2.0 #prefetch) with the real fetcher and mocked HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from cds_service.cds_hooks.errors import DataUnavailable
from cds_service.cds_hooks.hook_definitions import HookDefinition, load_hook_definitions
from cds_service.cds_hooks.validate import HookRequest
from cds_service.fhir.client import FhirFetcher
from cds_service.fhir.gather import PatientData, gather_fhir_data
from cds_service.fhir.references import reference_type_and_id
from cds_service.settings import PROJECT_ROOT, Settings

BASE = "http://127.0.0.1:8090/fhir"
PATIENT = "pat-1"
EPIC = "https://ehr.example.org/api/FHIR/R4"


@pytest.fixture(scope="module")
def definition() -> HookDefinition:
    return load_hook_definitions(PROJECT_ROOT / "hooks")["spine-order-sign"]


def hook_request(prefetch: Mapping[str, Any], fhir_server: str | None = BASE, patient_id: str = PATIENT,
                 user_id: str = "Practitioner/doc-1") -> HookRequest:
    return HookRequest(service_id="spine-order-sign", hook="order-sign", hook_instance="i-1", patient_id=patient_id,
                       user_id=user_id, encounter_id=None, selections=None, draft_entries=(),
                       fhir_server=fhir_server, prefetch=prefetch,
                       fhir_authorization={"access_token": "tok", "token_type": "Bearer"})


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}


def res(kind: str, rid: str, patient: str = f"Patient/{PATIENT}", field: str = "subject") -> dict[str, Any]:
    return {"resourceType": kind, "id": rid, field: {"reference": patient}}


PATIENT_RESOURCE = {"resourceType": "Patient", "id": PATIENT}
EPIC_FAILED = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": [
    {"resource": {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "processing"}]},
     "search": {"mode": "outcome"}}]}


def full_prefetch(definition: HookDefinition, **overrides: Any) -> dict[str, Any]:
    """Every key filled (an empty searchset for searches), then ``overrides``."""
    prefetch: dict[str, Any] = {key: searchset() for key in definition.prefetch}
    prefetch["patient"] = PATIENT_RESOURCE
    prefetch.update(overrides)
    return prefetch


def serve_fhir(store: Mapping[str, list[dict[str, Any]]], status: int = 200) -> None:
    """Answer reads and searches under BASE from ``store`` (by resource type)."""
    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        path = urlsplit(request.url).path[len("/fhir/"):]
        kind, _, rid = path.partition("/")
        if rid:
            found = [r for r in store.get(kind, []) if r["id"] == rid]
            return (200, {}, json.dumps(found[0])) if found else (404, {}, "{}")
        return status, {}, json.dumps(searchset(*store.get(kind, [])))
    responses.add_callback(responses.GET, re.compile(re.escape(BASE) + "/.*"), callback=answer)


def called_types() -> list[str]:
    return [urlsplit(c.request.url).path.split("/")[2] for c in responses.calls]


@responses.activate
def test_all_prefetched_means_no_call(definition: HookDefinition, fetcher: FhirFetcher,
                                      fhir_settings: Settings) -> None:
    prefetch = full_prefetch(definition, conditions=searchset(res("Condition", "c1")))
    data = gather_fhir_data(hook_request(prefetch), definition, fetcher, fhir_settings.fhir_budget)
    assert len(responses.calls) == 0
    assert set(data.origin.values()) == {"prefetch"} and data.missing == ()
    assert [c["id"] for c in data.of_type("Condition")] == ["c1"]
    assert data.of_type("Patient") == (PATIENT_RESOURCE,)


@responses.activate
def test_null_means_no_data_and_no_query(definition: HookDefinition, fetcher: FhirFetcher,
                                         fhir_settings: Settings) -> None:
    data = gather_fhir_data(hook_request(full_prefetch(definition, procedures=None)), definition, fetcher,
                            fhir_settings.fhir_budget)
    assert len(responses.calls) == 0 and data.origin["procedures"] == "none" and data.missing == ()


@responses.activate
def test_missing_key_is_fetched_with_the_filled_template(definition: HookDefinition, fetcher: FhirFetcher,
                                                         fhir_settings: Settings) -> None:
    serve_fhir({"Condition": [res("Condition", "c9")]})
    prefetch = full_prefetch(definition)
    del prefetch["conditions"]
    data = gather_fhir_data(hook_request(prefetch), definition, fetcher, fhir_settings.fhir_budget)
    assert called_types() == ["Condition"]
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query == {"patient": [PATIENT], "_count": ["200"]}
    assert responses.calls[0].request.headers["Authorization"] == "Bearer tok"
    assert data.origin["conditions"] == "fetched" and [c["id"] for c in data.of_type("Condition")] == ["c9"]


@responses.activate
def test_template_values_are_url_encoded(definition: HookDefinition, fetcher: FhirFetcher,
                                         fhir_settings: Settings) -> None:
    responses.get(re.compile(".*"), json={"resourceType": "Patient", "id": "a b/c&d"})
    prefetch = full_prefetch(definition)
    del prefetch["patient"]
    gather_fhir_data(hook_request(prefetch, patient_id="a b/c&d"), definition, fetcher, fhir_settings.fhir_budget)
    assert responses.calls[0].request.url == f"{BASE}/Patient/a%20b%2Fc%26d"


@pytest.mark.parametrize(("value", "why"), [
    (EPIC_FAILED, "only an OperationOutcome"),
    ({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}, "OperationOutcome"),
    ("123", "not a FHIR resource"),
    (["Condition"], "not a FHIR resource"),
    ({"id": "c1"}, "not a FHIR resource"),
    (searchset({"resourceType": "Condition", "id": "d2", "patient": {"reference": f"Patient/{PATIENT}"},
                "clinicalStatus": "active"}), "DSTU2"),
    (searchset({"resourceType": "MedicationOrder", "id": "m1"}), "DSTU2"),
])
@responses.activate
def test_unusable_prefetch_is_fetched(definition: HookDefinition, fetcher: FhirFetcher, fhir_settings: Settings,
                                      value: Any, why: str) -> None:
    serve_fhir({"Condition": [res("Condition", "c-fetched")]})
    data = gather_fhir_data(hook_request(full_prefetch(definition, conditions=value)), definition, fetcher,
                            fhir_settings.fhir_budget)
    assert called_types() == ["Condition"]
    assert data.origin["conditions"] == "fetched"
    assert [c["id"] for c in data.of_type("Condition")] == ["c-fetched"]


@responses.activate
def test_unusable_prefetch_and_failed_fetch_give_both_reasons(definition: HookDefinition, fetcher: FhirFetcher,
                                                              fhir_settings: Settings) -> None:
    serve_fhir({}, status=401)
    data = gather_fhir_data(hook_request(full_prefetch(definition, observations=EPIC_FAILED)), definition, fetcher,
                            fhir_settings.fhir_budget)
    assert data.origin["observations"] == "missing"
    [missing] = data.missing
    assert missing.key == "observations" and "only an OperationOutcome" in missing.reason
    assert "FHIR server answered 401" in missing.reason


@responses.activate
def test_fetched_search_with_only_warning_outcomes_is_empty_not_missing(definition: HookDefinition,
                                                                       fetcher: FhirFetcher,
                                                                       fhir_settings: Settings) -> None:
    """Epic answers a search with no results by a Bundle holding one warning OperationOutcome."""
    responses.get(re.compile(re.escape(BASE) + "/Condition.*"), json=EPIC_FAILED)
    prefetch = full_prefetch(definition)
    del prefetch["conditions"]
    data = gather_fhir_data(hook_request(prefetch), definition, fetcher, fhir_settings.fhir_budget)
    assert data.origin["conditions"] == "fetched" and data.of_type("Condition") == ()
    assert data.missing == ()


def test_empty_searchset_is_no_data_not_missing(definition: HookDefinition, fetcher: FhirFetcher,
                                                fhir_settings: Settings) -> None:
    data = gather_fhir_data(hook_request(full_prefetch(definition)), definition, fetcher, fhir_settings.fhir_budget)
    assert data.origin["conditions"] == "prefetch" and data.of_type("Condition") == ()


def test_only_asked_for_types_are_kept(definition: HookDefinition, fetcher: FhirFetcher,
                                       fhir_settings: Settings) -> None:
    warning = {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "not-supported"}]}
    value = searchset(res("Condition", "c1"), warning, res("Observation", "o1"))
    data = gather_fhir_data(hook_request(full_prefetch(definition, conditions=value)), definition, fetcher,
                            fhir_settings.fhir_budget)
    assert set(data.resources) == {"Patient", "Condition"}


def test_references_compared_by_type_and_id(definition: HookDefinition, fetcher: FhirFetcher,
                                            fhir_settings: Settings) -> None:
    conditions = searchset(
        res("Condition", "relative"), res("Condition", "absolute", f"{EPIC}/Patient/{PATIENT}"),
        res("Condition", "versioned", f"{EPIC}/Patient/{PATIENT}/_history/3"),
        res("Condition", "other-relative", "Patient/someone-else"),
        res("Condition", "other-absolute", f"{EPIC}/Patient/someone-else"),
        res("Condition", "no-id-suffix", f"{EPIC}/Patient/{PATIENT}x"),
        res("Condition", "urn", "urn:uuid:0b1c"))
    meds = searchset(res("MedicationRequest", "m1", f"{EPIC}/Patient/{PATIENT}"),
                     res("MedicationRequest", "m2", "Patient/someone-else"))
    data = gather_fhir_data(hook_request(full_prefetch(definition, conditions=conditions, medications=meds)),
                            definition, fetcher, fhir_settings.fhir_budget)
    assert [c["id"] for c in data.of_type("Condition")] == ["relative", "absolute", "versioned", "urn"]
    assert [m["id"] for m in data.of_type("MedicationRequest")] == ["m1"]


@responses.activate
def test_prefetched_patient_of_someone_else_is_refetched(definition: HookDefinition, fetcher: FhirFetcher,
                                                         fhir_settings: Settings) -> None:
    serve_fhir({"Patient": [PATIENT_RESOURCE]})
    prefetch = full_prefetch(definition, patient={"resourceType": "Patient", "id": "someone-else"})
    data = gather_fhir_data(hook_request(prefetch), definition, fetcher, fhir_settings.fhir_budget)
    assert data.origin["patient"] == "fetched" and data.of_type("Patient") == (PATIENT_RESOURCE,)


def test_spec_example_patient_without_id_is_kept(definition: HookDefinition, fetcher: FhirFetcher,
                                                 fhir_settings: Settings) -> None:
    patient = {"resourceType": "Patient", "gender": "male", "...": "<snipped for brevity>"}
    data = gather_fhir_data(hook_request(full_prefetch(definition, patient=patient)), definition, fetcher,
                            fhir_settings.fhir_budget)
    assert data.of_type("Patient") == (patient,)


def test_search_results_without_id_are_dropped(definition: HookDefinition, fetcher: FhirFetcher,
                                               fhir_settings: Settings) -> None:
    value = searchset({"resourceType": "Condition", "subject": {"reference": f"Patient/{PATIENT}"}},
                      res("Condition", "c1"))
    data = gather_fhir_data(hook_request(full_prefetch(definition, conditions=value)), definition, fetcher,
                            fhir_settings.fhir_budget)
    assert [c["id"] for c in data.of_type("Condition")] == ["c1"]


def test_duplicates_across_keys_are_kept_once(definition: HookDefinition, fetcher: FhirFetcher,
                                              fhir_settings: Settings) -> None:
    pain = res("Observation", "pain-1")
    prefetch = full_prefetch(definition, painScores=searchset(pain, pain), observations=searchset(pain))
    data = gather_fhir_data(hook_request(prefetch), definition, fetcher, fhir_settings.fhir_budget)
    assert data.of_type("Observation") == (pain,)


def test_no_fhir_server_leaves_keys_missing(definition: HookDefinition, fetcher: FhirFetcher,
                                            fhir_settings: Settings) -> None:
    prefetch = full_prefetch(definition)
    del prefetch["procedures"]
    data = gather_fhir_data(hook_request(prefetch, fhir_server=None), definition, fetcher, fhir_settings.fhir_budget)
    assert data.origin["procedures"] == "missing"
    assert [(m.key, m.reason) for m in data.missing] == [("procedures", "no fhirServer in the request")]


def test_required_keys_all_missing_is_412(definition: HookDefinition, fetcher: FhirFetcher,
                                          fhir_settings: Settings) -> None:
    with pytest.raises(DataUnavailable) as caught:
        gather_fhir_data(hook_request({}, fhir_server=None), definition, fetcher, fhir_settings.fhir_budget)
    assert caught.value.status == 412
    assert "patient: no fhirServer in the request" in caught.value.message
    assert "conditions: no fhirServer in the request" in caught.value.message


@responses.activate
def test_not_allowlisted_server_is_named_in_the_412(definition: HookDefinition, fetcher: FhirFetcher,
                                                    fhir_settings: Settings) -> None:
    with pytest.raises(DataUnavailable) as caught:
        gather_fhir_data(hook_request({}, fhir_server="https://x.example.org/fhir"), definition, fetcher,
                         fhir_settings.fhir_budget)
    assert "fhirServer https://x.example.org/fhir is not on the allowlist" in caught.value.message
    assert len(responses.calls) == 0 and PATIENT not in caught.value.message


@responses.activate
def test_some_required_data_means_no_412(definition: HookDefinition, fetcher: FhirFetcher,
                                         fhir_settings: Settings) -> None:
    responses.get(re.compile(re.escape(BASE) + "/Condition.*"), status=503)
    data = gather_fhir_data(hook_request({"patient": PATIENT_RESOURCE}), definition, fetcher, fhir_settings.fhir_budget)
    assert isinstance(data, PatientData)
    assert data.origin["patient"] == "prefetch" and data.origin["conditions"] == "missing"
    assert {m.key: m.reason for m in data.missing}["conditions"] == "FHIR server answered 503"


def test_null_required_key_counts_as_data(definition: HookDefinition, fetcher: FhirFetcher,
                                          fhir_settings: Settings) -> None:
    data = gather_fhir_data(hook_request({"patient": None, "conditions": None}, fhir_server=None), definition,
                            fetcher, fhir_settings.fhir_budget)
    assert data.origin["patient"] == data.origin["conditions"] == "none"


@responses.activate
def test_incomplete_paging_is_reported(definition: HookDefinition, fhir_settings: Settings) -> None:
    page = {**searchset(res("Condition", "c1")), "link": [{"relation": "next", "url": f"{BASE}/Condition?p=2"}]}
    responses.get(re.compile(re.escape(BASE) + "/Condition.*"), json=page)
    fetcher = FhirFetcher(fhir_settings.but(fhir_max_pages=1))
    try:
        data = gather_fhir_data(hook_request({"patient": PATIENT_RESOURCE}), definition, fetcher,
                                fhir_settings.fhir_budget)
    finally:
        fetcher.close()
    assert data.origin["conditions"] == "fetched" and [c["id"] for c in data.of_type("Condition")] == ["c1"]
    assert "incomplete: stopped after 1 pages" in {m.key: m.reason for m in data.missing}["conditions"]


@pytest.mark.parametrize(("reference", "expected"), [
    ("Patient/abc", ("Patient", "abc")),
    ("https://ehr/api/FHIR/R4/Patient/abc", ("Patient", "abc")),
    ("Patient/abc/_history/2", ("Patient", "abc")),
    ("urn:uuid:1234", (None, None)),
    ("#contained", (None, None)),
    ("abc", (None, None)),
])
def test_reference_type_and_id(reference: str, expected: tuple[str | None, str | None]) -> None:
    assert reference_type_and_id(reference) == expected


@responses.activate
def test_user_and_encounter_tokens(fetcher: FhirFetcher, fhir_settings: Settings) -> None:
    responses.get(re.compile(".*"), json=searchset())
    definition = HookDefinition(
        id="t", hook="order-sign", title="t", description="t", required_prefetch=("a",),
        prefetch={"a": "PractitionerRole?practitioner={{userPractitionerId}}",
                  "b": "Encounter?_id={{context.encounterId}}",
                  "c": "Practitioner?_id={{userPractitionerRoleId}}",
                  "d": "Basic?author={{context.userId}}"})
    data = gather_fhir_data(hook_request({}), definition, fetcher, fhir_settings.fhir_budget)
    assert sorted(urlsplit(c.request.url).query for c in responses.calls) == [
        "author=Practitioner/doc-1", "practitioner=doc-1"]
    assert {m.key: m.reason for m in data.missing} == {
        "b": "the request has no value for context.encounterId",
        "c": "the request has no value for userPractitionerRoleId"}



def test_malformed_prefetched_resources_are_dropped_with_a_note(definition: HookDefinition, fetcher: FhirFetcher,
                                                                  fhir_settings: Settings) -> None:
    good = {**res("Condition", "c1"), "code": {"coding": [{"system": "http://snomed.info/sct", "code": "42942008"}]}}
    bad = {**res("Condition", "c2"), "clinicalStatus": {"coding": 3}}
    request = hook_request(full_prefetch(definition, conditions=searchset(good, bad)))
    data = gather_fhir_data(request, definition, fetcher, fhir_settings.fhir_budget)
    assert [c["id"] for c in data.of_type("Condition")] == ["c1"]
    assert data.origin["conditions"] == "prefetch"
    notes = {m.key: m.reason for m in data.missing}
    assert notes["conditions"] == "1 malformed Condition resource(s) ignored (wrong JSON type in: clinicalStatus)"
