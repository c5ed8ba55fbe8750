"""The condition language (clinical/conditions.py): three-valued, and ``all`` reads no fact after a False part.

Facts are computed when first read (facts/demand.py), so a fact a condition does not need must not be read:
an ``all`` whose first part is False decides the answer without the rest.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cds_service.clinical.conditions import Subject, check
from cds_service.clinical.facts import ClinicalFacts, Fact


class ReadFacts(Mapping[str, Fact]):
    """Facts that remember which were read."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values, self.read = values, []

    def __getitem__(self, name: str) -> Fact:
        self.read.append(name)
        return Fact(name, self.values[name], (), "coded")

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def subject(values: Mapping[str, Any]) -> tuple[Subject, ReadFacts]:
    facts = ReadFacts(values)
    return Subject(ClinicalFacts(facts, (), ()), {}), facts


def test_all_is_false_at_its_first_false_part_without_reading_the_rest() -> None:
    where, facts = subject({"fracture": False, "malignancy": "active", "pain_latest": 7})
    condition = {"all": [{"fact": "fracture", "is": True}, {"fact": "malignancy", "in": ["active"]},
                         {"fact": "pain_latest", "min": 4}]}
    assert check(condition, where).verdict is False
    assert facts.read == ["fracture"]


def test_all_is_unknown_only_when_no_part_is_false_and_names_the_unknown_facts() -> None:
    where, facts = subject({"fracture": True, "pain_latest": 7})
    condition = {"all": [{"fact": "fracture", "is": True}, {"fact": "malignancy", "in": ["active"]},
                         {"fact": "pain_latest", "min": 4}]}
    outcome = check(condition, where)
    assert (outcome.verdict, outcome.unknown) == (None, ("malignancy",))
    assert facts.read == ["fracture", "malignancy", "pain_latest"]
    where, _ = subject({"fracture": True, "pain_latest": 2})
    assert check(condition, where).verdict is False  # a False part after an unknown one still decides


def test_all_true_and_any_keep_every_met_leaf() -> None:
    where, _ = subject({"fracture": True, "pain_latest": 7, "deformity": True})
    both = [{"fact": "fracture", "is": True}, {"fact": "pain_latest", "min": 4}]
    assert check({"all": both}, where).met == tuple(both)
    assert check({"any": [*both, {"fact": "deformity", "is": False}]}, where).met == tuple(both)
    assert check({"not": {"any": both}}, where).verdict is False
