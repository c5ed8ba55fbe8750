"""Clinical-finding facts: malignancy, osteoporosis, red flags, deformity, lung, MRI findings, contraindications.

Each fact is built from codes first and text second. A finding that the record does not mention is False
(with no sources) where the record is the place it would be written; MRI findings stay unknown unless a
spine MRI/CT report or an explicit statement exists, because silence there means "not looked".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...fhir.patient_data import PatientData
from .index import CURRENT_CONDITIONS, lookup, of, record_index
from .resources import (
    Evidence,
    Found,
    days_before,
    is_current,
    is_suspected,
    onset_date,
    positives,
    recorded_date,
    view,
)
from .rules import FactRules

_CONTRAINDICATIONS = ("infection", "coagulopathy", "pregnancy")
CONDITIONS, OBSERVATIONS, REPORTS, PROCEDURES = of("Condition"), of("Observation"), of("DiagnosticReport"), of(
    "Procedure")


def _flag(hits: list[Evidence], what: str) -> Found:
    if hits:
        return Found(True, tuple(hits))
    return Found(False, (), "coded")


def malignancy(data: PatientData, rules: FactRules) -> Found:
    """active > suspected > history > none. Resolved/remission is history; provisional is suspected."""
    cancer = rules.concept("malignancy")
    history = rules.concept("malignancy_history")
    excluded_text = rules.concept("malignancy_text_exclude").text
    levels: dict[str, list[Evidence]] = {"active": [], "suspected": [], "history": []}

    def excluded(hit: Evidence) -> bool:  # skin cancer, MGUS, family history, screening named in free text
        return hit.confidence == "text" and excluded_text.search(hit.text) == "positive"

    history_hits = positives(lookup(data, history, CONDITIONS, REPORTS))
    levels["history"] = [hit for hit in history_hits if not excluded(hit)]
    seen = {id(e.resource) for e in history_hits}
    for hit in positives(lookup(data, cancer, CONDITIONS, REPORTS)):
        if id(hit.resource) in seen or excluded(hit):
            continue
        if is_suspected(hit.resource):
            levels["suspected"].append(hit)
        elif is_current(hit.resource):
            levels["active"].append(hit)
        else:
            levels["history"].append(hit)
    for hit in positives(lookup(data, rules.concept("malignancy_suspected_text"), REPORTS)):
        levels["suspected"].append(hit)
    for value in ("active", "suspected", "history"):
        if levels[value]:
            return Found(value, tuple(levels[value]))
    return Found("none", (), "coded")


def osteoporosis(data: PatientData, rules: FactRules) -> Found:
    hits = positives(lookup(data, rules.concept("osteoporosis"), CURRENT_CONDITIONS))
    limit = rules.value("osteoporosis_t_score")
    # Void (entered-in-error, cancelled) measurements are not in the index: they never count.
    for obs, code in record_index(data).coded("Observation", rules.concept("dxa_t_score").codes):
        value = numeric_value(obs)
        if value is not None and value <= limit:
            hits.append(Evidence(obs, f"Observation/{obs.get('id', '?')}", "coded", code, "positive"))
    return _flag(hits, "osteoporosis (diagnosis or DXA T-score)")


def numeric_value(obs: Mapping[str, Any]) -> float | None:
    quantity = obs.get("valueQuantity")
    value = quantity.get("value") if isinstance(quantity, Mapping) else obs.get("valueInteger")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def neuro_red_flag(data: PatientData, now: datetime, rules: FactRules) -> Found:
    """A red flag pages only when new or progressive (seed 004: "new or progressive neurologic deficit").

    Cauda equina syndrome, cord compression, retropulsion with canal compromise (coded or written), weakness,
    bladder/bowel dysfunction: each counts when ``_recent`` holds for it. An old report, a Condition re-recorded
    recently with an old onset, or a finding called chronic/unchanged/stable does not page."""
    groups = (CURRENT_CONDITIONS, OBSERVATIONS, REPORTS)
    limit = rules.value("neuro_recent_days")
    hits = [*positives(lookup(data, rules.concept("neuro_always"), *groups)),
            *positives(lookup(data, rules.concept("neuro_if_new"), *groups))]
    paging = [hit for hit in hits if _recent(hit, now, limit, rules)]
    return Found(True, tuple(paging)) if paging else Found(False, (), "coded")


def _recent(hit: Evidence, now: datetime, limit: int, rules: FactRules) -> bool:
    """New/worsening/progressive/acute said of the finding in a statement made within ``limit`` days, or an onset
    (effective date for reports) within ``limit`` days not described as chronic/unchanged/stable. Undated
    findings count: they cannot be shown to be old (a red flag is never talked away; design choice)."""
    stated = recorded_date(hit.resource) or onset_date(hit.resource)
    sentences = _finding_sentences(hit, rules)
    if any(rules.concept("recency_new_text").text.search(t) == "positive" for t in sentences):
        age = days_before(now, stated)
        return age is None or age <= limit
    if any(rules.concept("recency_chronic_text").text.search(t) == "positive" for t in sentences):
        return False
    age = days_before(now, onset_date(hit.resource))
    return age is None or age <= limit


def _finding_sentences(hit: Evidence, rules: FactRules) -> list[str]:
    """The sentences that state the finding (text hits), else every text of the resource (coded hits)."""
    texts = list(view(hit.resource).texts)
    if hit.confidence != "text":
        return texts
    concepts = (rules.concept("neuro_always").text, rules.concept("neuro_if_new").text)
    return [part for text in texts for part in _SENTENCE.split(text)
            if any(c.search(part) == "positive" for c in concepts)]


_SENTENCE = re.compile(r"[;!?\n]|\.(?!\d)")


def simple_flags(data: PatientData, rules: FactRules) -> dict[str, Found]:
    """Deformity, pulmonary dysfunction, prior augmentation/surgery: present if coded or written."""
    current = (CURRENT_CONDITIONS, OBSERVATIONS)
    # Seed 004: "radiographic evidence of increasing kyphosis or loss of vertebral body height" is deformity, so a
    # report that describes the height loss or kyphosis as increasing counts too.
    deformity = [*positives(lookup(data, rules.concept("deformity"), *current)),
                 *positives(lookup(data, rules.concept("deformity_report_text"), REPORTS))]
    return {
        "deformity": _flag(deformity, "kyphosis or height loss"),
        "pulmonary_dysfunction": _flag(positives(lookup(data, rules.concept("pulmonary_dysfunction"), *current)),
                                       "dyspnea or abnormal lung function"),
        "prior_augmentation_or_surgery": _flag(
            positives(lookup(data, rules.concept("prior_augmentation_or_surgery"), PROCEDURES, CONDITIONS)),
            "prior vertebral augmentation or spine surgery"),
    }


def spine_imaging(data: PatientData, rules: FactRules) -> list[Evidence]:
    """Spine MRI/CT on record (reports, procedures, studies, in that order): read by the MRI findings here and
    by the fracture's newness (``fracture.py``), searched once."""
    return positives(lookup(data, rules.concept("spine_mri_ct"), REPORTS, PROCEDURES, of("ImagingStudy")))


