"""Load the fact rules (``clinical/shared/codes.json`` and ``thresholds.json``) once at start-up.

Clinical content is data: every code list, phrase and threshold is read from JSON that names its source and
status, so a reviewer can change a threshold without touching code. A malformed file stops start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...datafiles import check_provenance, read_checked
from ..code_index import CodeIndex
from ..codes import CodeList, Concept, TextPatterns, build_code_list, build_concept, build_text_patterns
from ..context import default_context_rules
from ..prefilter import LiteralScan
from .unchecked import FactSource, build_fact_sources

STATUSES = frozenset({"seen", "secondary", "unconfirmed", "design-choice"})
SHARED_CODES = "clinical/shared/codes.json"
SHARED_THRESHOLDS = "clinical/shared/thresholds.json"
SHARED_FACT_SOURCES = "clinical/shared/fact_sources.json"


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
    fact_sources: Mapping[str, FactSource] = field(default_factory=dict)  # keys feeding each fact
    code_index: CodeIndex | None = None  # every concept's code lists inverted (``code_index.py``)
    # the literals of every concept, drug, the screen and the context rules' triggers, one scan (``prefilter.py``)
    literal_scan: LiteralScan | None = None

    def concept(self, name: str) -> Concept:
        return self.concepts[name]

    def value(self, name: str) -> Any:
        """A single-valued threshold (``{"value": ...}``) from rules.json."""
        return self.thresholds[name]["value"]


def read_criteria_json(relative: str, schema: str) -> Mapping[str, Any]:
    """A clinical data file (path inside the package) that passes its JSON Schema (``clinical/schemas/``) and
    whose every entry names a known source and status."""
    data = read_checked(relative, f"clinical/schemas/{schema}.schema.json")
    check_provenance(data, set(data.get("sources", {})), relative, STATUSES)
    return data


def load_fact_rules() -> FactRules:
    """Build the code lists and thresholds the fact extraction needs; called once at start-up (the context rules
    of clinical/shared/context.json are read here too, so a malformed table stops start-up, not a request)."""
    context = default_context_rules()
    codes = read_criteria_json(SHARED_CODES, "codes")
    rules = read_criteria_json(SHARED_THRESHOLDS, "thresholds")
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
    sources = build_fact_sources(read_criteria_json(SHARED_FACT_SOURCES, "fact-sources"))
    index = CodeIndex([*concepts.values(), *(concept.codes for concept in concepts.values())])
    patterns = (screen, *(c.text for c in concepts.values()), *(d.text for d in drugs))
    screens = (*(t.phrases.screen for t in (*context.forward, *context.backward)),  # one pass a window for all
               *(p.screen for p in (context.pseudo, context.terminators) if p is not None),
               context.forward_screen, context.backward_screen)
    scan = LiteralScan([*(p.prefilter for p in patterns if p.prefilter is not None),
                        *(s for s in screens if s is not None)])
    return FactRules(concepts, drugs, thresholds, screen, sources, index, scan)
