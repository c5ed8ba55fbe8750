"""Spine history and management facts: prior lumbar / thoracic surgery, failed medical management, candidacy.

Prior surgery comes from Procedure history (and arthrodesis / post-laminectomy codes); its region from a CPT
code that names it or from the resource's own words. A spine operation of unknown region leaves both region
facts unknown; no spine operation at all makes both False.

ACR's V3 (LBP) needs "persistent or progressive symptoms during or following 6 weeks of optimal medical
management" and a "surgery or intervention candidate". A record shows these only sometimes, so both are True
on evidence, False only where the record rules them out, and otherwise unknown (never False by silence):
- failed management: a stated failure (on the record or the order's reason), or conservative care on record
  (physical therapy, analgesics, brace) that began at least ``medical_management_days`` ago while the episode
  is still current; False when the current episode began less than that long ago;
- candidacy: a referral to a surgeon or pain specialist (recorded, or a draft order of this call), or the
  words on the record or the order's reason; False when the record says the patient is not a candidate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from .back_pain import reason_hits
from .index import CURRENT_CONDITIONS, current, lookup, of
from .resources import (
    Evidence,
    Found,
    days_before,
    find,
    onset_date,
    parse_date,
    positives,
    searchable,
    view,
)
from .rules import FactRules

_REGIONS = {"prior_lumbar_surgery": ("lumbar_surgery_codes", "lumbar_text"),
            "prior_thoracic_surgery": ("thoracic_surgery_codes", "thoracic_text")}


def surgery_facts(data: PatientData, rules: FactRules) -> dict[str, Found]:
    procedures = [p for p in data.of_type("Procedure") if str(p.get("status", "completed")).lower() == "completed"]
    surgeries = positives(find(procedures, rules.concept("spine_surgery")))
    surgeries += positives(lookup(data, rules.concept("spine_surgery"), of("Condition")))
    found: dict[str, Found] = {}
    unplaced = []
    for name, (codes, words) in _REGIONS.items():
        hits = [h for h in surgeries if _in_region(h.resource, rules, codes, words)]
        found[name] = Found(True, tuple(hits)) if hits else Found(False, (), "coded")
    for hit in surgeries:
        if not any(_in_region(hit.resource, rules, c, w) for c, w in _REGIONS.values()):
            unplaced.append(hit)
    if unplaced:  # a spine operation whose region the record does not say: could be either
        for name in _REGIONS:
            if found[name].value is False:
                del found[name]
    return found


def _in_region(resource: Mapping[str, Any], rules: FactRules, codes: str, words: str) -> bool:
    seen = view(resource)
    if rules.concept(codes).codes.any_match_keys(seen.keys):
        return True
    return any(rules.concept(words).text.search(t) == "positive" for t in searchable(seen))


def management_facts(data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules,
                     onset: str | None) -> dict[str, Found]:
    found: dict[str, Found] = {}
    failed = _failed(data, orders, now, rules, onset)
    if failed is not None:
        found["failed_medical_management"] = failed
    candidate = _candidate(data, orders, rules)
    if candidate is not None:
        found["intervention_candidate"] = candidate
    return found


def _failed(data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules,
            onset: str | None) -> Found | None:
    limit = rules.value("medical_management_days")
    episode_age = days_before(now, parse_date(onset))
    if episode_age is not None and episode_age < limit:
        return Found(False, (), "coded")  # the episode is younger than 6 weeks: 6 weeks cannot have failed
    stated = positives(lookup(data, rules.concept("failed_management_text"), CURRENT_CONDITIONS, of("Procedure"),
                              of("MedicationRequest"), of("MedicationStatement")))
    stated += reason_hits(orders, "failed_management_text", rules)
    if stated:
        return Found(True, tuple(stated))
    care = [h for h in positives(lookup(data, rules.concept("conservative_care"), CURRENT_CONDITIONS,
                                        current("Procedure"), current("MedicationRequest"),
                                        current("MedicationStatement")))
            if (age := days_before(now, onset_date(h.resource))) is not None and age >= limit]
    if care and episode_age is not None:
        return Found(True, tuple(care))
    return None


def _candidate(data: PatientData, orders: Sequence[DraftOrder], rules: FactRules) -> Found | None:
    concept = rules.concept("intervention_candidate")
    hits = lookup(data, concept, CURRENT_CONDITIONS, of("Procedure"))
    hits += [Evidence(o.resource, o.reference, "coded", None, "positive") for o in orders
             if o.procedure == "surgical-consultation"]
    hits += reason_hits(orders, "intervention_candidate", rules)
    positive = positives(hits)
    if positive:
        return Found(True, tuple(positive))
    if hits:  # only negated statements: "not a surgical candidate"
        return Found(False, tuple(hits))
    return None
