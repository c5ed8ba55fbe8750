"""gather_fhir_data against a real FHIR R4 server (sekmet-fhir): fetching equals prefetching.

The transaction Bundle in tests/fhir_server/ is PUT into an empty server; then the service's own prefetch
templates are answered twice: once by gather_fhir_data fetching them (no prefetch in the request), once by
an "EHR" that ran the same templates itself and sent the answers as prefetch. Both must give the same
resources, and neither may include the second patient's data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cds_service.cds_hooks.hook_definitions import HookDefinition, load_hook_definitions
from cds_service.cds_hooks.validate import HookRequest
from cds_service.fhir.client import UNREACHABLE, FhirFetcher
from cds_service.fhir.gather import PatientData, gather_fhir_data
from cds_service.settings import PROJECT_ROOT, Settings, load_settings

pytestmark = pytest.mark.slow

TRANSACTION = PROJECT_ROOT / "tests" / "fhir_server" / "vcf-transaction.json"
PATIENT = "vcf-pt-1"


@pytest.fixture(scope="module")
def loaded(fhir_base_url: str) -> dict[str, Any]:
    """The transaction Bundle, after the server accepted every entry."""
    bundle = json.loads(TRANSACTION.read_text())
    answer = requests.post(fhir_base_url, json=bundle, timeout=30,
                           headers={"Content-Type": "application/fhir+json"})
    assert answer.status_code == 200, answer.text
    statuses = [e["response"]["status"] for e in answer.json()["entry"]]
    assert all(s.startswith(("200", "201")) for s in statuses), statuses
    return bundle


@pytest.fixture(scope="module")
def definition() -> HookDefinition:
    return load_hook_definitions(PROJECT_ROOT / "hooks")["spine-order-select"]


@pytest.fixture
def fhir_settings() -> Settings:
    return load_settings({}, fhir_timeout=5.0, fhir_budget=10.0)  # the first _sort query warms SQLite up


@pytest.fixture
def fetcher(fhir_settings: Settings) -> Iterator[FhirFetcher]:
    fetcher = FhirFetcher(fhir_settings)
    yield fetcher
    fetcher.close()


def hook_request(fhir_server: str, prefetch: dict[str, Any]) -> HookRequest:
    return HookRequest(service_id="spine-order-select", hook="order-select", hook_instance="i-1",
                       patient_id=PATIENT, user_id="Practitioner/dr-1", encounter_id=None, selections=(),
                       draft_entries=(), fhir_server=fhir_server, prefetch=prefetch)


def ids(data: PatientData) -> dict[str, set[str]]:
    return {kind: {r["id"] for r in resources} for kind, resources in data.resources.items()}


def test_fetching_gives_the_patients_resources(loaded: dict[str, Any], fhir_base_url: str,
                                               definition: HookDefinition, fetcher: FhirFetcher,
                                               fhir_settings: Settings) -> None:
    data = gather_fhir_data(hook_request(fhir_base_url, {}), definition, fetcher, fhir_settings.fhir_budget)
    assert data.missing == ()
    assert set(data.origin.values()) == {"fetched"}
    expected: dict[str, set[str]] = {}
    for entry in loaded["entry"]:
        resource = entry["resource"]
        if resource["id"] == PATIENT or resource.get("subject", {}).get("reference") == f"Patient/{PATIENT}":
            expected.setdefault(resource["resourceType"], set()).add(resource["id"])
    assert ids(data) == expected
    pain = [o["id"] for o in data.of_type("Observation") if o["code"]["coding"][0]["code"] == "72514-3"]
    assert pain == ["vcf-pain-late", "vcf-pain-early"]  # painScores asks for _sort=-date


def test_fetched_equals_prefetched(loaded: dict[str, Any], fhir_base_url: str, definition: HookDefinition,
                                   fetcher: FhirFetcher, fhir_settings: Settings) -> None:
    fetched = gather_fhir_data(hook_request(fhir_base_url, {}), definition, fetcher, fhir_settings.fhir_budget)
    prefetch = {}
    for key, template in definition.prefetch.items():  # what an EHR would send: its own answer per template
        url = f"{fhir_base_url}/{template.replace('{{context.patientId}}', PATIENT)}"
        prefetch[key] = requests.get(url, timeout=10, headers={"Accept": "application/fhir+json"}).json()
    prefetched = gather_fhir_data(hook_request(fhir_base_url, prefetch), definition, fetcher, fhir_settings.fhir_budget)
    assert set(prefetched.origin.values()) == {"prefetch"}
    assert prefetched.resources == fetched.resources


def test_paging_against_a_real_server(loaded: dict[str, Any], fhir_base_url: str, fetcher: FhirFetcher) -> None:
    query = {"observations": f"Observation?patient={PATIENT}&_sort=-date&_count=1"}
    result = fetcher.fetch_all(fhir_base_url, None, query, 10.0)["observations"]
    assert result.ok and result.complete and result.pages == 3
    assert [e["resource"]["id"] for e in result.resource["entry"]] == ["vcf-pain-late", "vcf-pain-early",
                                                                       "vcf-dxa-spine"]


def test_unknown_patient_is_a_412_naming_the_404(loaded: dict[str, Any], fhir_base_url: str,
                                                 definition: HookDefinition, fetcher: FhirFetcher,
                                                 fhir_settings: Settings) -> None:
    request = HookRequest(service_id="spine-order-select", hook="order-select", hook_instance="i-2",
                          patient_id="nobody-here", user_id="Practitioner/dr-1", encounter_id=None, selections=(),
                          draft_entries=(), fhir_server=fhir_base_url, prefetch={})
    data = gather_fhir_data(request, definition, fetcher, fhir_settings.fhir_budget)
    assert data.origin["patient"] == "missing" and data.origin["conditions"] == "fetched"
    assert {m.key: m.reason for m in data.missing} == {"patient": UNREACHABLE}
