"""Fracture facts: whether a current VCF exists, its level, onset, acuity, newness, etiology, count, mechanism.

A fracture is current only when its Condition is active/recurrence/relapse (an order's VCF reason counts
too, since the orderer asserts it). The 7th ICD-10-CM character "A" (initial encounter, active treatment)
says nothing about newness, so newness comes from dates and the absence of MRI/CT work-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ...fhir.patient_data import PatientData
from ..codes import icd_fracture_level, text_levels
from ..orders import DraftOrder
from .index import lookup, of, record_index
from .resources import (
    CURRENT_CLINICAL,
    Evidence,
    Found,
    clinical_status,
    days_before,
    find,
    is_suspected,
    onset_date,
    positives,
    reason_resources,
    recorded_date,
    reference,
    searchable,
    view,
)
from .rules import FactRules

# Checked in this order; the first concept that matches a resource decides its etiology.
ETIOLOGY_BY_CONCEPT = (("vcf_pathologic", "pathologic"), ("vcf_osteoporotic", "osteoporotic"),
                       ("vcf_traumatic", "traumatic"), ("vcf_unspecified", "unknown"))


@dataclass(frozen=True)
class FractureItem:
    evidence: Evidence
    etiology: str
    current: bool
    levels: tuple[str, ...]
    onset: date | None
    discovered: date | None


def _classify(resource: Mapping[str, Any], source: str, rules: FactRules) -> tuple[Evidence, str] | None:
    """Coded match across all fracture concepts first; only then the free-text fallback."""
    seen = view(resource)
    all_text = " ".join((*seen.texts, *_body_site_texts(resource)))
    for concept_name, etiology in ETIOLOGY_BY_CONCEPT:
        code = rules.concept(concept_name).match_keys(seen.keys)
        if code:
            return Evidence(resource, source, "coded", code, "positive", all_text), etiology
    for concept_name, etiology in ETIOLOGY_BY_CONCEPT:
        for text in searchable(seen):  # a text the screen passes over matches no concept
            if rules.concept(concept_name).text.search(text) == "positive":
                return Evidence(resource, source, "text", None, "positive", all_text), etiology
    return None


def _body_site_texts(resource: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for site in resource.get("bodySite") or ():
        if isinstance(site, Mapping):
            out.extend(str(c["display"]) for c in site.get("coding") or () if c.get("display"))
            if isinstance(site.get("text"), str):
                out.append(site["text"])
    return out


def _levels(evidence: Evidence) -> tuple[str, ...]:
    coded = icd_fracture_level(evidence.code) if evidence.code else None
    return (coded,) if coded else text_levels(evidence.text)


def fracture_items(data: PatientData, orders: Sequence[DraftOrder], rules: FactRules) -> list[FractureItem]:
    """Every fracture the record mentions: Conditions (current or past) and the draft orders' VCF reasons.

    Only the Conditions a fracture concept can match are classified (the index leaves out void ones)."""
    items: list[FractureItem] = []
    concepts = [rules.concept(name) for name, _ in ETIOLOGY_BY_CONCEPT]
    for condition in record_index(data).candidates("Condition", concepts):
        if is_suspected(condition):
            continue
        found = _classify(condition, reference(condition), rules)
        if found:
            evidence, etiology = found
            current = clinical_status(condition) in CURRENT_CLINICAL
            items.append(FractureItem(evidence, etiology, current, _levels(evidence), onset_date(condition),
                                      recorded_date(condition) or onset_date(condition)))
    for stand_in, cited_as in reason_resources(orders):
        found = _classify(stand_in, cited_as, rules)
        if found:
            evidence, etiology = found
            items.append(FractureItem(evidence, etiology, True, _levels(evidence), None, None))
    return items


def fracture_facts(data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules,
                   osteoporosis: bool, malignancy: str, spine: Sequence[Evidence]) -> tuple[dict[str, Found], set[str]]:
    """The fracture facts and the names of facts on which coded data conflict.

    ``spine`` is the spine MRI/CT on record (``findings.spine_imaging``): a work-up since onset means the
    fracture is not new."""
    items = fracture_items(data, orders, rules)
    current = [i for i in items if i.current]
    found: dict[str, Found] = {}
    conflicts: set[str] = set()
    found["multiple_fractures"] = _multiple(items, data, rules)
    if not current:  # none on the problem list or the order: no fracture (unknown if the list was not read)
        found["fracture"] = Found(False, (), "coded")
        return found, conflicts
    evidence = tuple(i.evidence for i in current)
    found["fracture"] = Found(True, evidence)
    levels = tuple(dict.fromkeys(level for i in current for level in i.levels))
    if levels:
        level_evidence = tuple(i.evidence for i in current if i.levels)
        coded = any(i.evidence.code and icd_fracture_level(i.evidence.code) for i in current)
        found["fracture_level"] = Found(", ".join(levels), level_evidence,
                                        "coded" if coded else "text")
    dated = [i for i in current if i.onset]
    if dated:
        latest = max(dated, key=lambda i: i.onset or date.min)
        found["fracture_onset"] = Found(latest.onset.isoformat() if latest.onset else None, (latest.evidence,))
        found["acuity"] = _acuity(latest, now, rules)
    new = _new_fracture(current, [onset_date(e.resource) for e in spine], now, rules)
    if new:
        found["new_fracture"] = new
    high = _mechanism(current, data, rules, "high_energy_trauma")
    etiology = _etiology(current, data, rules, osteoporosis, malignancy, high)
    if etiology is None:
        conflicts.add("etiology")
    else:
        found["etiology"] = etiology
    found["high_energy_trauma"] = high or Found(False, (), "coded")
    return found, conflicts


def _acuity(item: FractureItem, now: datetime, rules: FactRules) -> Found:
    bounds = rules.thresholds["acuity"]
    age = days_before(now, item.onset) or 0
    if age < bounds["acute_below_days"]:
        value = "acute"
    elif age <= bounds["chronic_above_days"]:
        value = "subacute"
    else:
        value = "chronic"
    return Found(value, (item.evidence,))


def _new_fracture(current: list[FractureItem], workups: list[date | None], now: datetime,
                  rules: FactRules) -> Found | None:
    limit = rules.value("new_fracture_days")
    dated = [i for i in current if i.discovered]
    if dated:
        item = max(dated, key=lambda i: i.discovered or date.min)
        age = days_before(now, item.discovered) or 0
        since = item.onset or item.discovered
        worked_up = any(d is not None and since is not None and d >= since for d in workups)
        value = age <= limit and not worked_up
        return Found(value, (item.evidence,))
    if rules.value("new_when_reason_only") and not workups and not any(
            i.evidence.resource.get("resourceType") == "Condition" for i in current):
        return Found(True, tuple(i.evidence for i in current))
    return None


def _etiology(current: list[FractureItem], data: PatientData, rules: FactRules, osteoporosis: bool,
              malignancy: str, high: Found | None) -> Found | None:
    """One etiology, or None when coded items disagree and nothing explains it (a conflict, not a guess).
    ``high`` is the high-energy mechanism (``_mechanism``), found once for this and its own fact."""
    evidence = tuple(i.evidence for i in current)
    if high:
        return Found("high-energy-trauma", high.evidence)
    coded = {i.etiology for i in current if i.evidence.confidence == "coded"}
    kinds = coded or {i.etiology for i in current}
    if "pathologic" in kinds and "osteoporotic" in kinds:
        if malignancy == "none":
            return None
        return Found("pathologic", evidence)
    for value in ("pathologic", "osteoporotic"):
        if value in kinds:
            return Found(value, evidence)
    if "traumatic" in kinds:
        fall = _mechanism(current, data, rules, "low_energy_fall")
        if osteoporosis and (fall or not rules.value("fragility_needs_fall")):
            fall_evidence = fall.evidence if fall else ()
            return Found("osteoporotic", evidence + fall_evidence)
        return Found("traumatic", evidence)
    if osteoporosis and malignancy == "none" and rules.value("presume_osteoporotic_unspecified"):
        return Found("osteoporotic", evidence)
    return Found("unknown", evidence)


def _mechanism(current: list[FractureItem], data: PatientData, rules: FactRules, concept: str) -> Found | None:
    """Mechanism evidence on the fracture itself or on a Condition dated within the new-fracture window of it.

    An undated mechanism, or any mechanism when the fracture has no date, cannot be tied to this fracture: an
    old car accident must not take an osteoporotic fracture out of scope (review finding)."""
    window = rules.value("new_fracture_days")
    onsets = [i.onset for i in current if i.onset]
    fracture_resources = [i.evidence.resource for i in current]
    on_fracture = {id(r) for r in fracture_resources}
    hits = positives(find(fracture_resources, rules.concept(concept)))
    for hit in positives(lookup(data, rules.concept(concept), of("Condition"))):  # then Conditions dated near it
        when = onset_date(hit.resource)
        if id(hit.resource) not in on_fracture and when is not None and any(
                abs((when - o).days) <= window for o in onsets):
            hits.append(hit)
    return Found(True, tuple(hits)) if hits else None


def _multiple(items: list[FractureItem], data: PatientData, rules: FactRules) -> Found:
    levels = {level for i in items for level in i.levels}
    if len(levels) >= 2:
        return Found(True, tuple(i.evidence for i in items if i.levels))
    hits = positives(lookup(data, rules.concept("multiple_fractures_text"), of("Condition"),
                            of("DiagnosticReport")))
    if hits:
        return Found(True, tuple(hits))
    window = rules.value("new_fracture_days")
    onsets = sorted({i.onset for i in items if i.onset})
    if len(onsets) >= 2 and (onsets[-1] - onsets[0]).days > window:
        return Found(True, tuple(i.evidence for i in items))
    return Found(False, tuple(i.evidence for i in items),
                 "coded")
