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


def expected_status(name: str, body: Any) -> set[int]:
    """What a careful integrator expects for each file (see shared/external/README.md)."""
    if not isinstance(body, dict) or "hook" not in body or body["hook"] not in SERVICE_FOR_HOOK:
        return {400}  # context-only examples, superseded PAMA request, patient-view examples
    if "draftOrders" not in body.get("context", {}):
        return {400}  # sandbox tab re-click: order-select context without selections/draftOrders
    return {200, 412}  # 412 when a spine order needs data the (non-allowlisted) fhirServer would hold


@pytest.mark.parametrize("name", external_files("request"))
def test_real_request_gets_a_deliberate_answer(live_service: Any, name: str) -> None:
    body = load_external(name)
    hook = body.get("hook") if isinstance(body, dict) else None
    service = SERVICE_FOR_HOOK.get(hook, "spine-order-select")
    response = requests.post(live_service.url(f"/cds-services/{service}"), json=body, timeout=10)
    assert response.status_code < 500, response.text
    assert response.status_code in expected_status(name, body), (response.status_code, response.text)
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
