"""FhirFetcher fault handling with mocked HTTP (``responses``): every failure is a typed FetchResult."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
import requests
import responses

from cds_service.fhir.client import UNREACHABLE, FhirFetcher
from cds_service.settings import Settings

BASE = "http://127.0.0.1:8090/fhir"
TOKEN = "secret-token-abc123"  # a test value that must never reach the logs
PATIENT = "pat-77x"


def bundle(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    links = [{"relation": "self", "url": "x"}] + ([{"relation": "next", "url": next_url}] if next_url else [])
    return {"resourceType": "Bundle", "type": "searchset", "link": links,
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}


def obs(i: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"o{i}", "subject": {"reference": f"Patient/{PATIENT}"}}


@responses.activate
def test_ok_read_sends_accept_and_bearer_token(fetcher: FhirFetcher) -> None:
    responses.get(f"{BASE}/Patient/{PATIENT}", json={"resourceType": "Patient", "id": PATIENT})
    result = fetcher.fetch_all(BASE, TOKEN, {"patient": f"Patient/{PATIENT}"}, 1.0)["patient"]
    assert result.ok and result.resource == {"resourceType": "Patient", "id": PATIENT}
    sent = responses.calls[0].request.headers
    assert sent["Authorization"] == f"Bearer {TOKEN}"
    assert sent["Accept"] == "application/fhir+json"


@responses.activate
def test_no_token_sends_no_authorization(fetcher: FhirFetcher) -> None:
    responses.get(f"{BASE}/Patient/{PATIENT}", json={"resourceType": "Patient", "id": PATIENT})
    fetcher.fetch_all(BASE, None, {"patient": f"Patient/{PATIENT}"}, 1.0)
    assert "Authorization" not in responses.calls[0].request.headers


@pytest.mark.parametrize("status", [401, 403, 404, 500, 503])
@responses.activate
def test_http_errors_are_typed(fetcher: FhirFetcher, status: int) -> None:
    responses.get(f"{BASE}/Condition", status=status, json={"resourceType": "OperationOutcome", "issue": []})
    result = fetcher.fetch_all(BASE, TOKEN, {"conditions": f"Condition?patient={PATIENT}"}, 1.0)["conditions"]
    # a 404 reads like a refused connection (UNREACHABLE): the wording must not tell open ports from closed ones
    expected = UNREACHABLE if status == 404 else f"FHIR server answered {status}"
    assert (result.outcome, result.http_status, result.reason) == ("http-error", status, expected)


@responses.activate
def test_redirects_are_not_followed(fetcher: FhirFetcher) -> None:
    responses.get(f"{BASE}/Patient/{PATIENT}", status=302, headers={"Location": "http://evil.example/x"})
    result = fetcher.fetch_all(BASE, None, {"patient": f"Patient/{PATIENT}"}, 1.0)["patient"]
    assert result.outcome == "http-error" and result.http_status == 302
    assert len(responses.calls) == 1


@pytest.mark.parametrize("error", [requests.ReadTimeout(), requests.ConnectTimeout()])
@responses.activate
def test_timeouts_are_typed(fetcher: FhirFetcher, error: Exception) -> None:
    responses.get(f"{BASE}/Patient/{PATIENT}", body=error)
    result = fetcher.fetch_all(BASE, None, {"patient": f"Patient/{PATIENT}"}, 1.0)["patient"]
    assert (result.outcome, result.reason) == ("timeout", "timed out after 0.4 s")


@responses.activate
def test_connection_error_reason_has_no_url(fetcher: FhirFetcher) -> None:
    responses.get(f"{BASE}/Patient/{PATIENT}",
                  body=requests.ConnectionError(f"Max retries exceeded with url: /Patient/{PATIENT}"))
    result = fetcher.fetch_all(BASE, None, {"patient": f"Patient/{PATIENT}"}, 1.0)["patient"]
    assert result.outcome == "connection-error"
    assert PATIENT not in result.reason and "127.0.0.1" not in result.reason


@pytest.mark.parametrize(("body", "outcome"), [
    ("{not json", "malformed"),
    ("\xff\xfe", "malformed"),
    ("[1, 2]", "not-fhir"),
    ('{"id": "x"}', "not-fhir"),
    ('"just a string"', "not-fhir"),
])
@responses.activate
def test_bad_bodies_are_typed(fetcher: FhirFetcher, body: str, outcome: str) -> None:
    responses.get(f"{BASE}/Patient/{PATIENT}", body=body.encode("latin-1"))
    assert fetcher.fetch_all(BASE, None, {"p": f"Patient/{PATIENT}"}, 1.0)["p"].outcome == outcome


@responses.activate
def test_operation_outcome_reason_leaves_out_diagnostics(fetcher: FhirFetcher) -> None:
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "error", "code": "processing", "diagnostics": f"Patient/{PATIENT} gone"}]}
    responses.get(f"{BASE}/Patient/{PATIENT}", json=outcome)
    result = fetcher.fetch_all(BASE, None, {"p": f"Patient/{PATIENT}"}, 1.0)["p"]
    assert result.outcome == "operation-outcome"
    assert "error: processing" in result.reason and PATIENT not in result.reason


@responses.activate
def test_bundle_of_failing_operation_outcomes_is_typed(fetcher: FhirFetcher) -> None:
    failing = {"resourceType": "OperationOutcome", "issue": [{"severity": "fatal", "code": "exception"}]}
    responses.get(f"{BASE}/Condition", json={**bundle(failing), "total": 0})
    assert fetcher.fetch_all(BASE, None, {"c": "Condition?patient=x"}, 1.0)["c"].outcome == "operation-outcome"


@responses.activate
def test_warning_outcome_next_to_matches_is_ok(fetcher: FhirFetcher) -> None:
    warning = {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "not-supported"}]}
    responses.get(f"{BASE}/Observation", json=bundle(obs(1), warning))
    result = fetcher.fetch_all(BASE, None, {"o": "Observation?patient=x"}, 1.0)["o"]
    assert result.ok and len(result.resource["entry"]) == 2


@responses.activate
def test_pages_are_followed_and_merged(fetcher: FhirFetcher) -> None:
    responses.get(f"{BASE}/Observation?patient=x", json=bundle(obs(1), next_url=f"{BASE}/Observation?page=2"))
    responses.get(f"{BASE}/Observation?page=2", json=bundle(obs(2), next_url=f"{BASE}/Observation?page=3"))
    responses.get(f"{BASE}/Observation?page=3", json=bundle(obs(3)))
    result = fetcher.fetch_all(BASE, None, {"o": "Observation?patient=x"}, 1.0)["o"]
    assert result.ok and result.complete and result.pages == 3
    assert [e["resource"]["id"] for e in result.resource["entry"]] == ["o1", "o2", "o3"]
    assert "link" not in result.resource


@responses.activate
def test_paging_loop_stops(fetcher: FhirFetcher) -> None:
    responses.get(f"{BASE}/Observation?patient=x", json=bundle(obs(1), next_url=f"{BASE}/Observation?page=2"))
    responses.get(f"{BASE}/Observation?page=2", json=bundle(obs(2), next_url=f"{BASE}/Observation?patient=x"))
    result = fetcher.fetch_all(BASE, None, {"o": "Observation?patient=x"}, 1.0)["o"]
    assert result.ok and not result.complete and "loop" in result.reason
    assert len(responses.calls) == 2 and result.pages == 2


@responses.activate
def test_paging_stops_at_max_pages(fhir_settings: Settings) -> None:
    fetcher = FhirFetcher(fhir_settings.but(fhir_max_pages=2))
    try:
        for page in range(1, 5):
            responses.get(f"{BASE}/Observation?page={page}",
                          json=bundle(obs(page), next_url=f"{BASE}/Observation?page={page + 1}"))
        result = fetcher.fetch_all(BASE, None, {"o": "Observation?page=1"}, 1.0)["o"]
    finally:
        fetcher.close()
    assert result.pages == 2 and not result.complete and "CDS_FHIR_MAX_PAGES" in result.reason
    assert len(responses.calls) == 2


@pytest.mark.parametrize("next_url", ["http://127.0.0.1:8091/fhir/Observation?page=2",
                                      "http://127.0.0.1:8090/other/Observation?page=2",
                                      "http://127.0.0.1.evil.com:8090/fhir/Observation?page=2"])
@responses.activate
def test_next_link_outside_the_base_is_not_followed(fetcher: FhirFetcher, next_url: str) -> None:
    responses.get(f"{BASE}/Observation?patient=x", json=bundle(obs(1), next_url=next_url))
    result = fetcher.fetch_all(BASE, None, {"o": "Observation?patient=x"}, 1.0)["o"]
    assert result.ok and not result.complete and len(responses.calls) == 1
    assert [e["resource"]["id"] for e in result.resource["entry"]] == ["o1"]


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://127.0.0.1:8090/fhir", True),
    ("http://LOCALHOST/fhir", True),
    ("http://[::1]:9000/r4", True),
    ("http://127.0.0.1.evil.com/fhir", False),
    ("http://127.0.0.1@evil.com/fhir", False),
    ("http://evil.com/?x=http://127.0.0.1", False),
    ("https://127.0.0.1/fhir", False),
    ("http://127.0.0.1/fhir/../admin", False),
    ("file:///etc/passwd", False),
    ("http://127.0.0.1:99999/fhir", False),
    ("not a url", False),
])
def test_allowlist_is_parsed_not_string_matched(fetcher: FhirFetcher, url: str, allowed: bool) -> None:
    assert fetcher.is_allowed(url) is allowed


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://ehr.example.org/fhir/r4", True),
    ("https://ehr.example.org/fhir/r4/", True),
    ("https://ehr.example.org:443/fhir/r4", True),
    ("https://ehr.example.org/fhir/r4x", False),
    ("https://ehr.example.org/fhir", False),
    ("http://ehr.example.org/fhir/r4", False),
    ("https://ehr.example.org:8443/fhir/r4", False),
    ("https://other.example.org:9443/fhir", True),
    ("https://other.example.org:9444/fhir", False),
])
def test_allowlist_path_prefix_ends_at_a_segment(fhir_settings: Settings, url: str, allowed: bool) -> None:
    prefixes = "https://ehr.example.org:443/fhir/r4/, https://other.example.org:9443"
    fetcher = FhirFetcher(fhir_settings.but(fhir_allowlist=prefixes))
    try:
        assert fetcher.is_allowed(url) is allowed
    finally:
        fetcher.close()


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://ehr.example.org/api/FHIR/R4/Patient", True),
    ("https://ehr.example.org:443/api/FHIR/R4", True),
    ("https://ehr.example.org:8443/api/FHIR/R4", False),  # no port in the prefix: the scheme's default only
    ("https://ehr.example.org/api/FHIR/R4/%2e%2e/%2E%2E/internal", False),  # encoded dot segments
    ("https://ehr.example.org/api/FHIR/R4/..%2Finternal", False),  # encoded slash
])
def test_allowlist_without_port_pins_the_default_port_off_loopback(fhir_settings: Settings, url: str,
                                                                   allowed: bool) -> None:
    fetcher = FhirFetcher(fhir_settings.but(fhir_allowlist="https://ehr.example.org/api/FHIR/R4"))
    try:
        assert fetcher.is_allowed(url) is allowed
    finally:
        fetcher.close()


@responses.activate
@pytest.mark.parametrize(("body", "outcome"), [
    ({"resourceType": "Bundle", "type": "searchset", "entry": 5}, "malformed"),
    ({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "OperationOutcome",
                                                                              "issue": 7}}]}, "ok"),
    ({"resourceType": "Bundle", "type": "searchset", "entry": [], "link": {"relation": "next"}}, "ok"),
    ({"resourceType": "OperationOutcome", "issue": "broken"}, "operation-outcome"),
])
def test_odd_json_shapes_from_the_server_never_raise(fetcher: FhirFetcher, body: dict, outcome: str) -> None:
    responses.add(responses.GET, re.compile(rf"{re.escape(BASE)}/Observation.*"), json=body)
    result = fetcher.fetch_all(BASE, None, {"o": "Observation?patient=x"}, 1.0)["o"]
    assert result.outcome == outcome


@responses.activate
def test_a_bug_in_our_own_paging_is_logged_with_its_traceback_and_the_data_counts_as_missing(
        fetcher: FhirFetcher, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Only the server's transport and parse faults are the server's; our own bug must stay visible."""
    responses.get(f"{BASE}/Observation", json=bundle(obs(1), next_url=f"{BASE}/Observation?page=2"))

    def broken(_bundle: dict) -> str:
        raise KeyError("bug in next-link handling")

    monkeypatch.setattr("cds_service.fhir.client._next_link", broken)
    with caplog.at_level(logging.ERROR, logger="cds_service.fhir.client"):
        result = fetcher.fetch_all(BASE, None, {"o": f"Observation?patient={PATIENT}"}, 1.0)["o"]
    assert (result.outcome, result.resource) == ("internal-error", None)
    assert "internal error" in result.reason and "FHIR server" not in result.reason
    [record] = [r for r in caplog.records if r.message == "fhir client bug"]
    assert record.exc_info and record.exc_info[0] is KeyError


