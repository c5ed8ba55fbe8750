"""The store's contract on SQLite (tests/integration/test_store_contract_postgres.py runs it on PostgreSQL)."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cds_service.ops.store import Store, audit, feedback, jti, schema_version
from tests.helpers import EXTERNAL


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """SQLite: the unit suite starts no database server. The same contract runs on PostgreSQL in
    tests/integration/test_store_contract_postgres.py."""
    return f"sqlite:///{tmp_path / 'data' / 'cds.db'}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = Store(store_url)
    yield store
    store.close()


def item(card: str = "card-1", outcome: str = "overridden", at: str = "2026-01-15T10:05:31Z") -> dict[str, Any]:
    entry: dict[str, Any] = {"card": card, "outcome": outcome, "outcomeTimestamp": at}
    if outcome == "accepted":
        entry["acceptedSuggestions"] = [{"id": "s-1"}]
    return entry


def rows(store: Store, table: sa.Table) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table))]


def test_the_same_feedback_is_stored_once(store: Store) -> None:
    assert store.save_feedback("svc", [item(), item()]) == 1  # a duplicate inside one post, too
    assert store.save_feedback("svc", [item()]) == 0
    assert store.save_feedback("svc", [item(at="2026-01-15T10:06:00Z"), item(outcome="accepted")]) == 2
    assert store.save_feedback("other-svc", [item()]) == 1
    assert len(rows(store, feedback)) == 4


def test_spec_and_sandbox_feedback_keep_codes_and_never_the_comment(store: Store) -> None:
    for name in ("spec-feedback-overridden-with-reason.json", "sandbox-feedback-accepted.json",
                 "sandbox-feedback-overridden-with-reason.json", "spec-feedback-accepted.json"):
        assert store.save_feedback("svc", json.loads((EXTERNAL / name).read_text())["feedback"]) >= 1
    epic = item(card="epic-card")
    epic["overrideReasons"] = {"reason": {"system": "urn:epic", "code": "7", "display": "Patient declined"},
                               "userComment": "free text the clinician typed"}
    store.save_feedback("svc", [epic])
    stored = {(r["card_uuid"], r["outcome"]): r for r in rows(store, feedback)}
    assert stored["9368d37b-283f-44a0-93ea-547cebab93ed", "overridden"]["override_code"] == "d7ecf885"
    assert stored["epic-card", "overridden"]["override_display"] == "Patient declined"
    assert stored["2f6e8c1a-4b3d-4e7f-9a0c-5d2b8e1f6a37", "accepted"]["accepted_suggestions"] == [
        "8c3a5e7b-1d9f-4b2c-a6e0-3f7d1b9c5e28"]
    assert "free text" not in json.dumps(list(stored.values()), default=str)
    assert "comment entered" not in json.dumps(list(stored.values()), default=str)


def audit_row(card: str, category: str | None, status: str = "rated", kind: str = "warning") -> dict[str, Any]:
    return {"consult_id": f"urn:uuid:{uuid.uuid4()}", "service_id": "svc", "hook": "order-select",
            "hook_instance": str(uuid.uuid4()), "order_system": "http://www.ama-assn.org/go/cpt",
            "order_code": "72148", "procedure": "mri-spine-without-contrast", "variant": "v1",
            "rating_status": status, "rating_category": category, "rating_score": 2, "criteria_pack": "acr-vcf-2022",
            "card_uuid": card, "card_kind": kind}


def test_report_joins_feedback_to_audited_cards(store: Store) -> None:
    store.record_audit([audit_row("c1", "usually-not-appropriate"), audit_row("c2", "usually-not-appropriate"),
                        audit_row("c2", "usually-not-appropriate"),  # the same card audited twice counts once
                        audit_row("c3", "usually-appropriate", kind="info"),
                        audit_row("c4", None, status="no-criteria-apply", kind="info")])
    store.save_feedback("svc", [item("c1", "overridden"), item("c2", "accepted"), item("c2", "accepted", at="x" * 10),
                                item("unaudited", "accepted")])
    report = {(r["card_kind"], r["rating"]): r for r in store.report()}
    assert report[("warning", "usually-not-appropriate")] == {
        "card_kind": "warning", "rating": "usually-not-appropriate", "cards": 2, "accepted": 1, "overridden": 1,
        "acceptance_rate": 0.5, "override_rate": 0.5}
    assert report[("info", "usually-appropriate")]["accepted"] == 0
    assert report[("info", "usually-appropriate")]["acceptance_rate"] is None  # no feedback: unknown, not 0 %
    assert report[("info", "usually-appropriate")]["override_rate"] is None
    assert report[("info", "no-criteria-apply")]["cards"] == 1
    assert len(report) == 3


def test_unknown_cards_are_those_no_audit_row_names(store: Store) -> None:
    store.record_audit([audit_row("c1", None), audit_row("c2", None)])
    assert store.unknown_cards(["c2", "zz", "c1", "zz", "aa"]) == ["aa", "zz"]
    assert store.unknown_cards([]) == []


def test_audit_keeps_the_longest_hook_instance_the_request_schema_allows(store: Store) -> None:
    store.record_audit([{**audit_row("c1", None), "hook_instance": "h" * 200}])  # PostgreSQL enforces lengths
    assert [r["hook_instance"] for r in rows(store, audit)] == ["h" * 200]


def test_audit_refuses_columns_it_does_not_plan_for(store: Store) -> None:
    with pytest.raises(ValueError, match="patient_name"):
        store.record_audit([{**audit_row("c1", None), "patient_name": "x"}])


def test_jti_is_accepted_once_until_it_expires(store: Store) -> None:
    later = int(time.time()) + 300
    assert store.remember_jti("j1", "iss-a", later) is True
    assert store.remember_jti("j1", "iss-a", later) is False
    assert store.remember_jti("j1", "iss-b", later) is True  # another issuer's jti space
    assert store.remember_jti("old", "iss-a", int(time.time()) - 1) is True
    assert store.remember_jti("old", "iss-a", later) is True  # the expired record no longer blocks it


def test_expired_jtis_are_purged(store: Store) -> None:
    for n in range(5):
        store.remember_jti(f"gone-{n}", "iss", int(time.time()) - 10)
    store._next_purge = 0.0
    store.remember_jti("fresh", "iss", int(time.time()) + 300)
    assert [r["jti"] for r in rows(store, jti)] == ["fresh"]


def test_everything_survives_a_restart(store_url: str) -> None:
    first = Store(store_url)
    first.save_feedback("svc", [item("c1")])
    first.record_audit([audit_row("c1", "usually-appropriate")])
    first.remember_jti("j", "iss", int(time.time()) + 300)
    first.close()
    second = Store(store_url)
    try:
        assert second.save_feedback("svc", [item("c1")]) == 0
        assert second.remember_jti("j", "iss", int(time.time()) + 300) is False
        assert second.report()[0]["overridden"] == 1
        assert [r["version"] for r in rows(second, schema_version)] == [1]
        assert len(rows(second, audit)) == 1
    finally:
        second.close()


def test_ping(store: Store, tmp_path: Path) -> None:
    assert store.ping() is True
    broken = copy.copy(store)
    broken.engine = sa.create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    assert broken.ping() is False


def test_threads_posting_the_same_feedback_store_it_once(store: Store) -> None:
    cards = [f"card-{n}" for n in range(40)]
    stored: list[int] = []

    def post(offset: int) -> None:
        for n in range(len(cards)):
            stored.append(store.save_feedback("svc", [item(cards[(n + offset) % len(cards)])]))

    threads = [threading.Thread(target=post, args=(k * 7,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(stored) == len(cards) and len(stored) == 6 * len(cards)
    assert sorted(r["card_uuid"] for r in rows(store, feedback)) == sorted(cards)


def test_a_hook_call_is_audited_and_its_feedback_reaches_the_report(client: Any, app: Any) -> None:
    from datetime import date

    from cds_service.cli.fixtures import hook_request, materialise

    scenario = materialise("seed-worsening-benign-vcf", date.today())
    response = client.post("/cds-services/spine-order-select",
                           json=hook_request(scenario, "order-select", with_prefetch=True, fhir_server=None))
    cards = response.json["cards"]
    app.extensions["cds"].audit.flush()  # the batch writer's next round, now (ops/audit.py)
    store = app.extensions["cds"].store
    audited = rows(store, audit)
    assert {r["card_uuid"] for r in audited} == {c["uuid"] for c in cards}
    assert all(r["consult_id"].startswith("urn:uuid:") and r["rating_status"] for r in audited)
    assert scenario.patient_id not in json.dumps(audited, default=str)
    feedback_body = {"feedback": [{"card": cards[0]["uuid"], "outcome": "overridden",
                                   "outcomeTimestamp": "2026-01-15T10:05:31Z"}]}
    assert client.post("/cds-services/spine-order-select/feedback", json=feedback_body).json["stored"] == 1
    kind = cards[0]["source"]["topic"]["code"]
    assert [r["overridden"] for r in store.report() if r["card_kind"] == kind] == [1]
    assert "comment" not in client.post("/cds-services/spine-order-select/feedback", json=feedback_body).json


def test_feedback_for_a_card_never_issued_is_stored_with_a_comment_saying_so(client: Any, app: Any) -> None:
    never = "5b0c4b1e-0000-4000-8000-000000000000"
    body = {"feedback": [{"card": never, "outcome": "accepted", "acceptedSuggestions": [{"id": "s"}],
                          "outcomeTimestamp": "2026-01-15T10:05:31Z"}]}
    answer = client.post("/cds-services/spine-order-select/feedback", json=body)
    assert answer.status_code == 200
    assert answer.json["stored"] == 1 and answer.json["unknownCards"] == [never]
    assert "never issued by this service" in answer.json["comment"]
    assert [r["card_uuid"] for r in rows(app.extensions["cds"].store, feedback)] == [never]


def test_report_command_prints_rates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from cds_service.cli.report import add_commands

    monkeypatch.setenv("CDS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CDS_DATABASE_URL", raising=False)
    store = Store(f"sqlite:///{tmp_path / 'cds.db'}")
    store.record_audit([audit_row("c1", "usually-appropriate", kind="acr-vcf-2022-rating"),
                        audit_row("c2", "usually-appropriate", kind="acr-vcf-2022-rating"),
                        audit_row("c3", "usually-not-appropriate", kind="acr-vcf-2022-rating")])
    store.save_feedback("svc", [item("c1", "accepted")])
    store.close()
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["report"])
    assert args.func(args) == 0
    header, line, unanswered = capsys.readouterr().out.splitlines()
    assert header.split() == ["card_kind", "rating", "cards", "accepted", "overridden", "acceptance_rate",
                              "override_rate"]
    assert line.split() == ["acr-vcf-2022-rating", "usually-appropriate", "2", "1", "0", "50.0%", "0.0%"]
    assert unanswered.split() == ["acr-vcf-2022-rating", "usually-not-appropriate", "1", "0", "0", "n/a", "n/a"]
    args = parser.parse_args(["report", "--json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)[0]["acceptance_rate"] == 0.5
