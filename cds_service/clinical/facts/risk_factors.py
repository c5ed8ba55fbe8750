"""Red-flag facts of the back-pain topics: suspicion of cancer or infection, immunosuppression, fracture risk.

Also the two findings that send an order elsewhere or to a "next study" variant: high-risk trauma (the
mechanism codes of the VCF topic, recent, on the record or the order: ACR routes it to the spinal trauma topic)
and a spine radiograph report showing bone destruction, fracture or deformity (TBP V6).

ACR names the red flags by what they raise suspicion of (LBP 2021 V6 and V7, TBP 2024 V4 and V5); the code
lists and phrases behind each are in ``clinical/shared/codes.json`` with their sources. Findings absent from the
record are False, like the VCF findings. ``elderly`` needs Patient.birthDate: without it the fact is unknown; its
age threshold (``elderly_age``) is unconfirmed for the current criteria and settable in thresholds.json.
Chronic steroid use is the long-term-use code, or a systemic glucocorticoid order active for at least
``chronic_steroid_days`` (inhaled, topical and joint injections do not count).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from .back_pain import reason_hits
from .evidence import flag
from .index import CURRENT_CONDITIONS, lookup, of
from .resources import (
    ACTIVE_MEDICATION,
    Evidence,
    Found,
    days_before,
    find,
    onset_date,
    parse_date,
    positives,
    reference,
    searchable,
    view,
)
from .rules import FactRules


def _recent(hits: Sequence[Evidence], now: datetime, limit: int) -> list[Evidence]:
    return [h for h in hits if (age := days_before(now, onset_date(h.resource))) is not None and age <= limit]


def risk_facts(data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules) -> dict[str, Found]:
    medications = [*data.of_type("MedicationRequest"), *data.of_type("MedicationStatement")]
    active_meds = [m for m in medications if str(m.get("status", "")).lower() in ACTIVE_MEDICATION]
    found = {
        "weight_loss": flag(positives(lookup(data, rules.concept("weight_loss"), CURRENT_CONDITIONS,
                                              of("Observation")))
                             + reason_hits(orders, "weight_loss", rules)),
        "immunosuppressed": flag(positives(lookup(data, rules.concept("immunosuppression"), CURRENT_CONDITIONS)
                                            + find(active_meds, rules.concept("immunosuppression")))),
        "infection_suspected": _infection(data, orders, now, rules),
        "low_velocity_trauma": flag(_recent(positives(lookup(data, rules.concept("low_velocity_trauma"),
                                                              CURRENT_CONDITIONS)), now,
                                             rules.value("trauma_recent_days"))
                                     + reason_hits(orders, "low_velocity_trauma", rules)),
        "chronic_steroid_use": _steroids(data, active_meds, now, rules),
        "high_risk_trauma": flag(_recent(positives(lookup(data, rules.concept("high_energy_trauma"),
                                                           CURRENT_CONDITIONS)), now,
                                          rules.value("trauma_recent_days"))
                                  + reason_hits(orders, "high_energy_trauma", rules)),
        "radiograph_bone_finding": _radiograph(data, rules),
    }
    elderly = _elderly(data.of_type("Patient"), now, rules.value("elderly_age"))
    if elderly is not None:
        found["elderly"] = elderly
    return found


def _radiograph(data: PatientData, rules: FactRules) -> Found:
    """A spine radiograph report that shows bone destruction, a fracture or a deformity (TBP V6)."""
    reports = positives(find(data.of_type("DiagnosticReport"), rules.concept("spine_radiograph")))
    shown = positives(find([r.resource for r in reports], rules.concept("radiograph_bone_finding")))
    return flag(shown)


def _infection(data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules) -> Found:
    """Fever, endocarditis, IV drug use, spine infection codes; or a spine procedure within the recent window."""
    hits = positives(lookup(data, rules.concept("infection_risk"), CURRENT_CONDITIONS))
    hits += reason_hits(orders, "infection_risk", rules)
    procedures = [p for p in data.of_type("Procedure") if str(p.get("status", "completed")).lower() == "completed"]
    limit = rules.value("recent_spinal_procedure_days")
    for concept in ("spinal_procedure", "spine_surgery", "prior_augmentation_or_surgery"):
        hits += _recent(positives(find(procedures, rules.concept(concept))), now, limit)
    return flag(list({id(h.resource): h for h in hits}.values()))


def _steroids(data: PatientData, meds: Sequence[Mapping[str, Any]], now: datetime,
              rules: FactRules) -> Found:
    hits = positives(lookup(data, rules.concept("chronic_steroid"), CURRENT_CONDITIONS))
    drug, local = rules.concept("systemic_glucocorticoid"), rules.concept("topical_or_inhaled")
    limit = rules.value("chronic_steroid_days")
    for med in meds:
        seen = view(med)
        code = drug.codes.any_match_keys(seen.keys)
        texts = searchable(seen)
        named = code or any(drug.text.search(t) == "positive" for t in texts)
        if not named or any(local.text.search(t) == "positive" for t in texts):
            continue
        started = _started(med)
        if started is not None and (now.date() - started).days >= limit:
            hits.append(Evidence(med, reference(med), "coded" if code else "text", code, "positive"))
    return flag(hits)


def _started(med: Mapping[str, Any]) -> date | None:
    period = med.get("effectivePeriod")
    start = parse_date(period.get("start")) if isinstance(period, Mapping) else None
    return start or onset_date(med)


def _elderly(patients: Sequence[Mapping[str, Any]], now: datetime, threshold: int) -> Found | None:
    born = next((parse_date(p.get("birthDate")) for p in patients if parse_date(p.get("birthDate"))), None)
    if born is None:
        return None
    today = now.date()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    patient = next(p for p in patients if parse_date(p.get("birthDate")) == born)
    return Found(age >= threshold, (Evidence(patient, reference(patient), "coded", None, "positive"),))
