"""Fracture facts: whether a current VCF exists, its level, onset, acuity, newness, etiology, count, mechanism.

A fracture is current only when its Condition is active/recurrence/relapse (an order's VCF reason counts
too, since the orderer asserts it). The 7th ICD-10-CM character "A" (initial encounter, active treatment)
says nothing about newness, so newness comes from dates and the absence of MRI/CT work-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from ...fhir.patient_data import PatientData
from ..codes import icd_fracture_level, text_levels
from ..orders import DraftOrder
from .index import lookup, of, record_index
from .resources import (
    Evidence,
    Found,
    condition_is_current,
    days_before,
    explicit_onset,
    find,
    is_suspected,
    is_void,
    onset_date,
    positives,
    reason_resources,
    recorded_date,
    reference,
    text_hits,
    view,
)
from .rules import FactRules
from .timeline import Episode, FractureItem, episodes, is_followup

# Checked in this order; the first concept that matches a resource decides its etiology.
ETIOLOGY_BY_CONCEPT = (("vcf_pathologic", "pathologic"), ("vcf_osteoporotic", "osteoporotic"),
                       ("vcf_traumatic", "traumatic"), ("vcf_unspecified", "unknown"))


def _classify(resource: Mapping[str, Any], source: str, rules: FactRules) -> tuple[Evidence, str] | None:
    """Coded match across all fracture concepts first; only then the free-text fallback."""
    seen = view(resource)
    all_text = " ".join((*seen.texts, *_body_site_texts(resource)))
    for concept_name, etiology in ETIOLOGY_BY_CONCEPT:
        code = rules.concept(concept_name).match_keys(seen.keys)
        if code:
            return Evidence(resource, source, "coded", code, "positive", all_text), etiology
    for concept_name, etiology in ETIOLOGY_BY_CONCEPT:
        if any(result == "positive" for result, _ in text_hits(rules.concept(concept_name).text, seen.texts)):
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
    """Every fracture the record mentions: Conditions (current or past) and the draft orders' VCF reasons."""
    items: list[FractureItem] = []
    letters = rules.value("fracture_followup_7th_characters")
    concepts = [rules.concept(name) for name, _ in ETIOLOGY_BY_CONCEPT]
    for condition in record_index(data).candidates("Condition", concepts):  # only those a concept could match
        if is_void(condition) or is_suspected(condition):
            continue
        found = _classify(condition, reference(condition), rules)
        if found:
            evidence, etiology = found
            followup = is_followup(evidence.code, letters)
            onset = explicit_onset(condition) or (None if followup else recorded_date(condition))
            items.append(FractureItem(evidence, etiology, condition_is_current(condition), _levels(evidence), onset,
                                      recorded_date(condition) or onset_date(condition), followup))
    for stand_in, cited_as in reason_resources(orders):
        found = _classify(stand_in, cited_as, rules)
        if found:
            evidence, etiology = found
            items.append(FractureItem(evidence, etiology, True, _levels(evidence), None, None))
    return items


def fracture_facts(data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules,
                   osteoporosis: bool, malignancy: str, spine: Sequence[Evidence]) -> tuple[dict[str, Found], set[str]]:
    """The fracture facts and the names of facts on which coded data conflict.

    The current fracture is the most recent current episode of the timeline (``timeline.episodes``); ``spine``
    is the spine MRI/CT on record (``findings.spine_imaging``, searched once): a work-up since onset means the
    fracture is not new."""
    items = fracture_items(data, orders, rules)
    timeline = episodes(items, rules.value("same_fracture_days"))
    found: dict[str, Found] = {"multiple_fractures": _multiple(timeline, data, rules)}
    conflicts: set[str] = set()
    found["prior_vcf_history"] = _prior_history(timeline, data, rules)
    active = [e for e in timeline if e.current]
    if not active:  # none current on the problem list or the order: no fracture (unknown if the list was not read)
        past = tuple(e for ep in timeline for e in ep.evidence)
        found["fracture"] = Found(False, (), "coded")
        found["new_fracture"] = found["recent_fracture"] = Found(False, past, "coded")
        return found, conflicts
    current = [i for e in active for i in e.items if i.current]
    latest = max(active, key=lambda e: e.onset or e.discovered or date.min)
    found["fracture"] = Found(True, tuple(i.evidence for i in current))
    levels = tuple(dict.fromkeys(level for e in active for level in e.levels))
    if levels:
        level_items = [i for e in active for i in e.items if i.levels]
        coded = any(i.evidence.code and icd_fracture_level(i.evidence.code) for i in level_items)
        found["fracture_level"] = Found(", ".join(levels), tuple(i.evidence for i in level_items),
                                        "coded" if coded else "text")
    if latest.onset:
        dated = tuple(i.evidence for i in latest.items if i.onset == latest.onset)
        found["fracture_onset"] = Found(latest.onset.isoformat(), dated)
        found["acuity"] = _acuity(latest.onset, dated, now, rules)
    new = _new_fracture(latest, [onset_date(e.resource) for e in spine], now, rules)
    if new:
        found["new_fracture"] = new
    recent = _recent_fracture(latest, now, rules, new)
    if recent:
        found["recent_fracture"] = recent
    high = _mechanism(current, data, rules, "high_energy_trauma")  # computed once: etiology reads it too
    etiology = _etiology(current, data, rules, osteoporosis, malignancy, high)
    if etiology is None:
        conflicts.add("etiology")
    else:
        found["etiology"] = etiology
    found["high_energy_trauma"] = high or Found(False, (), "coded")
    return found, conflicts


