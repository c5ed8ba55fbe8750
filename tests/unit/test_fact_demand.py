"""Facts computed on demand (clinical/facts/demand.py) are the facts extracting everything first gives.

Each fact has exactly one rule; a rule gives only the facts it declares; reading the facts in any order gives
the values, sources, conflicts and unchecked absences of reading them all; every fixture's answer is the same
byte for byte whether the facts are forced first or read as the steps need them; and an order reaches only
the rules its topic needs (a kyphoplasty for the seed patient never runs the trauma or infection rules).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

import cds_service.clinical.facts as facts_module
import cds_service.pipeline as pipeline
from cds_service import create_app
from cds_service.cli.fixtures import hook_request, list_scenarios, materialise
from cds_service.clinical.facts import PRODUCERS, VOCABULARY, ClinicalFacts, extract_facts, load_fact_rules
from cds_service.clinical.facts.demand import FactBook, Producer
from cds_service.fhir.patient_data import PatientData
from cds_service.settings import load_settings

RULES = load_fact_rules()
TODAY = date(2026, 12, 1)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SCENARIOS = list_scenarios()
LOST = ({}, {"conditions": "missing"}, {"observations": "missing", "imagingReports": "missing"})


def patient_data(name: str, origin: Mapping[str, Any]) -> PatientData:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for resource in materialise(name, TODAY).resources:
        grouped.setdefault(resource["resourceType"], []).append(resource)
    return PatientData({k: tuple(v) for k, v in grouped.items()}, dict(origin), ())


def everything(facts: ClinicalFacts) -> dict[str, Any]:
    return {"facts": {n: (f.value, f.sources, f.confidence) for n, f in facts.facts.items()},
            "missing": tuple(facts.missing), "conflicts": tuple(facts.conflicts),
            "unchecked": {n: (u.keys, u.source) for n, u in facts.unchecked.items()}}


def test_each_fact_of_the_vocabulary_has_exactly_one_rule() -> None:
    names = Counter(name for producer in PRODUCERS for name in producer.names)
    assert sorted(names) == sorted(VOCABULARY)
    assert set(names.values()) == {1}


@pytest.mark.parametrize("origin", LOST, ids=["all-read", "conditions-lost", "exam-lost"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_reading_in_any_order_gives_what_reading_everything_gives(name: str, origin: Mapping[str, Any]) -> None:
    data = patient_data(name, origin)
    forced = everything(extract_facts(data, [], NOW, RULES))
    lazy = extract_facts(data, [], NOW, RULES)
    backwards = {n: lazy.facts.get(n) for n in reversed(VOCABULARY)}  # a fact first, its inputs later
    assert {n: (f.value, f.sources, f.confidence) for n, f in backwards.items() if f} == forced["facts"]
    assert everything(lazy) == forced


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_rule_gives_only_the_facts_it_declares(name: str) -> None:
    given: dict[tuple[str, ...], set[str]] = {}

    def watched(producer: Producer) -> Producer:
        def run(book: FactBook) -> Mapping[str, Any]:
            found = producer.run(book)
            given[producer.names] = set(found)
            return found
        return Producer(producer.names, run, producer.conflicts)

    book = FactBook(patient_data(name, {}), [], NOW, RULES, [watched(p) for p in PRODUCERS], lambda: False)
    book.missing()
    assert len(given) == len(PRODUCERS)
    for names, found in given.items():
        assert found <= set(names), names


BODIES = [(service, hook_request(materialise(name, TODAY), hook, with_prefetch=True, fhir_server=None))
          for name in SCENARIOS
          for hook, service in (("order-select", "spine-order-select"), ("order-sign", "spine-order-sign"))]


def responses(tmp_path: Path, force: bool, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every fixture's order-select and order-sign answer with full prefetch, the facts forced first or not."""
    if force:
        def forced(*args: Any, **kwargs: Any) -> ClinicalFacts:
            facts = extract_facts(*args, **kwargs)
            tuple(facts.missing)  # runs every rule
            return facts
        monkeypatch.setattr(pipeline, "extract_facts", forced)
    client = create_app(load_settings({}, data_dir=tmp_path)).test_client()
    answers = []
    for service, body in BODIES:
        answer = client.post(f"/cds-services/{service}", json=body)
        assert answer.status_code == 200
        answers.append(answer.data)
    monkeypatch.undo()
    return answers


def test_every_answer_is_the_same_with_the_facts_forced_first(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    lazy = responses(tmp_path / "lazy", False, monkeypatch)
    assert responses(tmp_path / "forced", True, monkeypatch) == lazy


def counting(ran: Counter[str], name: str, rule: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        ran[name] += 1
        return rule(*args, **kwargs)
    return counted


def test_a_kyphoplasty_runs_only_the_rules_its_topic_and_cards_read(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ran: Counter[str] = Counter()
    for rule in ("trauma_facts", "infection_facts", "spondyloarthritis_facts", "cervical_facts", "fracture_facts"):
        monkeypatch.setattr(facts_module, rule, counting(ran, rule, getattr(facts_module, rule)))
    client = create_app(load_settings({}, data_dir=tmp_path)).test_client()
    body = hook_request(materialise("seed-worsening-benign-vcf", TODAY), "order-select", with_prefetch=True,
                        fhir_server=None)
    answer = client.post("/cds-services/spine-order-select", json=body).get_json()
    assert answer["cards"][0]["summary"].startswith("Kyphoplasty, thoracic: usually appropriate")
    assert ran == Counter({"fracture_facts": 1})  # once, though the router, the variant and the cards all read it
