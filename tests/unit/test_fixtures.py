"""The clinical scenarios in fhir_fixtures/: valid R4, internally consistent, dated relative to today,
and turned into hook calls that the service's own validator accepts."""

from __future__ import annotations

import argparse
import io
import json
import re
from datetime import date, timedelta

import pytest
import responses
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.cds_hooks.hook_definitions import load_hook_definitions
from cds_service.cds_hooks.validate import Limits, validate_request
from cds_service.cli import scenarios as cli_fixtures
from cds_service.cli.fixtures import (
    FixtureError,
    FixtureLoadError,
    hook_request,
    list_scenarios,
    load_into,
    materialise,
    prefetch_for,
    search,
    shift_dates,
)
from cds_service.settings import PROJECT_ROOT

TODAY = date(2027, 3, 15)
REQUIRED = {
    "seed-worsening-benign-vcf", "seed-with-neuro-deficit", "new-symptomatic-vcf-no-cancer",
    "new-symptomatic-vcf-cancer-history", "asymptomatic-incidental-vcf", "pathologic-vcf-metastasis",
    "on-osteoporosis-therapy", "no-spine-problem",
}
DEFINITIONS = load_hook_definitions(PROJECT_ROOT / "hooks")
NAMES = list_scenarios()
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def codes(resource: dict, element: str = "code") -> set[str]:
    return {c["code"] for c in resource.get(element, {}).get("coding", [])}


def of_type(scenario, resource_type: str) -> list[dict]:
    return [r for r in scenario.resources if r["resourceType"] == resource_type]


