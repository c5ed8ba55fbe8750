"""Back-pain facts (ACR Low Back Pain 2021, Thoracic Back Pain 2024): the current episode and its neurology.

``back_pain_onset`` / ``back_pain_duration``: from the earliest dated back-pain Condition or Observation of the
current episode (current Conditions only: a resolved one closed its episode). Acute is under 4 weeks (ACR's
own cut-off, ``back_pain_acute_below_days``); from 4 weeks on "subacute-or-chronic", since ACR gives no other
line. Back pain named only on the order, without a date, leaves the duration unknown: never a guess.
Radiculopathy, myelopathy and suspected cauda equina syndrome are findings the record is the place for:
absent there, they are False. Urinary retention, saddle anaesthesia and bilateral leg weakness count for cauda
equina only when new (``neuro_recent_days``, shared with the VCF red flag).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from .index import CURRENT_CONDITIONS, lookup, of
from .resources import (
    Evidence,
    Found,
    days_before,
    find,
    onset_date,
    positives,
    reason_resources,
    recorded_date,
)
from .rules import FactRules


def reason_hits(orders: Sequence[DraftOrder], concept_name: str, rules: FactRules) -> list[Evidence]:
    """Hits of a concept on the draft orders' reasonCode, cited as the order's reason."""
    concept = rules.concept(concept_name)
    return [Evidence(stand_in, cited_as, hit.confidence, hit.code, "positive")
            for stand_in, cited_as in reason_resources(orders) for hit in positives(find([stand_in], concept))]


def episode_facts(data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules) -> dict[str, Found]:
    """Onset and duration class of the current back-pain episode, where a dated record shows it."""
    hits = positives(lookup(data, rules.concept("back_pain"), CURRENT_CONDITIONS, of("Observation")))
    dated = [(when, hit) for hit in hits if (when := onset_date(hit.resource)) is not None]
    if not dated:
        return {}
    onset, first = min(dated, key=lambda pair: pair[0])
    age = days_before(now, onset)
    if age is None or age < 0:
        return {}
    acute = age < rules.value("back_pain_acute_below_days")
    evidence = (first,)
    return {"back_pain_onset": Found(onset.isoformat(), evidence),
            "back_pain_duration": Found("acute" if acute else "subacute-or-chronic", evidence)}


def neuro_facts(data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules) -> dict[str, Found]:
    """Radiculopathy, myelopathy, suspected cauda equina syndrome: coded or written, on the record or the order."""
    groups = (CURRENT_CONDITIONS, of("Observation"), of("DiagnosticReport"))
    found: dict[str, Found] = {}
    for name, concept in (("radiculopathy", "radiculopathy"), ("myelopathy", "myelopathy")):
        hits = positives(lookup(data, rules.concept(concept), *groups)) + reason_hits(orders, concept, rules)
        found[name] = Found(True, tuple(hits)) if hits else Found(False, (), "coded")
    cauda = positives(lookup(data, rules.concept("cauda_equina"), *groups)) + reason_hits(orders, "cauda_equina", rules)
    limit = rules.value("neuro_recent_days")
    for hit in positives(lookup(data, rules.concept("cauda_equina_if_new"), *groups)):
        ages = [days_before(now, onset_date(hit.resource)), days_before(now, recorded_date(hit.resource))]
        if any(a is not None and a <= limit for a in ages):
            cauda.append(hit)
    cauda += reason_hits(orders, "cauda_equina_if_new", rules)  # stated on today's order: new by definition
    found["cauda_equina_suspected"] = Found(True, tuple(cauda)) if cauda else Found(False, (), "coded")
    return found
