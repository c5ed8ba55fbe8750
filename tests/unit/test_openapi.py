"""cds_service/openapi.json: a valid OpenAPI 3.0 document that matches the Flask routes and real answers.

The document is what API fuzzers (schemathesis) and integrators read, so a route or an error shape that
drifts from it is a bug here, not in the fuzzer.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from werkzeug.exceptions import HTTPException

from cds_service.datafiles import read_json

DOC: dict[str, Any] = read_json("cds_hooks/openapi.json")
METHODS = {"get", "post", "put", "patch", "delete"}


def schema_validator(ref: str) -> Draft7Validator:
    """A validator for one component schema; its inner ``#/components/...`` refs resolve in the document."""
    registry = Registry().with_resource("urn:openapi", Resource(contents=DOC, specification=DRAFT7))
    return Draft7Validator({"$ref": f"urn:openapi{ref}"}, registry=registry)


def documented_operations() -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in DOC["paths"].items() for method in item if method in METHODS}


def test_document_is_valid_openapi_30() -> None:
    validator = pytest.importorskip("openapi_spec_validator", reason="openapi-spec-validator not installed")
    validator.validate(DOC)
    assert DOC["openapi"].startswith("3.0.")


def test_every_local_ref_resolves_and_every_error_is_an_operation_outcome() -> None:
    text = json.dumps(DOC)
    for ref in set(re.findall(r'"\$ref": "(#/[^"]+)"', text)):
        node: Any = DOC
        for part in ref[2:].split("/"):
            node = node[part]
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            assert operation.get("operationId"), f"{method} {path}: no operationId"
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path.startswith("/cds-services"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/OperationOutcome"}, f"{method} {path} {status}"


def test_the_service_serves_the_document(app: Flask) -> None:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == DOC


def test_every_route_is_documented_and_nothing_else(app: Flask) -> None:
    """Each documented path and method reaches a Flask route, and together they reach every route.

    The hook call is documented per service (``/cds-services/spine-order-select``...), because each
    service accepts only its own hook; Flask serves both with one ``/cds-services/<service_id>`` rule.
    """
    adapter = app.url_map.bind("localhost")
    covered, unserved = set(), []
    for path, item in DOC["paths"].items():
        concrete = path.replace("{service_id}", "spine-order-select")
        for method in (m.upper() for m in item if m in METHODS):
            try:
                endpoint, _ = adapter.match(concrete, method=method)
            except HTTPException:
                unserved.append(f"{method} {path}")
                continue
            covered.add((endpoint, method))
    routes = {(rule.endpoint, method) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    assert unserved == [], "openapi.json documents routes the app does not have"
    assert routes - covered == set(), "routes missing from openapi.json"


SELECT, SIGN = "/cds-services/spine-order-select", "/cds-services/spine-order-sign"
FEEDBACK = "/cds-services/{service_id}/feedback"


@pytest.mark.parametrize(("method", "path", "documented_as", "body", "status"), [
    ("get", "/cds-services", "/cds-services", None, 200),
    ("get", "/healthz", "/healthz", None, 200),
    ("get", "/readyz", "/readyz", None, 200),
    ("post", SELECT, SELECT, b"{not json", 400),
    ("post", SELECT, SELECT, b"{}", 400),
    ("post", SIGN, SIGN, b"\xff\xfe", 400),
    ("post", "/cds-services/no-such-service/feedback", FEEDBACK, b'{"feedback": []}', 404),
    ("post", f"{SIGN}/feedback", FEEDBACK, b'{"feedback": []}', 400),
])
def test_real_answers_match_the_documented_schemas(client: Any, method: str, path: str, documented_as: str,
                                                   body: bytes | None, status: int) -> None:
    response = getattr(client, method)(path, data=body, content_type="application/json" if body else None)
    assert response.status_code == status
    documented = DOC["paths"][documented_as][method]["responses"]
    assert str(status) in documented, f"{status} not documented for {method} {documented_as}"
    schema = documented[str(status)]["content"]["application/json"]["schema"]
    validator = schema_validator(schema["$ref"]) if "$ref" in schema else Draft7Validator(schema)
    assert [e.message for e in validator.iter_errors(response.get_json())] == []


def test_a_conflicting_feedback_repost_matches_its_documented_409(client: Any) -> None:
    item = {"card": "card-1", "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:05:31Z"}
    assert client.post(f"{SIGN}/feedback", json={"feedback": [item]}).status_code == 200
    reason = {"reason": {"system": "https://x.example/r", "code": "patient-specific"}}
    response = client.post(f"{SIGN}/feedback", json={"feedback": [{**item, "overrideReason": reason}]})
    assert response.status_code == 409
    schema = DOC["paths"][FEEDBACK]["post"]["responses"]["409"]["content"]["application/json"]["schema"]
    assert [e.message for e in schema_validator(schema["$ref"]).iter_errors(response.get_json())] == []


def test_documented_services_are_the_default_discovery_services(client: Any) -> None:
    services = {s["id"]: s["hook"] for s in client.get("/cds-services").get_json()["services"]}
    calls = {path.removeprefix("/cds-services/") for path in DOC["paths"]
             if path.startswith("/cds-services/") and "{" not in path}
    assert calls == set(services)
    schemas = DOC["components"]["schemas"]
    for service, hook in services.items():
        ref = DOC["paths"][f"/cds-services/{service}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        pinned = schemas[ref["$ref"].rsplit("/", 1)[1]]["allOf"][1]["properties"]["hook"]["enum"]
        assert pinned == [hook]
    (service_id,) = [p for p in DOC["paths"][FEEDBACK]["post"]["parameters"] if p["name"] == "service_id"]
    assert set(service_id["schema"]["enum"]) == set(services)
