"""The outside review's probes (issue 17), kept as tests against the Flask app: near-valid orders, ambiguous
JSON, feedback instants, response headers, /metrics protection, database file mode.

Each of these failed before the fix: near-valid kyphoplasty orders answered ``{"cards": []}``, duplicate keys
and NaN were accepted, the same instant written four ways made four rows, a conflicting re-post answered
``stored: 0``, no response carried ``no-store``/``nosniff``, /metrics was open, the SQLite file was 0644.
"""

from __future__ import annotations

import copy
import os
import stat
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cds_service import create_app
from cds_service.cli.fixtures import hook_request, materialise

URL = "/cds-services/spine-order-select"
SCENARIO = materialise("seed-worsening-benign-vcf", date.today())
BODY = hook_request(SCENARIO, "order-select", with_prefetch=True, fhir_server=None)
ORDER = BODY["context"]["draftOrders"]["entry"][0]["resource"]


def with_order(change: Any) -> dict[str, Any]:
    body = copy.deepcopy(BODY)
    change(body["context"]["draftOrders"]["entry"][0]["resource"])
    return body


def _set(**fields: Any) -> Any:
    return lambda order: order.update(fields)


def _pop(name: str) -> Any:
    return lambda order: order.pop(name)


def _is_rating(card: dict[str, Any]) -> bool:
    return card["source"]["topic"]["code"] not in {"order-not-checked"} and "ServiceRequest/" in str(
        card.get("extension", {}))


NEAR_VALID = {
    "authoredOn without timezone": _set(authoredOn="2026-11-30T15:00:00"),
    "one unknown element": _set(favouriteColour="blue"),
    "extension without url": _set(extension=[{"valueString": "x"}]),
    "meta.lastUpdated without timezone": _set(meta={"lastUpdated": "2026-11-30T15:00:00"}),
    "invalid reasonCode (dropped, order still rated)": _set(reasonCode=[{"coding": "M80"}]),
}


@pytest.mark.parametrize("change", NEAR_VALID.values(), ids=NEAR_VALID.keys())
def test_near_valid_kyphoplasty_order_is_still_rated(client: Any, change: Any) -> None:
    reference = f"ServiceRequest/{ORDER['id']}"
    baseline = client.post(URL, json=BODY).json
    response = client.post(URL, json=with_order(change))
    assert response.status_code == 200
    cards = response.json["cards"]
    assert cards, "a near-valid spine order must not be answered with silence"
    rated = [c for c in cards if reference in str(c.get("extension", {}))]
    assert rated and all(c["source"]["topic"]["code"] != "order-not-checked" for c in cards)
    assert len(cards) >= len(baseline["cards"]) - 1  # the reasonCode variant may lose a reason-based card


UNREADABLE = {
    "status": _set(status="bogus"),  # outside the required value set
    "code.coding": _set(code={"text": "Kyphoplasty, thoracic", "coding": {"code": "22513"}}),
    "subject": _pop("subject"),
    "intent": _set(intent=7),
}


@pytest.mark.parametrize("field, change", UNREADABLE.items(), ids=UNREADABLE.keys())
def test_spine_order_that_cannot_be_read_gets_a_card_saying_so(client: Any, field: str, change: Any) -> None:
    response = client.post(URL, json=with_order(change))
    assert response.status_code == 200
    cards = response.json["cards"]
    [card] = [c for c in cards if c["source"]["topic"]["code"] == "order-not-checked"]
    assert card["summary"] == f"This order could not be checked: {field} is not valid FHIR"
    assert card["indicator"] == "warning" and "Kyphoplasty" in card["detail"]
    assert card["source"]["url"].startswith("https://acsearch.acr.org/")


def test_unreadable_order_that_is_not_a_spine_order_stays_silent(client: Any) -> None:
    def change(order: dict[str, Any]) -> None:
        order.update(status="bogus", code={"text": "Chest radiograph"})

    assert client.post(URL, json=with_order(change)).json == {"cards": []}


AMBIGUOUS = {
    "duplicate key": b'{"hook": "order-select", "hook": "order-sign"}',
    "duplicate context.patientId": b'{"context": {"patientId": "a", "patientId": "b"}}',
    "NaN": b'{"hook": "order-select", "x": NaN}',
    "Infinity": b'{"x": Infinity}',
    "-Infinity": b'{"x": -Infinity}',
}


@pytest.mark.parametrize("raw", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
@pytest.mark.parametrize("path", [URL, f"{URL}/feedback"])
def test_ambiguous_json_is_400(client: Any, raw: bytes, path: str) -> None:
    response = client.post(path, data=raw, content_type="application/json")
    assert response.status_code == 400
    outcome = response.json
    assert outcome["resourceType"] == "OperationOutcome"
    assert "twice" in outcome["issue"][0]["diagnostics"] or "not a JSON number" in outcome["issue"][0]["diagnostics"]


def _feedback(at: str, **extra: Any) -> dict[str, Any]:
    return {"feedback": [{"card": "card-1", "outcome": "overridden", "outcomeTimestamp": at, **extra}]}


def test_one_instant_written_four_ways_is_one_row(client: Any) -> None:
    stored = [client.post(f"{URL}/feedback", json=_feedback(at)).json["stored"]
              for at in ("2026-01-15T10:05:31Z", "2026-01-15T10:05:31+00:00", "2026-01-15T10:05:31.000Z",
                         "2026-01-15T11:05:31+01:00")]
    assert stored == [1, 0, 0, 0]


def test_conflicting_repost_is_409_and_stores_nothing(client: Any) -> None:
    reason = {"reason": {"system": "https://x.example/r", "code": "patient-specific"}}
    assert client.post(f"{URL}/feedback", json=_feedback("2026-01-15T10:05:31Z")).json["stored"] == 1
    body = _feedback("2026-01-15T10:05:31.000+00:00", overrideReason=reason)
    body["feedback"].append({"card": "card-2", "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:06:00Z"})
    response = client.post(f"{URL}/feedback", json=body)
    assert response.status_code == 409
    assert "already stored with other content" in response.json["issue"][0]["diagnostics"]
    again = {"feedback": [body["feedback"][1]]}
    assert client.post(f"{URL}/feedback", json=again).json["stored"] == 1  # the batch was rolled back


@pytest.mark.parametrize("method, path, body", [
    ("get", "/healthz", None), ("get", "/cds-services", None), ("post", URL, BODY), ("post", URL, {"x": 1}),
    ("get", "/nowhere", None), ("get", "/metrics", None), ("get", "/openapi.json", None),
])
def test_every_response_is_no_store_and_nosniff(client: Any, method: str, path: str, body: Any) -> None:
    response = getattr(client, method)(path, json=body) if body is not None else getattr(client, method)(path)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_metrics_token(settings: Any) -> None:
    client = create_app(settings.but(metrics_token="s3cret-scrape")).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"}).status_code == 200


def test_metrics_bind_hides_metrics_on_the_main_port(settings: Any) -> None:
    client = create_app(settings.but(metrics_bind="127.0.0.1:9464")).test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", environ_overrides={"cds.listener": "metrics"}).status_code == 200


def test_sqlite_database_is_created_owner_only(settings: Any, tmp_path: Path) -> None:
    database = tmp_path / "fresh" / "cds.db"
    old = os.umask(0o022)
    try:
        create_app(settings.but(database_url=f"sqlite:///{database}")).extensions["cds"].close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
