"""Pain and treatment facts: symptoms, pain trend from 0-10 scores, osteoporosis therapy, failed conservative care.

Pain trend needs numbers: at least two scores inside the window, compared earliest to latest. One score, or
none, leaves the trend unknown unless the record states it in words (lower-confidence text fact).
Long-acting osteoporosis drugs keep counting after the order ends (denosumab, zoledronic acid).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Literal

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from .findings import numeric_value
from .index import CURRENT_CONDITIONS, current, lookup, of, record_index
from .resources import (
    ACTIVE_MEDICATION,
    Evidence,
    Found,
    days_before,
    find,
    is_void,
    onset_date,
    parse_date,
    positives,
    reason_resources,
    recorded_date,
    reference,
    searchable,
    view,
)
from .rules import Drug, FactRules

_ENDED_MEDICATION = frozenset({"completed", "stopped"})


def pain_scores(data: PatientData, rules: FactRules) -> list[tuple[date, float, Evidence]]:
    """Dated 0-10 pain scores (LOINC 72514-3, 38208-5), oldest first."""
    scores: list[tuple[date, float, Evidence]] = []
    for obs, code in record_index(data).coded("Observation", rules.concept("pain_score").codes):  # none void
        value = numeric_value(obs)
        when = onset_date(obs)
        if value is not None and when and 0 <= value <= 10:
            scores.append((when, value, Evidence(obs, reference(obs), "coded", code, "positive")))
    return sorted(scores, key=lambda s: s[0])


def pain_facts(data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules) -> dict[str, Found]:
    scores = pain_scores(data, rules)
    found: dict[str, Found] = {}
    window = rules.value("symptom_window_days")
    if scores and (days_before(now, scores[-1][0]) or 0) <= window:  # an old score says nothing about today
        _when, value, evidence = scores[-1]
        found["pain_latest"] = Found(value, (evidence,))
    trend = _trend(scores, now, rules)
    if trend is None:
        stated = positives(lookup(data, rules.concept("worsening_pain_text"), CURRENT_CONDITIONS))
        trend = Found("worsening", tuple(stated)) if stated else None
    if trend:
        found["pain_trend"] = trend
    symptomatic = _symptomatic(data, orders, scores, now, rules)
    if symptomatic:
        found["symptomatic"] = symptomatic
    return found


def _trend(scores: list[tuple[date, float, Evidence]], now: datetime, rules: FactRules) -> Found | None:
    cfg = rules.thresholds["pain_trend"]
    recent = [s for s in scores if (days_before(now, s[0]) or 0) <= cfg["window_days"]]
    if len(recent) < cfg["min_scores"]:
        return None
    earlier, last = [s[1] for s in recent[:-1]], recent[-1][1]
    low, high = min(earlier), max(earlier)

    def clinically_important(change: float, base: float) -> bool:
        return change >= cfg["change_points"] or (base > 0 and change / base >= cfg["change_fraction"])

    # Against the best earlier score, so pain that eased and then came back worse (seed 004) is worsening;
    # a rebound that stays below where the window started (8 -> 2 -> 4) is not.
    if last > low and last >= recent[0][1] and clinically_important(last - low, low):
        value = "worsening"
    elif high > last and clinically_important(high - last, high):
        value = "improving"
    else:
        value = "stable"
    return Found(value, tuple(s[2] for s in recent))


def _symptomatic(data: PatientData, orders: Sequence[DraftOrder], scores: list[tuple[date, float, Evidence]],
                 now: datetime, rules: FactRules) -> Found | None:
    """Symptomatic: back pain coded/written, or a recent score > 0. Asymptomatic: said so, or latest score 0.

    Latest evidence wins (issue 11): a latest score inside the window outranks text stated before it; text counts
    by its date (recorded, else onset; undated text is taken as older than the score), and the draft order's
    reason is stated now."""
    window = rules.value("symptom_window_days")
    recent = [s for s in scores if (days_before(now, s[0]) or 0) <= window]
    if recent and recent[-1][1] > 0:
        return Found(True, (recent[-1][2],))
    pain = rules.concept("back_pain")
    hits = positives(lookup(data, pain, CURRENT_CONDITIONS))
    stated_now: list[Evidence] = []
    for stand_in, cited_as in reason_resources(orders):
        for hit in positives(find([stand_in], pain)):
            stated_now.append(Evidence(stand_in, cited_as, hit.confidence, hit.code, "positive"))
    if recent:
        scored = recent[-1][0]
        newer = [h for h in hits if (d := recorded_date(h.resource) or onset_date(h.resource)) and d > scored]
        newer.extend(stated_now)
        return Found(True, tuple(newer)) if newer else Found(False, (recent[-1][2],))
    hits.extend(stated_now)
    if hits:
        return Found(True, tuple(hits))
    denied = positives(lookup(data, rules.concept("asymptomatic_text"), CURRENT_CONDITIONS))
    if denied:
        return Found(False, tuple(denied))
    return None


def osteoporosis_therapy(data: PatientData, now: datetime, rules: FactRules) -> Found:
    """Active osteoporosis drug, a long-acting one still within its coverage, or Z79.83."""
    hits: list[Evidence] = []
    meds = {m.get("id"): m for m in data.of_type("Medication")}
    for resource in (*data.of_type("MedicationRequest"), *data.of_type("MedicationStatement")):
        if is_void(resource):
            continue
        match = _drug(resource, meds, rules.drugs)
        if match is None:
            continue
        drug, confidence = match
        status = str(resource.get("status", "")).lower()
        last = _last_date(resource)
        age = days_before(now, last)
        if status in ACTIVE_MEDICATION or (status in _ENDED_MEDICATION and age is not None
                                            and age <= drug.coverage_days):
            hits.append(Evidence(resource, reference(resource), confidence, None, "positive"))
    z_code = positives(lookup(data, rules.concept("bisphosphonate_use"), CURRENT_CONDITIONS))
    hits.extend(z_code)
    if hits:
        return Found(True, tuple(hits))
    return Found(False, (), "coded")


def _drug(resource: Mapping[str, Any], meds: Mapping[Any, Mapping[str, Any]],
          drugs: Sequence[Drug]) -> tuple[Drug, Literal["coded", "text"]] | None:
    """Match medicationCodeableConcept, else the referenced (or contained) Medication, by code then text."""
    candidates = [resource]
    ref = resource.get("medicationReference")
    if isinstance(ref, Mapping) and isinstance(ref.get("reference"), str):
        target = ref["reference"].split("/")[-1].lstrip("#")
        contained = {c.get("id"): c for c in resource.get("contained") or () if isinstance(c, Mapping)}
        medication = contained.get(target) or meds.get(target)
        if medication:
            candidates.append(medication)
        if isinstance(ref.get("display"), str):
            candidates.append({"resourceType": "Medication", "code": {"text": ref["display"]}})
    for drug in drugs:
        if any(drug.codes.any_match_keys(view(c).keys) for c in candidates):
            return drug, "coded"
    for drug in drugs:
        if any(drug.text.search(t) == "positive" for c in candidates for t in searchable(view(c))):
            return drug, "text"
    return None


def _last_date(resource: Mapping[str, Any]) -> date | None:
    period = resource.get("effectivePeriod")
    end = parse_date(period.get("end")) if isinstance(period, Mapping) else None
    validity = (resource.get("dispenseRequest") or {}).get("validityPeriod")
    end = end or (parse_date(validity.get("end")) if isinstance(validity, Mapping) else None)
    return end or onset_date(resource)


def failed_conservative_care(data: PatientData, rules: FactRules, pain_trend: str | None) -> Found | None:
    """Conservative care on record and pain not improving; stated failure counts on its own (text)."""
    stated = positives(lookup(data, rules.concept("failed_conservative_text"), CURRENT_CONDITIONS, of("Procedure"),
                              of("MedicationRequest"), of("MedicationStatement")))
    if stated:
        return Found(True, tuple(stated))
    care = positives(lookup(data, rules.concept("conservative_care"), CURRENT_CONDITIONS, current("Procedure"),
                            current("MedicationRequest"), current("MedicationStatement")))
    if not care:
        return Found(False, (), "coded")
    if pain_trend in ("worsening", "stable"):
        return Found(True, tuple(care))
    if pain_trend == "improving":
        return Found(False, tuple(care))
    return None
