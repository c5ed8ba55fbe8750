"""Every real client request in shared/external/ gets a deliberate answer over HTTP from the real server.

The service runs under gunicorn (``cds-service serve``) on a free loopback port. Each body goes to the
service whose hook it names (or order-select when it names none or another hook). Expected: 200, or a 4xx
with an OperationOutcome message; never a 5xx.
"""

from typing import Any

import pytest
import requests

from tests.helpers import external_files, load_external

pytestmark = pytest.mark.slow

SERVICE_FOR_HOOK = {"order-select": "spine-order-select", "order-sign": "spine-order-sign"}


# The deliberate answer for each real client request (see shared/external/README.md), pinned exactly:
# (status, what the answer holds). For a 200: the whole body. None of these files orders spine imaging the
# service can rate with data it can reach, so each 200 is exactly no cards and no systemActions (the
# scenario tests pin cards, indicators and summaries for rated orders). For a 4xx: the OperationOutcome's
# expression and a phrase of its diagnostics.
# 412: a spine order whose patient data is neither prefetched nor on an allowlisted FHIR server.
NO_CARDS = {"cards": []}
NOT_ALLOWLISTED = ("prefetch", "is not on the allowlist (CDS_FHIR_ALLOWLIST)")
WRONG_HOOK = ("hook", "answers 'order-select', not 'patient-view'")
EXPECTED: dict[str, tuple[int, Any]] = {
    "epic-apporchard-order-select-request.json": (200, NO_CARDS),  # medication orders only: not ours
    "pama-connectathon-scenario-01-order-select-request.json": (412, NOT_ALLOWLISTED),  # CT lumbar spine
    "pama-connectathon-scenario-02-order-select-request.json": (200, NO_CARDS),  # CTA chest: not a spine order
    "pama-ig-archive-order-select-request-superseded.json": (400, ("(body)", "'hook' is a required property")),
    "pama-ig-order-select-request.json": (200, NO_CARDS),  # MRA knee: not a spine order
    "sandbox-pama-order-select-initial-empty.json": (200, NO_CARDS),  # empty coding: nothing to rate
    "sandbox-pama-order-select-smart-launch.json": (200, NO_CARDS),  # its order is for another patient: not read
    "sandbox-pama-order-select.json": (412, NOT_ALLOWLISTED),  # MRI lumbar spine
    "sandbox-rx-order-select-r4.json": (200, NO_CARDS),  # naproxen order
    "sandbox-rx-order-sign-dstu2-default.json": (200, NO_CARDS),  # DSTU2 MedicationOrder: skipped
    "sandbox-services-stub-dummy1-order-select.json": (200, NO_CARDS),  # CPT "1234": not recognised
    "sandbox-services-stub-dummy3-order-select.json": (200, NO_CARDS),  # empty code: skipped entry
    "sandbox-services-stub-s1r1-order-select.json": (412, NOT_ALLOWLISTED),  # CT lumbar spine
    "sandbox-services-stub-s1r2-order-select.json": (200, NO_CARDS),  # CT head 70450
    "sandbox-services-stub-s2r2-order-select.json": (200, NO_CARDS),  # MRA head 70544
    "sandbox-services-stub-s2r3-order-select.json": (200, NO_CARDS),  # CPT system without a code
    "sandbox-tab-reclick-order-select-no-draftorders.json": (400, ("context", "'draftOrders' is a required")),
    "spec-request-example-patient-view.json": (400, WRONG_HOOK),
    "spec-request-extension-example.json": (400, WRONG_HOOK),
}


def test_every_request_file_has_a_pinned_answer() -> None:
    assert set(EXPECTED) == set(external_files("request"))


@pytest.mark.parametrize("name", external_files("request"))
def test_real_request_gets_a_deliberate_answer(live_service: Any, name: str) -> None:
    body = load_external(name)
    hook = body.get("hook") if isinstance(body, dict) else None
    service = SERVICE_FOR_HOOK.get(hook, "spine-order-select")
    response = requests.post(live_service.url(f"/cds-services/{service}"), json=body, timeout=10)
    status, expected = EXPECTED[name]
    assert response.status_code == status, (response.status_code, response.text)
    payload = response.json()
    if status == 200:
        assert payload == expected
    else:
        issue = payload["issue"][0]
        assert payload["resourceType"] == "OperationOutcome" and issue["expression"] == [expected[0]]
        assert expected[1] in issue["diagnostics"] and "Traceback" not in issue["diagnostics"]


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