def _acuity(onset: date, evidence: tuple[Evidence, ...], now: datetime, rules: FactRules) -> Found:
    bounds = rules.thresholds["acuity"]
    age = days_before(now, onset) or 0
    if age < bounds["acute_below_days"]:
        value = "acute"
    elif age <= bounds["chronic_above_days"]:
        value = "subacute"
    else:
        value = "chronic"
    return Found(value, evidence)


def _new_fracture(episode: Episode, workups: list[date | None], now: datetime, rules: FactRules) -> Found | None:
    """Newly identified, not yet worked up: first recorded within ``new_fracture_days`` and no MRI/CT since onset.

    An episode known only from follow-up entries was identified before (its 7th character says so)."""
    reason_only = not any(i.evidence.resource.get("resourceType") == "Condition" for i in episode.items)
    if reason_only:
        return Found(True, episode.evidence) if rules.value("new_when_reason_only") and not workups else None
    if episode.followup_only:
        return Found(False, episode.evidence, "coded")
    if episode.discovered is None:
        return None
    age = days_before(now, episode.discovered) or 0
    since = episode.onset or episode.discovered
    worked_up = any(d is not None and d >= since for d in workups)
    return Found(age <= rules.value("new_fracture_days") and not worked_up, episode.evidence)


def _recent_fracture(episode: Episode, now: datetime, rules: FactRules, new: Found | None) -> Found | None:
    """Recent: onset within ``recent_fracture_days``, whether or not it has had its MRI (2022 variant 7, "New
    symptomatic VCF", at treatment time). Unknown without an onset, unless the first follow-up is already older."""
    limit = rules.value("recent_fracture_days")
    if episode.onset is not None:
        return Found((days_before(now, episode.onset) or 0) <= limit, episode.evidence)
    if episode.discovered is not None and episode.followup_only and (days_before(now, episode.discovered) or 0) > limit:
        return Found(False, episode.evidence)
    return new if new is not None and new.value is True else None


def _etiology(current: list[FractureItem], data: PatientData, rules: FactRules, osteoporosis: bool,
              malignancy: str, high: Found | None) -> Found | None:
    """One etiology, or None when coded items disagree and nothing explains it (a conflict, not a guess)."""
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


def _multiple(timeline: list[Episode], data: PatientData, rules: FactRules) -> Found:
    """Two or more episodes (distinct levels or clearly separate events), or "multiple fractures" written."""
    if len(timeline) >= 2:
        return Found(True, tuple(e for ep in timeline for e in ep.evidence))
    hits = positives(lookup(data, rules.concept("multiple_fractures_text"), of("Condition"),
                            of("DiagnosticReport")))
    if hits:
        return Found(True, tuple(hits))
    return Found(False, tuple(e for ep in timeline for e in ep.evidence), "coded")


def _prior_history(timeline: list[Episode], data: PatientData, rules: FactRules) -> Found:
    """Prior VCF history (2022 variant 3, "previously treated VCF or multiple VCFs"): a fracture episode that is no
    longer current, a past vertebral augmentation, or a report or note that names a prior VCF. General spine surgery
    is not VCF history (the back-pain topics rate it as prior surgery)."""
    past = [e for ep in timeline if not ep.current for e in ep.evidence]
    procedures = positives(lookup(data, rules.concept("prior_augmentation"), of("Procedure"), of("Condition")))
    past_conditions = [c for c in data.of_type("Condition") if not condition_is_current(c)]
    written = positives(find([*data.of_type("DiagnosticReport"), *past_conditions], rules.concept("prior_vcf_text")))
    hits = [*past, *procedures, *written]
    return Found(True, tuple(hits)) if hits else Found(False, (), "coded")