def test_every_required_scenario_exists() -> None:
    assert REQUIRED <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_is_valid_r4_and_loadable(name: str) -> None:
    scenario = materialise(name, TODAY)
    Bundle.model_validate(scenario.bundle)  # validates every entry's resource too
    for draft in scenario.draft_orders:
        ServiceRequest.model_validate(draft)
        assert draft["status"] == "draft" and draft["intent"] in {"order", "plan"}
    ids = set()
    for entry in scenario.bundle["entry"]:
        resource = entry["resource"]
        assert FHIR_ID.match(resource["id"]) and not resource["id"].isdigit()  # HAPI refuses numeric PUT ids
        assert entry["request"] == {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        ids.add(f"{resource['resourceType']}/{resource['id']}")
    references = re.findall(r'"reference": "([^"]+)"', json.dumps(scenario.bundle))
    assert set(references) <= ids, "every reference must resolve inside the Bundle"


@pytest.mark.parametrize("definition", DEFINITIONS.values(), ids=list(DEFINITIONS))
@pytest.mark.parametrize("name", NAMES)
def test_every_clinical_resource_is_prefetched_by_some_template(name: str, definition) -> None:
    """A fixture resource no template asks for would be invisible to the service: a silent test gap."""
    scenario = materialise(name, TODAY)
    prefetch = prefetch_for(scenario, definition)
    seen = {f"{v['resourceType']}/{v['id']}" for v in prefetch.values() if v and v["resourceType"] != "Bundle"}
    for value in prefetch.values():
        if value and value["resourceType"] == "Bundle":
            seen |= {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in value["entry"]}
    clinical = {f"{r['resourceType']}/{r['id']}" for r in scenario.resources if r["resourceType"] != "Practitioner"}
    assert clinical <= seen, clinical - seen


def test_search_applies_tokens_sort_and_count() -> None:
    scenario = materialise("seed-worsening-benign-vcf", TODAY)
    pid = scenario.patient_id
    pains = search(scenario.resources, f"Observation?patient={pid}&code=http://loinc.org|72514-3&_sort=-date", pid)
    assert [e["resource"]["valueInteger"] for e in pains["entry"]] == [8, 5, 7]
    first = search(scenario.resources, f"Observation?patient={pid}&code=72514-3,38267-1&_sort=date&_count=2", pid)
    assert first["total"] == 4 and len(first["entry"]) == 2
    assert search(scenario.resources, f"Observation?patient={pid}&code=http://snomed.info/sct|72514-3", pid)[
        "total"] == 0
    assert search(scenario.resources, "Condition?patient=someone-else", "someone-else")["total"] == 0
    reports = search(scenario.resources, f"DiagnosticReport?patient={pid}&category=RAD,LP29684-5", pid)
    assert reports["total"] == 3


@pytest.mark.parametrize("name", NAMES)
def test_dates_move_by_today_minus_anchor(name: str) -> None:
    at_anchor = materialise(name, materialise(name, TODAY).anchor_date)
    later = materialise(name, at_anchor.anchor_date + timedelta(days=100))
    for before, after in zip(at_anchor.resources, later.resources, strict=True):
        for key in ("recordedDate", "onsetDateTime", "effectiveDateTime", "authoredOn", "performedDateTime",
                    "birthDate", "issued"):
            if key in before:
                moved = date.fromisoformat(after[key][:10]) - date.fromisoformat(before[key][:10])
                assert moved == timedelta(days=100), (before["id"], key)
                assert after[key][10:] == before[key][10:]  # time and zone untouched
    for draft in later.draft_orders:
        assert draft["authoredOn"].startswith(later.today.isoformat())


def test_shift_dates_handles_every_fhir_date_form() -> None:
    value = {"a": "2026-06-01", "b": "2026-06-01T09:30:00-05:00", "c": "2026-12-31T23:59:59.123Z",
             "d": "2026", "e": "2026-06", "f": "not 2026-06-01", "g": [{"start": "2026-02-28"}], "h": 5}
    assert shift_dates(value, 1) == {
        "a": "2026-06-02", "b": "2026-06-02T09:30:00-05:00", "c": "2027-01-01T23:59:59.123Z",
        "d": "2026", "e": "2026-06", "f": "not 2026-06-01", "g": [{"start": "2026-03-01"}], "h": 5}


def test_seed_scenario_tells_the_seed_story() -> None:
    seed = materialise("seed-worsening-benign-vcf", TODAY)
    conditions = set().union(*(codes(c) for c in of_type(seed, "Condition")))
    assert {"M80.08XA", "M81.0", "R06.02", "M40.204"} <= conditions
    fracture = next(c for c in of_type(seed, "Condition") if "M80.08XA" in codes(c))
    assert date.fromisoformat(fracture["onsetDateTime"][:10]) == TODAY - timedelta(days=90)
    pains = sorted((o["effectiveDateTime"], o["valueInteger"]) for o in of_type(seed, "Observation")
                   if "72514-3" in codes(o))
    assert pains[-1][1] > pains[-2][1] and pains[-1][1] >= 8
    assert not {"993449", "993452", "46041", "77655"} & set().union(
        *(codes(m, "medicationCodeableConcept") for m in of_type(seed, "MedicationRequest")))
    assert codes(seed.draft_orders[0]) == {"22513"}
    neuro = materialise("seed-with-neuro-deficit", TODAY)
    assert {"R33.9", "267064002"} <= set().union(*(codes(c) for c in of_type(neuro, "Condition")))


def test_denosumab_was_given_four_months_ago_and_the_order_ended() -> None:
    scenario = materialise("on-osteoporosis-therapy", TODAY)
    (denosumab,) = [m for m in of_type(scenario, "MedicationRequest")
                    if "993449" in codes(m, "medicationCodeableConcept")]
    assert denosumab["status"] == "completed"
    assert 110 <= (TODAY - date.fromisoformat(denosumab["authoredOn"][:10])).days <= 130


@pytest.mark.parametrize("definition", DEFINITIONS.values(), ids=list(DEFINITIONS))
@pytest.mark.parametrize("name", NAMES)
def test_prefetch_covers_every_template_key(name: str, definition) -> None:
    scenario = materialise(name, TODAY)
    prefetch = prefetch_for(scenario, definition)
    assert set(prefetch) == set(definition.prefetch)
    Patient.model_validate(prefetch["patient"])
    assert prefetch["patient"]["id"] == scenario.patient_id
    for key, value in prefetch.items():
        if key == "patient":
            continue
        Bundle.model_validate(value)
        assert value["type"] == "searchset" and value["total"] == len(value["entry"])
        wanted = definition.prefetch[key].split("?")[0]
        assert all(e["resource"]["resourceType"] == wanted for e in value["entry"])
        if "_sort=-date" in definition.prefetch[key] and wanted == "Observation":
            dates = [e["resource"]["effectiveDateTime"] for e in value["entry"]]
            assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize("definition", DEFINITIONS.values(), ids=list(DEFINITIONS))
@pytest.mark.parametrize("name", NAMES)
def test_hook_request_passes_the_service_validator(name: str, definition) -> None:
    scenario = materialise(name, TODAY)
    body = hook_request(scenario, definition.hook, with_prefetch=True, fhir_server="http://127.0.0.1:9/fhir",
                        definition=definition)
    request = validate_request(json.loads(json.dumps(body)), definition, Limits())
    assert request.patient_id == scenario.patient_id and request.user_id.startswith("Practitioner/")
    assert body["context"]["draftOrders"]["type"] == "collection"
    Bundle.model_validate(body["context"]["draftOrders"])
    assert len(request.draft_entries) == len(scenario.draft_orders)
    if definition.hook == "order-select":
        assert request.selections == scenario.selections
    else:
        assert "selections" not in body["context"]


def test_hook_request_without_prefetch_and_with_fresh_instances() -> None:
    scenario = materialise("seed-worsening-benign-vcf", TODAY)
    first = hook_request(scenario, "order-sign", with_prefetch=False, fhir_server="http://127.0.0.1:9/fhir")
    second = hook_request(scenario, "order-sign", with_prefetch=False, fhir_server=None)
    assert "prefetch" not in first and first["fhirServer"] == "http://127.0.0.1:9/fhir"
    assert "fhirServer" not in second and first["hookInstance"] != second["hookInstance"]
    with pytest.raises(FixtureError):
        hook_request(scenario, "patient-view", with_prefetch=False, fhir_server=None)
    with pytest.raises(FixtureError):
        materialise("no-such-scenario", TODAY)


@responses.activate
def test_load_into_reports_the_operation_outcome() -> None:
    base = "http://127.0.0.1:9/fhir"
    responses.post(base, json={"resourceType": "Bundle", "type": "transaction-response",
                               "entry": [{"response": {"status": "201 Created"}}]})
    responses.post(base, status=400, json={"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": "Condition.foo: extra input"}]})
    loaded = load_into(base, ["no-spine-problem"], today=TODAY)
    assert loaded[0].patient_id == "vcf-knee-58m" and loaded[0].statuses == ("201 Created",)
    with pytest.raises(FixtureLoadError, match=r"no-spine-problem: .* 400: Condition.foo: extra input"):
        load_into(base, ["no-spine-problem"], today=TODAY)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_fixtures.add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@responses.activate
