"""Step 5 of the request path: extract clinical facts, each with the FHIR resources it came from.

Input: ``PatientData``, the recognised ``DraftOrder``s (their reasonCode counts as evidence), the time of
the call, and the fact rules (code lists and thresholds, data under ``criteria/``). Output:
``ClinicalFacts``. Pure: no I/O, no clock reads (``now`` is an argument).
The fact vocabulary is documented in docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Fact:
    name: str  # from the vocabulary in docs/architecture.md, e.g. "fracture", "malignancy"
    value: Any
    sources: tuple[str, ...]  # "Condition/abc", "Observation/x", "ServiceRequest/y (reasonCode)"
    confidence: Literal["coded", "text"]  # text = matched on display/free text only (lower confidence)
    note: str = ""  # short explanation built from codes and rules, never free text copied from the record


@dataclass(frozen=True)
class ClinicalFacts:
    facts: Mapping[str, Fact]
    missing: tuple[str, ...]  # fact names that could not be determined from the data
    conflicts: tuple[str, ...]  # fact names on which coded data disagree (no guess is made)

    def value(self, name: str, default: Any = None) -> Any:
        fact = self.facts.get(name)
        return default if fact is None else fact.value


def extract_facts(*args: Any, **kwargs: Any) -> ClinicalFacts:
    raise NotImplementedError
