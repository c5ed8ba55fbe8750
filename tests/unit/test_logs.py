"""JSON logs: request ids, masking, and no patient data or token anywhere, even at DEBUG for a full run."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import unquote

import pytest

from cds_service import create_app
from cds_service.cli.fixtures import hook_request, materialise, search
from cds_service.ops.logs import JsonFormatter, configure_logging, mask
from tests.helpers import SANDBOX_ISSUERS, JsonServer, sandbox_token

BASE = "https://cds.example.org"
SCENARIO = "seed-worsening-benign-vcf"


def test_a_line_is_one_json_object_with_scalar_extras_and_masked_secrets() -> None:
    record = logging.makeLogRecord({"name": "t", "levelname": "INFO", "msg": "sent Bearer abc.def to %s",
                                    "args": ("x",), "prefetch_key": "conditions", "status": 200,
                                    "resource": {"name": "not logged"}, "note": "eyJhbGciOi.eyJzdWIi.sig"})
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "sent Bearer [masked] to x"
    assert line["prefetch_key"] == "conditions" and line["status"] == 200
    assert "resource" not in line
    assert line["note"] == "[jwt masked]"


def test_masking_is_linear_on_hostile_input() -> None:
    started = time.perf_counter()
    mask("eyJ" + "a" * 200_000 + "." * 50_000 + "bearer " * 20_000)
    assert time.perf_counter() - started < 1.0


def test_configure_logging_is_idempotent_and_quiets_http_clients() -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    configure_logging("DEBUG")
    configure_logging("DEBUG")
    assert len(root.handlers) in (before, before + 1)
    assert logging.getLogger("urllib3").getEffectiveLevel() == logging.WARNING
    configure_logging("WARNING")


class FhirStandIn(JsonServer):
    """A loopback FHIR server answering reads and searches from a scenario (``fixtures.search``)."""

    def __init__(self, resources: list[Any], patient_id: str) -> None:
        def answer(raw_path: str) -> tuple[int, Any]:
            query = unquote(raw_path.removeprefix("/fhir/"))
            path = query.partition("?")[0]
            if "/" not in path:
                return 200, search(resources, query, patient_id)
            kind, _, rid = path.partition("/")
            found = [r for r in resources if r["resourceType"] == kind and r["id"] == rid]
            return 200, found[0] if found else {"resourceType": "OperationOutcome", "issue": []}

        super().__init__(answer)
        self.base_url = self.url("/fhir")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything logged, formatted exactly as the service writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    yield stream
    logging.getLogger().removeHandler(handler)


def secrets_of(scenario: Any) -> set[str]:
    """Identifiers, names and free text of the scenario's patient: none may reach a log line."""
    patient = scenario.patient
    found = {scenario.patient_id, *(i["value"] for i in patient.get("identifier", []) if "value" in i)}
    for name in patient.get("name", []):
        found.update(name.get("family", "").split() + name.get("given", []))
    for resource in scenario.resources:
        for key in ("conclusion", "note", "text"):
            value = resource.get(key)
            if isinstance(value, str) and len(value) > 12:
                found.add(value)
    return {s for s in found if s}


def test_a_full_scenario_at_debug_logs_no_patient_data_or_token(settings: Any, captured: io.StringIO) -> None:
    scenario = materialise(SCENARIO, date.today())
    fhir = FhirStandIn(scenario.resources, scenario.patient_id)
    try:
        app = create_app(settings.but(log_level="DEBUG", public_base_url=BASE, fhir_allowlist=fhir.base_url,
                                      trusted_issuers_file=str(SANDBOX_ISSUERS)))
        client = app.test_client()
        tokens = []
        for with_prefetch in (True, False):
            url = "/cds-services/spine-order-select"
            tokens.append(sandbox_token(BASE + url))
            body = hook_request(scenario, "order-select", with_prefetch=with_prefetch, fhir_server=fhir.base_url)
            body["fhirAuthorization"] = {"access_token": "fhir-access-token-123456", "token_type": "Bearer",
                                         "expires_in": 300, "scope": "patient/*.read", "subject": "cds"}
            response = client.post(url, json=body, headers={"Authorization": f"Bearer {tokens[-1]}"})
            assert response.status_code == 200, response.text
            assert response.json["cards"]
        card = response.json["cards"][0]["uuid"]
        feedback = {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:05:31Z",
                                  "overrideReason": {"userComment": "Comment naming the patient Jane Q"}}]}
        tokens.append(sandbox_token(f"{BASE}/cds-services/spine-order-select/feedback"))
        assert client.post("/cds-services/spine-order-select/feedback", json=feedback,
                           headers={"Authorization": f"Bearer {tokens[-1]}"}).status_code == 200
        assert client.post("/cds-services/spine-order-select", json=body,
                           headers={"Authorization": f"Bearer {tokens[0]}"}).status_code == 401  # replay
    finally:
        fhir.stop()
    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(line.get("request_id") and line["message"] == "request" for line in lines)
    fetch_lines = [line for line in lines if line.get("logger") == "cds_service.fhir.client"]
    assert fetch_lines  # the fetch path ran
    assert all(line.get("request_id") for line in fetch_lines)  # pool threads log with the call's request id
    forbidden = secrets_of(scenario) | set(tokens) | {"fhir-access-token-123456", "Jane Q", scenario.user_id}
    leaked = sorted(s for s in forbidden if s in text)
    assert not leaked, leaked