def test_send_scenario_uses_discovery_and_prints_cards() -> None:
    base = "http://127.0.0.1:9/cds-services"
    discovery = {"services": [DEFINITIONS["spine-order-select"].discovery_entry()]}
    responses.get(base, json=discovery)
    responses.post(f"{base}/spine-order-select", json={"cards": [
        {"summary": "Kyphoplasty: usually appropriate", "indicator": "info", "source": {"label": "ACR AC"},
         "suggestions": [{"label": "Start osteoporosis therapy"}]}]})
    args = parse(["send-scenario", "seed-worsening-benign-vcf", "--service-url", f"{base}/spine-order-select"])
    out = io.StringIO()
    assert args.func(args, out=out) == 0
    assert "[info] Kyphoplasty: usually appropriate" in out.getvalue()
    sent = json.loads(responses.calls[1].request.body)
    assert sent["hook"] == "order-select" and set(sent["prefetch"]) == set(discovery["services"][0]["prefetch"])


def test_send_scenario_needs_a_fhir_server_without_prefetch() -> None:
    args = parse(["send-scenario", "no-spine-problem", "--service-url", "http://127.0.0.1:9/cds-services/x",
                  "--no-prefetch"])
    assert args.func(args) == 2


def test_format_cards_without_cards() -> None:
    assert cli_fixtures.format_cards({"cards": []}) == "(no cards)"


@responses.activate
def test_load_fixtures_command_reports_each_scenario_and_fails_cleanly() -> None:
    base = "http://127.0.0.1:9/fhir"
    responses.post(base, json={"resourceType": "Bundle", "type": "transaction-response", "entry": []})
    responses.post(base, status=400, json={"resourceType": "OperationOutcome", "issue": [{"code": "invalid"}]})
    args = parse(["load-fixtures", "--fhir-server", base, "--scenario", "no-spine-problem"])
    out = io.StringIO()
    assert args.func(args, out=out) == 0
    assert out.getvalue().startswith("no-spine-problem: Patient/vcf-knee-58m")
    assert args.func(args, out=out) == 1
