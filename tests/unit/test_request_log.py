"""The request log line of every refusal says why (the OperationOutcome code) and which field (the name in
``expression``), never the values: an operator can tell a schema fault from missing data from a bad token."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from cds_service import create_app
from cds_service.ops.logs import JsonFormatter
from tests.helpers import SANDBOX_ISSUERS, load_external

BASE = "https://cds.example.org"


def logged(client: Any, call: Any) -> dict[str, Any]:
    """Make one request and return its ``request`` log line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger("cds_service.web").addHandler(handler)
    try:
        call(client)
    finally:
        logging.getLogger("cds_service.web").removeHandler(handler)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    (entry,) = [e for e in entries if e["message"] == "request"]
    return entry


@pytest.mark.parametrize("call, status, reason, field", [
    (lambda c: c.post("/cds-services/spine-order-select", json={"hook": "order-select"}), 400, "invalid", "(body)"),
    (lambda c: c.post("/cds-services/spine-order-select", data="{", content_type="application/json"), 400,
     "invalid", "(body)"),
    (lambda c: c.post("/cds-services/spine-order-select", data="x", content_type="text/plain"), 415,
     "not-supported", "Content-Type"),
    (lambda c: c.post("/cds-services/vcf-seed-patient-42", json={}), 404, "not-found", "id"),
    (lambda c: c.get("/cds-services/spine-order-select"), 405, "not-supported", "(method)"),
    (lambda c: c.get("/patients/vcf-seed-patient-42"), 404, "not-found", "(path)"),
    (lambda c: c.post("/cds-services/spine-order-select/feedback", json={"feedback": [{"card": "x"}]}), 400,
     "invalid", "feedback.0"),
    (lambda c: c.post("/cds-services/spine-order-sign", json=load_external("sandbox-pama-order-select.json")),
     400, "invalid", "hook"),
    (lambda c: c.post("/cds-services/spine-order-select", json=load_external("sandbox-pama-order-select.json")),
     412, "not-found", "prefetch"),
])
def test_a_refusal_logs_its_reason_code_and_field(client: Any, call: Any, status: int, reason: str,
                                                  field: str) -> None:
    entry = logged(client, call)
    assert (entry["status"], entry["reason"], entry["field"]) == (status, reason, field)
    assert "vcf-seed-patient-42" not in json.dumps(entry)  # the path's value is in the answer, not the log
    assert "launch.smarthealthit.org" not in json.dumps(entry)  # nor the 412's details


def test_a_401_logs_login_and_no_token(settings: Any) -> None:
    app = create_app(settings.but(public_base_url=BASE, trusted_issuers_file=str(SANDBOX_ISSUERS)))
    entry = logged(app.test_client(), lambda c: c.get("/cds-services", headers={"Authorization": "Bearer abc"}))
    assert (entry["status"], entry["reason"], entry["field"]) == (401, "login", "")


def test_an_answered_call_logs_no_reason(client: Any) -> None:
    entry = logged(client, lambda c: c.get("/cds-services"))
    assert entry["status"] == 200 and "reason" not in entry and "field" not in entry
