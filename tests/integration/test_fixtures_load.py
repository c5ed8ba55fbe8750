"""Every scenario loads into a real, strict FHIR R4 server (sekmet-fhir), twice without duplicates, and
searches back with the counts the Bundle holds."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
import requests

from cds_service.cds_hooks.hook_definitions import load_hook_definitions
from cds_service.cli.fixtures import list_scenarios, load_into, materialise, prefetch_for
from cds_service.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow
SEARCHED = ("Condition", "Observation", "MedicationRequest", "DiagnosticReport", "Procedure")


def _search_ids(base: str, resource_type: str, patient_id: str) -> list[str]:
    response = requests.get(f"{base}/{resource_type}", params={"patient": patient_id, "_count": 200}, timeout=10)
    response.raise_for_status()
    return [e["resource"]["id"] for e in response.json().get("entry", [])
            if e["resource"]["resourceType"] == resource_type]


def test_every_scenario_loads_twice_without_duplicates(fhir_base_url: str) -> None:
    names = list_scenarios()
    first = load_into(fhir_base_url, names)
    second = load_into(fhir_base_url, names)
    assert [s.name for s in first] == names
    for before, again in zip(first, second, strict=True):
        assert all(status.startswith(("200", "201")) for status in before.statuses + again.statuses)
        assert all(status.startswith("200") for status in again.statuses), "a second load must only update"
    today = date.today()
    for name in names:
        scenario = materialise(name, today)
        expected = Counter(r["resourceType"] for r in scenario.resources)
        for resource_type in SEARCHED:
            found = _search_ids(fhir_base_url, resource_type, scenario.patient_id)
            wanted = sorted(r["id"] for r in scenario.resources if r["resourceType"] == resource_type)
            assert len(found) == expected[resource_type], (name, resource_type)
            assert sorted(found) == wanted, (name, resource_type)
        patient = requests.get(f"{fhir_base_url}/Patient/{scenario.patient_id}", timeout=10).json()
        assert patient["birthDate"] == scenario.patient["birthDate"]


def test_the_prefetch_query_for_pain_scores_returns_them_newest_first(fhir_base_url: str) -> None:
    """The hook's observation template, run on the real server, finds the seed's rising pain scores."""
    scenario = materialise("seed-worsening-benign-vcf", date.today())
    load_into(fhir_base_url, [scenario.name])
    response = requests.get(
        f"{fhir_base_url}/Observation",
        params={"patient": scenario.patient_id, "code": "http://loinc.org|72514-3", "_sort": "-date"}, timeout=10)
    scores = [e["resource"]["valueInteger"] for e in response.json()["entry"]
              if e["resource"]["resourceType"] == "Observation"]
    assert scores == [8, 5, 7]


def test_prefetch_for_matches_what_the_server_returns_for_each_template(fhir_base_url: str) -> None:
    """prefetch_for selects by resource type only; on the real server the full templates agree with it."""
    definition = load_hook_definitions(PROJECT_ROOT / "hooks")["spine-order-sign"]
    for name in list_scenarios():
        scenario = materialise(name, date.today())
        load_into(fhir_base_url, [name])
        prefetch = prefetch_for(scenario, definition)
        for key, template in definition.prefetch.items():
            url = f"{fhir_base_url}/{template.replace('{{context.patientId}}', scenario.patient_id)}"
            answer = requests.get(url, timeout=10).json()
            if answer["resourceType"] != "Bundle":
                assert answer["id"] == prefetch[key]["id"]
                continue
            served = [e["resource"]["id"] for e in answer.get("entry", [])
                      if e.get("search", {}).get("mode") != "outcome"]
            ours = [e["resource"]["id"] for e in prefetch[key]["entry"]]
            if "_sort=" in template:
                assert served == ours, (name, key)
            else:  # unsorted: any order is right
                assert sorted(served) == sorted(ours), (name, key)