def imaging_findings(data: PatientData, rules: FactRules, spine: list[Evidence]) -> dict[str, Found]:
    """Marrow edema / cleft and retropulsion: true if stated, false if negated or absent from a spine report.

    ``spine`` is ``spine_imaging``; only its reports (DiagnosticReports) speak for an absent finding."""
    spine_reports = [e for e in spine if e.resource.get("resourceType") == "DiagnosticReport"]
    found: dict[str, Found] = {}
    for name, concept in (("marrow_edema", "marrow_edema"), ("retropulsion", "retropulsion")):
        hits = lookup(data, rules.concept(concept), REPORTS, OBSERVATIONS, CURRENT_CONDITIONS)
        positive = positives(hits)
        if positive:
            found[name] = Found(True, tuple(positive))
        elif hits:
            found[name] = Found(False, tuple(hits))
        elif spine_reports:
            found[name] = Found(False, tuple(spine_reports),
                                "text")
        elif name == "retropulsion":
            found[name] = Found(False, (), "coded")
    return found


def contraindications(data: PatientData, rules: FactRules) -> Found:
    hits: list[Evidence] = []
    kinds: list[str] = []
    for name in _CONTRAINDICATIONS:
        found = positives(lookup(data, rules.concept(name), CURRENT_CONDITIONS))
        if found:
            kinds.append(name)
            hits.extend(found)
    return Found(tuple(kinds), tuple(hits), None if hits else "coded")
