"""HTTP behaviour an EHR integration engineer checks first: discovery, CORS, errors as JSON, limits."""

from typing import Any

import pytest
import requests

from tests.helpers import load_external

pytestmark = pytest.mark.slow


def test_discovery_lists_both_services_without_engine_config(live_service: Any) -> None:
    response = requests.get(live_service.url("/cds-services"), timeout=5)
    assert response.status_code == 200
    services = response.json()["services"]
    assert {(s["id"], s["hook"]) for s in services} == {("spine-order-select", "order-select"),
                                                         ("spine-order-sign", "order-sign")}
    assert "_config" not in response.text
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_preflight_allows_authorization_and_content_type(live_service: Any) -> None:
    response = requests.options(live_service.url("/cds-services/spine-order-select"), timeout=5, headers={
        "Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status_code == 200
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"


@pytest.mark.parametrize("method, path, kwargs, status, text", [
    ("post", "/cds-services/nope", {"json": {}}, 404, "no CDS service with id 'nope'"),
    ("get", "/cds-services/spine-order-select", {}, 405,
     "method GET is not allowed on /cds-services/spine-order-select; allowed: OPTIONS, POST"),
    ("delete", "/cds-services", {}, 405, "method DELETE is not allowed on /cds-services; allowed: GET, HEAD, OPTIONS"),
    ("get", "/cds-service", {}, 404, "no endpoint at /cds-service; this service answers /cds-services, "),
    ("post", "/cds-services/spine-order-select/feedbacks", {"json": {}}, 404, "/cds-services/{id}/feedback"),
    ("post", "/cds-services/spine-order-select", {"data": b"{", "headers": {"Content-Type": "application/json"}},
     400, "malformed JSON"),
    ("post", "/cds-services/spine-order-select", {"data": b"hook=x", "headers": {"Content-Type": "text/plain"}},
     415, "Content-Type must be application/json"),
    ("post", "/cds-services/spine-order-select", {"json": {"hook": "order-select"}}, 400,
     "(body): 'context' is a required property"),
    ("post", "/cds-services/spine-order-sign", {"json": load_external("sandbox-pama-order-select.json")}, 400,
     "answers 'order-sign', not 'order-select'"),
    ("post", "/cds-services/spine-order-select/feedback", {"json": {"feedback": [{"card": "x"}]}}, 400,
     "feedback.0"),
])
def test_errors_are_json_operation_outcomes(live_service: Any, method: str, path: str, kwargs: dict, status: int,
                                            text: str) -> None:
    response = getattr(requests, method)(live_service.url(path), timeout=5, **kwargs)
    assert response.status_code == status
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert text in outcome["issue"][0]["diagnostics"]
    assert outcome["issue"][0]["expression"]  # every refusal names what is wrong: a field, the method or the path


def test_oversized_body_is_413(live_service: Any) -> None:
    body = b'{"hook": "order-select", "pad": "' + b"x" * 10_100_000 + b'"}'
    response = requests.post(live_service.url("/cds-services/spine-order-select"), data=body, timeout=30,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "larger than 10000000 bytes" in response.json()["issue"][0]["diagnostics"]


def test_method_not_allowed_lists_the_allowed_methods(live_service: Any) -> None:
    response = requests.get(live_service.url("/cds-services/spine-order-select"), timeout=5)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} >= {"POST", "OPTIONS"}


def test_discovery_url_typed_with_a_trailing_slash_works_like_the_sandbox_uses_it(live_service: Any) -> None:
    """The sandbox calls `${discoveryUrl}/${id}`: with a trailing slash that is `/cds-services//{id}`."""
    assert requests.get(live_service.url("/cds-services/"), timeout=5).status_code == 200
    response = requests.post(live_service.url("/cds-services//spine-order-select"),
                             json=load_external("epic-apporchard-order-select-request.json"), timeout=10,
                             allow_redirects=False)
    assert response.status_code == 200
    assert response.json() == {"cards": []}
