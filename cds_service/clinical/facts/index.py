"""The patient's resources indexed once per fact extraction, so each fact rule is a lookup instead of a scan.

Why: every fact rule used to walk every resource of the types it reads, so a chart of 8,000 Conditions was
walked some forty times per call. A chart holds few distinct codings and texts (8,000 problem-list entries
carry a handful of codes), so the index groups each type's resources by their coding tuple and by their
screened text tuple (``FactRules.text_screen``, run once per resource here). Each distinct coding tuple is
looked up once for every concept at once (``code_index.py``); a concept's phrases are searched only in the
types whose texts hold one of its literals (``prefilter.py``), once per distinct text tuple; only the
resources that matched are read.

Results are exactly what a scan in record order gives (``resources.find``): the groups in the order asked,
each in record order; void resources (entered-in-error, refuted, cancelled) are left out, as every rule
skips them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...waits import LET_OTHERS_RUN_EVERY, let_others_run
from ..code_index import CodeIndex
from ..codes import JOIN, CodedKey, CodeList, Concept, TextResult
from .resources import Evidence, ResourceView, active_extraction, is_current, searchable, text_hits, view

if TYPE_CHECKING:
    from ...fhir.patient_data import PatientData

Group = tuple[str, bool]  # (resourceType, current only): one part of what a rule reads
Keys = tuple[CodedKey | None, ...]
PastDeadline = Callable[[], bool]  # the caller's clock: True once the call's deadline has passed


class DeadlinePassed(Exception):
    """The call's deadline passed during fact extraction; the caller answers with what it knows so far."""


def of(resource_type: str) -> Group:
    """Every (non-void) resource of the type."""
    return (resource_type, False)


def current(resource_type: str) -> Group:
    """The current ones (``resources.is_current``: for a type other than Condition, every one)."""
    return (resource_type, True)


@dataclass
class _TypeIndex:
    views: list[ResourceView] = field(default_factory=list)  # non-void, record order; position = list index
    current: list[bool] = field(default_factory=list)  # ``is_current`` of each
    by_keys: dict[Keys, list[int]] = field(default_factory=dict)
    by_texts: dict[tuple[str, ...], list[int]] = field(default_factory=dict)  # screened texts, non-empty only
    # id of a code index -> id of a code list or concept it holds -> position -> code (``RecordIndex._coded``)
    by_matcher: dict[int, dict[int, dict[int, str]]] = field(default_factory=dict)
    joined: str | None = None  # every screened text of the type, one string (``RecordIndex._may_find_text``)