@responses.activate
def test_base_not_on_allowlist_makes_no_call(fetcher: FhirFetcher) -> None:
    results = fetcher.fetch_all("https://ehr.example.org/fhir", TOKEN, {"a": "Patient/x", "b": "Condition?x=1"}, 1.0)
    assert len(responses.calls) == 0
    assert {r.outcome for r in results.values()} == {"not-allowed"}
    assert "https://ehr.example.org/fhir is not on the allowlist" in results["a"].reason


@responses.activate
def test_no_budget_means_no_call(fetcher: FhirFetcher) -> None:
    result = fetcher.fetch_all(BASE, None, {"p": "Patient/x"}, 0.0)["p"]
    assert result.outcome == "timeout" and len(responses.calls) == 0


@responses.activate
def test_token_and_patient_id_never_logged(fetcher: FhirFetcher, caplog: pytest.LogCaptureFixture) -> None:
    responses.get(f"{BASE}/Patient/{PATIENT}", json={"resourceType": "Patient", "id": PATIENT})
    responses.get(f"{BASE}/Condition", status=401)
    responses.get(f"{BASE}/Observation", body=requests.ConnectionError(f"url: /Observation?patient={PATIENT}"))
    with caplog.at_level(logging.DEBUG):
        fetcher.fetch_all(BASE, TOKEN, {"patient": f"Patient/{PATIENT}", "conditions": f"Condition?patient={PATIENT}",
                                        "observations": f"Observation?patient={PATIENT}"}, 1.0)
    ours = [r for r in caplog.records if r.name.startswith("cds_service")]
    assert {r.prefetch_key for r in ours} == {"patient", "conditions", "observations"}
    assert TOKEN not in caplog.text
    for record in caplog.records:
        assert TOKEN not in json.dumps(record.__dict__, default=str)
    for record in ours:
        assert PATIENT not in json.dumps(record.__dict__, default=str)


@responses.activate
def test_query_cannot_climb_out_of_the_base(fetcher: FhirFetcher) -> None:
    result = fetcher.fetch_all(BASE, TOKEN, {"x": "../admin/users"}, 1.0)["x"]
    assert result.outcome == "not-allowed" and len(responses.calls) == 0
