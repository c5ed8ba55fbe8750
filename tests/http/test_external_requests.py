"""Every real client request in shared/external/ gets a deliberate answer over HTTP from the real server.

The service runs under gunicorn (``cds-service serve``) on a free loopback port. Each body goes to the
service whose hook it names (or order-select when it names none or another hook). Expected: 200, or a 4xx
with an OperationOutcome message; never a 5xx.
"""

from typing import Any

import pytest
import requests

from tests.conftest import external_files, load_external

pytestmark = pytest.mark.slow

SERVICE_FOR_HOOK = {"order-select": "spine-order-select", "order-sign": "spine-order-sign"}


# The deliberate answer for each real client request (see shared/external/README.md), pinned exactly.
# 412: a spine order whose patient data is neither prefetched nor on an allowlisted FHIR server.
EXPECTED_STATUS = {
    "epic-apporchard-order-select-request.json": 200,  # medication orders only: not ours, no cards
    "pama-connectathon-scenario-01-order-select-request.json": 412,  # CT lumbar spine
    "pama-connectathon-scenario-02-order-select-request.json": 200,  # CTA chest: not a spine order
    "pama-ig-archive-order-select-request-superseded.json": 400,  # no hook
    "pama-ig-order-select-request.json": 200,  # MRA knee: not a spine order
    "sandbox-pama-order-select-initial-empty.json": 200,  # empty coding: nothing to rate
    "sandbox-pama-order-select-smart-launch.json": 200,  # its order is for another patient: not read, no card
    "sandbox-pama-order-select.json": 412,  # MRI lumbar spine
    "sandbox-rx-order-select-r4.json": 200,  # medication order
    "sandbox-rx-order-sign-dstu2-default.json": 200,  # DSTU2 MedicationOrder: skipped
    "sandbox-services-stub-dummy1-order-select.json": 200,  # CPT "1234": not recognised
    "sandbox-services-stub-dummy3-order-select.json": 200,  # empty code: skipped entry
    "sandbox-services-stub-s1r1-order-select.json": 412,  # CT lumbar spine
    "sandbox-services-stub-s1r2-order-select.json": 200,
    "sandbox-services-stub-s2r2-order-select.json": 200,
    "sandbox-services-stub-s2r3-order-select.json": 200,
    "sandbox-tab-reclick-order-select-no-draftorders.json": 400,  # no selections / draftOrders
    "spec-request-example-patient-view.json": 400,  # wrong hook
    "spec-request-extension-example.json": 400,  # wrong hook
}


def test_every_request_file_has_a_pinned_answer() -> None:
    assert set(EXPECTED_STATUS) == set(external_files("request"))


@pytest.mark.parametrize("name", external_files("request"))
def test_real_request_gets_a_deliberate_answer(live_service: Any, name: str) -> None:
    body = load_external(name)
    hook = body.get("hook") if isinstance(body, dict) else None
    service = SERVICE_FOR_HOOK.get(hook, "spine-order-select")
    response = requests.post(live_service.url(f"/cds-services/{service}"), json=body, timeout=10)
    assert response.status_code < 500, response.text
    assert response.status_code == EXPECTED_STATUS[name], (response.status_code, response.text)
    payload = response.json()
    if response.status_code == 200:
        assert isinstance(payload["cards"], list)
    else:
        diagnostics = payload["issue"][0]["diagnostics"]
        assert diagnostics and "Traceback" not in diagnostics


def test_non_spine_orders_get_no_cards_and_no_fetch(live_service: Any) -> None:
    """The Epic MedicationRequest call and the CTA-chest PAMA call are not spine orders: 200, no cards."""
    for name in ("epic-apporchard-order-select-request.json",
                 "pama-connectathon-scenario-02-order-select-request.json"):
        response = requests.post(live_service.url("/cds-services/spine-order-select"), json=load_external(name),
                                 timeout=10)
        assert response.status_code == 200
        assert response.json() == {"cards": []}


def test_spine_order_without_reachable_data_is_412_naming_the_data(live_service: Any) -> None:
    """Sandbox PAMA MRI lumbar: a spine order, no prefetch, fhirServer not on the allowlist -> 412 says why."""
    response = requests.post(live_service.url("/cds-services/spine-order-select"),
                             json=load_external("sandbox-pama-order-select.json"), timeout=10)
    assert response.status_code == 412
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert "patient" in diagnostics and "allowlist" in diagnostics