class RecordIndex:
    """One extraction's index of ``PatientData`` (see the module docstring)."""

    def __init__(self, data: PatientData, past_deadline: PastDeadline | None = None,
                 code_index: CodeIndex | None = None) -> None:
        self.data = data  # held so id(data) stays unique while the index is cached
        self.examined = 0  # resources read to build the index (tests hold it to one read per resource)
        self._types: dict[str, _TypeIndex] = {}
        self._code_index = code_index  # the fact rules' code lists inverted (``FactRules.code_index``)
        self._own: dict[int, CodeIndex] = {}  # one per matcher the rules' index does not hold (kept: ids stay)
        self._texts: dict[tuple[int, tuple[str, ...]], tuple[tuple[TextResult, str], ...]] = {}
        for kind, resources in data.resources.items():
            index = self._types[kind] = _TypeIndex()
            for resource in resources:
                self.examined += 1
                if self.examined % LET_OTHERS_RUN_EVERY == 0:
                    let_others_run()
                    if past_deadline is not None and past_deadline():
                        raise DeadlinePassed(f"indexing the record ({self.examined} resources read)")
                seen = view(resource)
                if seen.void:
                    continue
                position = len(index.views)
                index.views.append(seen)
                index.current.append(is_current(resource))
                index.by_keys.setdefault(seen.keys, []).append(position)
                texts = searchable(seen)
                if texts:
                    index.by_texts.setdefault(texts, []).append(position)

    def _coded(self, index: _TypeIndex, matcher: Concept | CodeList) -> dict[int, str]:
        """Position -> matched code of the type's resources that ``matcher`` counts by code: each distinct coding
        tuple looked up once in the rules' inverted code lists for every matcher they hold; a matcher they do
        not hold (one built outside the rules) gets an index of its own."""
        codes = self._code_index
        if codes is None or not codes.knows(matcher):
            codes = self._own.setdefault(id(matcher), CodeIndex([matcher]))
        if id(codes) not in index.by_matcher:
            table: dict[int, dict[int, str]] = index.by_matcher.setdefault(id(codes), {})
            for keys, positions in index.by_keys.items():
                for known, code in codes.keys_matches(keys).items():
                    table.setdefault(known, {}).update(dict.fromkeys(positions, code))
        return index.by_matcher[id(codes)].get(id(matcher), {})

    def _text(self, concept: Concept, texts: tuple[str, ...]) -> tuple[tuple[TextResult, str], ...]:
        """What ``resources.find`` reads from these texts when no code matched, once per distinct tuple."""
        memo = (id(concept), texts)
        if memo not in self._texts:
            self._texts[memo] = text_hits(concept.text, texts)
        return self._texts[memo]

    @staticmethod
    def _may_find_text(concept: Concept, index: _TypeIndex) -> bool:
        """False when none of the type's texts holds a literal of the concept: one test of all of them joined,
        instead of one per text, for the usual case of a concept the record never names."""
        if not index.by_texts:
            return False
        if index.joined is None:
            index.joined = JOIN.join(text for texts in index.by_texts for text in texts)
        return concept.text.may_match_joined(index.joined)

    def find(self, concept: Concept, groups: Sequence[Group]) -> list[Evidence]:
        """``resources.find`` over the groups' resources, concatenated in the order given."""
        found: list[Evidence] = []
        for kind, current_only in groups:
            index = self._types.get(kind)
            if index is None:
                continue
            coded = self._coded(index, concept)
            written: dict[int, tuple[tuple[TextResult, str], ...]] = {}
            for texts, positions in index.by_texts.items() if self._may_find_text(concept, index) else ():
                hits = self._text(concept, texts)
                if hits:
                    written.update((p, hits) for p in positions if p not in coded)
            for position in sorted(coded.keys() | written.keys()):
                if current_only and not index.current[position]:
                    continue
                seen = index.views[position]
                if position in coded:
                    found.append(Evidence(seen.resource, seen.reference, "coded", coded[position], "positive",
                                          " ".join(seen.texts)))
                else:
                    found.extend(Evidence(seen.resource, seen.reference, "text", None, result, text)
                                 for result, text in written[position])
        return found

    def coded(self, resource_type: str, codes: CodeList) -> list[tuple[Mapping[str, Any], str]]:
        """The non-void resources of a type with a coding in ``codes`` (first such code), in record order."""
        index = self._types.get(resource_type)
        if index is None:
            return []
        return [(index.views[p].resource, code) for p, code in sorted(self._coded(index, codes).items())]

    def candidates(self, resource_type: str, concepts: Sequence[Concept]) -> list[Mapping[str, Any]]:
        """The non-void resources of a type that one of the concepts can match: by code, or with screened text
        (a text the screen passes over matches no concept). In record order; the caller decides the match."""
        index = self._types.get(resource_type)
        if index is None:
            return []
        positions: set[int] = {p for positions in index.by_texts.values() for p in positions}
        for concept in concepts:
            positions.update(self._coded(index, concept))
        return [index.views[p].resource for p in sorted(positions)]


CURRENT_CONDITIONS = current("Condition")


def record_index(data: PatientData) -> RecordIndex:
    """The extraction's index of ``data``: built on first use while an ``ExtractionViews`` is active and kept
    for the rest of the extraction; built afresh outside one."""
    extraction = active_extraction()
    if extraction is None:
        return RecordIndex(data)
    found = extraction.memo.get(("record_index", id(data)))
    if found is None or found.data is not data:
        found = extraction.memo[("record_index", id(data))] = RecordIndex(data, extraction.past_deadline,
                                                                          extraction.code_index)
    return found


def lookup(data: PatientData, concept: Concept, *groups: Group) -> list[Evidence]:
    """Evidence for ``concept`` in the groups' resources (e.g. ``CURRENT_CONDITIONS, of("Observation")``)."""
    return record_index(data).find(concept, groups)
