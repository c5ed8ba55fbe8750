"""Load the fact rules (``criteria/codes.json`` + the thresholds of ``criteria/rules.json``) once at start-up.

Clinical content is data: every code list, phrase and threshold is read from JSON that names its source and
status, so a reviewer can change a threshold without touching code. A malformed file stops start-up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .codes import CodeList, Concept, TextPatterns, build_code_list, build_concept, build_text_patterns

_STATUSES = frozenset({"seen", "secondary", "unconfirmed", "design-choice"})


@dataclass(frozen=True)
class Drug:
    """One osteoporosis drug: RxNorm codes, generic/brand phrases, and days it still counts after ending."""

    name: str
    codes: CodeList
    text: TextPatterns
    coverage_days: int


@dataclass(frozen=True)
class FactRules:
    concepts: Mapping[str, Concept]
    drugs: tuple[Drug, ...]
    thresholds: Mapping[str, Mapping[str, Any]]
    text_screen: TextPatterns  # every concept's and drug's phrases in one pattern (fact_resources.resource_views)

    def concept(self, name: str) -> Concept:
        return self.concepts[name]

    def value(self, name: str) -> Any:
        """A single-valued threshold (``{"value": ...}``) from rules.json."""
        return self.thresholds[name]["value"]


def read_criteria_json(name: str) -> Mapping[str, Any]:
    """Read a JSON file under cds_service/criteria/ and check every entry's source key and status."""
    text = resources.files("cds_service").joinpath("criteria", name).read_text(encoding="utf-8")
    data = json.loads(text)
    _check_provenance(data, set(data.get("sources", {})), name)
    return data


def _check_provenance(node: Any, source_keys: set[str], where: str) -> None:
    """Every object that carries a ``source`` must name a known source and a known status."""
    if isinstance(node, Mapping):
        if "source" in node:
            if node["source"] not in source_keys:
                raise ValueError(f"{where}: unknown source {node['source']!r}")
            if node.get("status") not in _STATUSES:
                raise ValueError(f"{where}: entry with source {node['source']!r} has no valid status")
        for key, child in node.items():
            if key != "sources":
                _check_provenance(child, source_keys, where)
    elif isinstance(node, list):
        for child in node:
            _check_provenance(child, source_keys, where)


def load_fact_rules() -> FactRules:
    """Build the code lists and thresholds the fact extraction needs; called once at start-up."""
    codes = read_criteria_json("codes.json")
    rules = read_criteria_json("rules.json")
    thresholds = rules["thresholds"]
    coverage = thresholds["drug_coverage_days"]
    concepts = {name: build_concept(name, spec) for name, spec in codes["concepts"].items()}
    drugs = tuple(
        Drug(d["name"], build_code_list([{"system": "rxnorm", "codes": d["rxnorm"]}]),
             build_text_patterns(d["text"]), int(coverage[d["coverage"]]))
        for d in codes["osteoporosis_drugs"]["drugs"])
    screen = build_text_patterns([
        *(p for spec in codes["concepts"].values() for entry in spec.get("text", ()) for p in entry["patterns"]),
        *(p for d in codes["osteoporosis_drugs"]["drugs"] for p in d["text"])])
    return FactRules(concepts, drugs, thresholds, screen)
