"""End to end over real HTTP: fixtures loaded into sekmet-fhir by the CLI loader, the service under gunicorn.

The same scenario must give the same clinical result whether its data arrive by prefetch or the service
fetches everything itself from the FHIR server (no prefetch at all).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from typing import Any

import pytest
import requests

from cds_service.cli.fixtures import hook_request, list_scenarios, materialise
from tests.helpers import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loaded_fhir(fhir_base_url: str) -> str:
    """Load every scenario through the same CLI command the README shows."""
    result = subprocess.run([sys.executable, "-m", "cds_service", "load-fixtures", "--fhir-server", fhir_base_url],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return fhir_base_url


def clinical_result(response: dict[str, Any]) -> dict[str, Any]:
    """What a clinician and the EHR see, minus the per-call ids."""
    return {
        "cards": [(c["indicator"], c["summary"], len(c.get("suggestions", []))) for c in response["cards"]],
        "ratings": sorted(
            (a["resource"]["id"], ext["valueCodeableConcept"]["coding"][0]["code"])
            for a in response.get("systemActions", [])
            for ext in a["resource"].get("extension", [])
            if ext["url"] == "http://fhir.org/argonaut/Extension/pama-rating"),
    }


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("name", list_scenarios())
def test_prefetch_and_fallback_fetching_give_the_same_result(live_service: Any, loaded_fhir: str, name: str,
                                                              hook: str) -> None:
    scenario = materialise(name, date.today())
    service = {"order-select": "spine-order-select", "order-sign": "spine-order-sign"}[hook]
    url = live_service.url(f"/cds-services/{service}")
    with_prefetch = requests.post(url, json=hook_request(scenario, hook, with_prefetch=True, fhir_server=None),
                                  timeout=10)
    fetched = requests.post(url, json=hook_request(scenario, hook, with_prefetch=False, fhir_server=loaded_fhir),
                            timeout=10)
    assert with_prefetch.status_code == 200, with_prefetch.text
    assert fetched.status_code == 200, fetched.text
    assert clinical_result(fetched.json()) == clinical_result(with_prefetch.json())


def test_send_scenario_cli_without_prefetch_prints_the_cards(live_service: Any, loaded_fhir: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cds_service", "send-scenario", "seed-worsening-benign-vcf",
         "--service-url", live_service.url("/cds-services/spine-order-select"),
         "--no-prefetch", "--fhir-server", loaded_fhir],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usually appropriate" in result.stdout
