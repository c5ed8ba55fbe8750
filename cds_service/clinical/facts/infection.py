"""Facts for the ACR topic Suspected Spine Infection (New 2021): the suspicion and what splits its variants.

The variant titles name them (shared/reference/acr-spine-topics.md section 5): red flags (diabetes mellitus,
IV drug use, cancer, HIV, dialysis) or abnormal lab values (V1, shown, not deciding: V1 says "may have"),
a recent intervention (V2), a decubitus ulcer or wound over the spine (V4) and abnormal radiographs or CT
(V5). A new neurologic deficit (V3) is the existing ``neuro_red_flag``. Labs count as abnormal only where the
laboratory flagged them (Observation.interpretation): no threshold of ours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from .evidence import clinical_record, current_record, flag, stated
from .index import lookup, of
from .resources import Evidence, Found, days_before, find, onset_date, positives, status_code, view
from .rules import FactRules

RED_FLAGS = (("diabetes", "infection_flag_diabetes"), ("iv-drug-use", "infection_flag_iv_drug_use"),
             ("hiv", "infection_flag_hiv"), ("dialysis", "infection_flag_dialysis"))
_ABNORMAL = frozenset({"h", "hh", "hu", "a", "aa"})  # HL7 v3 ObservationInterpretation: high, critical, abnormal


def infection_facts(data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules,
                    malignancy: Any) -> dict[str, Found]:
    record = clinical_record(data)
    found = {
        "spine_infection_suspected": flag(stated(record, "spine_infection", rules, orders)),
        "infection_red_flags": _red_flags(data, rules, malignancy),
        "spine_wound": flag(stated(current_record(data, of("Observation")), "spine_wound", rules)),
        "infection_on_imaging": _infection_on_imaging(data, rules),
    }
    recent = _recent_intervention(data, now, rules)
    if recent is not None:
        found["recent_spinal_intervention"] = recent
    return found


def _red_flags(data: PatientData, rules: FactRules, malignancy: Any) -> Found:
    names: list[str] = []
    evidence: list[Evidence] = []
    record = current_record(data, of("Observation"))
    for name, concept in RED_FLAGS:
        hits = stated(record, concept, rules)
        if hits:
            names.append(name)
            evidence += hits[:1]  # one record per red flag named: the card lists what, not every entry
    if malignancy in ("active", "history", "suspected"):
        names.append("cancer")
    labs = [hit for hit in positives(lookup(data, rules.concept("infection_lab"), of("Observation")))
            if _flagged_abnormal(hit.resource)]
    if labs:
        names.append("abnormal-labs")
        evidence += labs
    return Found(tuple(names), tuple(evidence), None if evidence else "coded")


def _flagged_abnormal(obs: Mapping[str, Any]) -> bool:
    return any(status_code(i) in _ABNORMAL for i in obs.get("interpretation") or () if isinstance(i, Mapping))


def _recent_intervention(data: PatientData, now: datetime, rules: FactRules) -> Found | None:
    """True when a spinal intervention is dated inside the window; unknown when one is undated."""
    hits = positives(lookup(data, rules.concept("spinal_intervention"), of("Procedure")))
    limit = rules.value("recent_spinal_intervention_days")
    ages = [(hit, days_before(now, onset_date(hit.resource))) for hit in hits]
    recent = [hit for hit, age in ages if age is not None and 0 <= age <= limit]
    if recent:
        return Found(True, tuple(recent))
    if any(age is None for _, age in ages):
        return None
    return Found(False, tuple(hits), "coded")


def _infection_on_imaging(data: PatientData, rules: FactRules) -> Found:
    """A spine radiograph or CT report naming a finding of infection; False when none does (or none exists)."""
    reports = [r for r in data.of_type("DiagnosticReport") if not view(r).void
               and positives(find([r], rules.concept("spine_radiograph_ct")))]
    hits = positives(find(reports, rules.concept("infection_imaging_finding")))
    return Found(True, tuple(hits)) if hits else Found(False, (), "coded")
