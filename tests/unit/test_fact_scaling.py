"""Fact extraction scales with the record once, not once per rule: counted, never timed.

A chart of thousands of unremarkable Conditions or Observations must give exactly the facts of the chart
without them, each resource must be read once per call, and the number of code and text matches must not
grow with the padding (the index matches each distinct coding or text once). The indexed lookups must give
what a plain scan in record order gives, on every fixture scenario.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

import pytest

from cds_service.cli.fixtures import list_scenarios, materialise
from cds_service.clinical import codes
from cds_service.clinical.code_index import CodeIndex
from cds_service.clinical.facts import ClinicalFacts, extract_facts, load_fact_rules
from cds_service.clinical.facts import resources as fact_resources
from cds_service.clinical.facts.index import CURRENT_CONDITIONS, Group, lookup, of, record_index
from cds_service.fhir.patient_data import PatientData

RULES = load_fact_rules()
TODAY = date(2026, 12, 1)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SEED = "seed-worsening-benign-vcf"
# Comorbidities no rule reads (as in bench/records.py): hypertension, hyperlipidaemia, ...
NEUTRAL = (("I10", "Essential (primary) hypertension"), ("J30.9", "Allergic rhinitis, unspecified"),
           ("E78.5", "Hyperlipidemia, unspecified"), ("K21.9", "Gastro-esophageal reflux disease"))
VITALS = (("8867-4", "Heart rate", 72.0), ("29463-7", "Body weight", 61.0), ("9279-1", "Respiratory rate", 16.0))


def patient_data(resources: list[Mapping[str, Any]]) -> PatientData:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for resource in resources:
        grouped.setdefault(resource["resourceType"], []).append(resource)
    return PatientData({k: tuple(v) for k, v in grouped.items()}, {}, ())


def neutral_condition(patient_id: str, index: int) -> dict[str, Any]:
    code, display = NEUTRAL[index % len(NEUTRAL)]
    return {"resourceType": "Condition", "id": f"pad-c{index}", "subject": {"reference": f"Patient/{patient_id}"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code, "display": display}],
                     "text": display},
            "onsetDateTime": f"{2000 + index % 20}-01-15"}


def neutral_vital(patient_id: str, index: int) -> dict[str, Any]:
    code, display, value = VITALS[index % len(VITALS)]
    return {"resourceType": "Observation", "id": f"pad-o{index}", "status": "final",
            "subject": {"reference": f"Patient/{patient_id}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display},
            "valueQuantity": {"value": value + index % 5}, "effectiveDateTime": f"{2010 + index % 10}-03-01"}


def seed_padded(conditions: int = 0, observations: int = 0) -> PatientData:
    scenario = materialise(SEED, TODAY)
    pad = [neutral_condition(scenario.patient_id, i) for i in range(conditions)]
    pad += [neutral_vital(scenario.patient_id, i) for i in range(observations)]
    return patient_data([*scenario.resources, *pad])


def facts_of(data: PatientData) -> dict[str, Any]:
    facts: ClinicalFacts = extract_facts(data, [], NOW, RULES)
    return {"facts": {n: (f.value, f.sources, f.confidence) for n, f in facts.facts.items()},
            "missing": facts.missing, "conflicts": facts.conflicts}


class Calls:
    """Counts calls of a few functions (patched for the test only)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count: Counter[str] = Counter()
        self._patch(monkeypatch, fact_resources, "_build_view", "views")
        self._patch(monkeypatch, CodeIndex, "keys_matches", "coding tuples looked up")
        self._patch(monkeypatch, codes.Concept, "match_keys", "code matches")
        self._patch(monkeypatch, codes.CodeList, "any_match_keys", "code list matches")
        self._patch(monkeypatch, codes.TextPatterns, "search", "text searches")

    def _patch(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, label: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count[label] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    def during(self, run: Callable[[], Any]) -> tuple[Any, Counter[str]]:
        self.count.clear()
        result = run()
        return result, Counter(self.count)


@pytest.mark.sources
@pytest.mark.parametrize(("conditions", "observations"), [(8_000, 0), (0, 5_000)])
def test_a_large_record_gives_the_facts_of_the_small_one_with_the_same_matching_work(
        monkeypatch: pytest.MonkeyPatch, conditions: int, observations: int) -> None:
    small, large = seed_padded(conditions // 100, observations // 100), seed_padded(conditions, observations)
    calls = Calls(monkeypatch)
    small_facts, small_count = calls.during(lambda: facts_of(small))
    large_facts, large_count = calls.during(lambda: facts_of(large))
    assert large_facts == small_facts
    added = (conditions + observations) - (conditions + observations) // 100
    assert large_count["views"] - small_count["views"] == added  # each added resource read once
    assert small_count["coding tuples looked up"] > 0 and small_count["text searches"] > 0
    for label in ("coding tuples looked up", "code matches", "code list matches", "text searches"):
        assert large_count[label] == small_count[label], label


def test_each_resource_is_indexed_once_per_extraction() -> None:
    data = seed_padded(300, 300)
    with fact_resources.ExtractionViews(RULES.text_screen, RULES.code_index).active():
        first = record_index(data)
        lookup(data, RULES.concept("malignancy"), CURRENT_CONDITIONS)
        lookup(data, RULES.concept("deformity"), CURRENT_CONDITIONS, of("Observation"))
        assert record_index(data) is first
    assert first.examined == sum(len(v) for v in data.resources.values())


GROUP_SETS: tuple[tuple[Group, ...], ...] = (
    (CURRENT_CONDITIONS,), (of("Condition"), of("DiagnosticReport")),
    (of("DiagnosticReport"), of("Observation"), CURRENT_CONDITIONS),
    (of("DiagnosticReport"), of("Procedure"), of("ImagingStudy")),
)


def scan(data: PatientData, concept: codes.Concept, groups: tuple[Group, ...]) -> list[Any]:
    """The reference: ``resources.find`` over the groups' resources in record order."""
    resources = [r for kind, current_only in groups for r in data.of_type(kind)
                 if not current_only or fact_resources.is_current(r)]
    return fact_resources.find(resources, concept)


def scenarios() -> Iterator[str]:
    yield from list_scenarios()


@pytest.mark.parametrize("name", list(scenarios()))
def test_lookups_give_what_a_scan_gives_on_every_fixture_scenario(name: str) -> None:
    data = patient_data(materialise(name, TODAY).resources)
    with fact_resources.ExtractionViews(RULES.text_screen, RULES.code_index).active():
        for concept in RULES.concepts.values():
            for groups in GROUP_SETS:
                assert lookup(data, concept, *groups) == scan(data, concept, groups), (concept.name, groups)


def test_a_passed_deadline_stops_the_extraction_while_indexing() -> None:
    """The caller's clock is asked before each fact rule and every 1,024 resources: with 8,000 Conditions and a
    deadline that passes at the fourth question, indexing stops at 3,072 resources, and no fact comes back."""
    from cds_service.clinical.facts import DeadlinePassed

    asked: list[int] = []

    def past_deadline() -> bool:
        asked.append(1)
        return len(asked) > 3

    facts = extract_facts(seed_padded(8_000), [], NOW, RULES, past_deadline)  # nothing computed yet
    assert asked == []
    with pytest.raises(DeadlinePassed, match="3072 resources read"):
        facts.facts.get("malignancy")
    assert len(asked) == 4  # once before the first rule, then at 1,024, 2,048 and 3,072 resources


def test_no_deadline_and_a_deadline_not_passed_give_the_same_facts() -> None:
    data = seed_padded(300, 300)
    assert extract_facts(data, [], NOW, RULES, lambda: False) == extract_facts(data, [], NOW, RULES)
