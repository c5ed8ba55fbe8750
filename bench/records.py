"""Benchmark patient records: the seed fixture scenario padded to a typical or a large chart.

The seed (``seed-worsening-benign-vcf``) carries the clinical story; the padding is clinically neutral
(comorbidities unrelated to the spine, routine exam measurements dated before the fracture) so every
size takes the same path through the rules and only the amount of data differs. The padding Observations
are in the ``exam`` category, so the hook's ``observations`` prefetch template selects them. A typical
chart sent in prefetch is about 60 resources; 500 and 5,000 Observations stand for long-followed
patients, sent by an EHR that ignores the templates' ``_count`` (``uncapped``), which is the worst case
the service must survive.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from cds_service.cds_hooks.hook_definitions import HookDefinition
from cds_service.cli.fixtures import Scenario, default_definition, hook_request, materialise

SEED = "seed-worsening-benign-vcf"
TYPICAL_OBSERVATIONS = 45
TYPICAL_CONDITIONS = 10

_VITALS = (  # LOINC code, display, UCUM unit, base value: routine values that trigger no rule
    ("8867-4", "Heart rate", "/min", 72.0),
    ("29463-7", "Body weight", "kg", 61.0),
    ("9279-1", "Respiratory rate", "/min", 16.0),
    ("8310-5", "Body temperature", "Cel", 36.8),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 128.0),
)
_COMORBIDITIES = (  # ICD-10-CM code, display: no spine, cancer, infection or bleeding code
    ("I10", "Essential (primary) hypertension"),
    ("J30.9", "Allergic rhinitis, unspecified"),  # not diabetes: that is an infection red flag now
    ("E78.5", "Hyperlipidemia, unspecified"),
    ("E03.9", "Hypothyroidism, unspecified"),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
    ("H25.9", "Unspecified age-related cataract"),
    ("M17.0", "Bilateral primary osteoarthritis of knee"),
)


def _instant(day: date) -> str:
    return datetime.combine(day, time(9, 30), timezone(timedelta(hours=-5))).isoformat()


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


def _condition(patient_id: str, index: int, today: date) -> dict[str, Any]:
    code, display = _COMORBIDITIES[index % len(_COMORBIDITIES)]
    onset = today - timedelta(days=800 + 97 * index % 14_600)  # wraps every 40 years: 8,000 Conditions fit
    return {
        "resourceType": "Condition", "id": f"{patient_id}-bench-cond-{index}",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "confirmed"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                  "code": "problem-list-item"}]}],
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code, "display": display}],
                 "text": display},
        "subject": {"reference": f"Patient/{patient_id}"},
        "onsetDateTime": _instant(onset), "recordedDate": _instant(onset),
    }


def _vital(patient_id: str, index: int, today: date) -> dict[str, Any]:
    code, display, unit, base = _VITALS[index % len(_VITALS)]
    # Spread back from 120 days before today: before the fracture, so no acuity or trend rule sees them.
    day = today - timedelta(days=120 + index // len(_VITALS) * 7)
    return {
        "resourceType": "Observation", "id": f"{patient_id}-bench-obs-{index}", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "exam", "display": "Exam"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": _instant(day), "issued": _instant(day),
        "valueQuantity": {"value": round(base + (index % 7) * 0.5, 1), "unit": unit,
                          "system": "http://unitsofmeasure.org", "code": unit},
    }


def padded_scenario(today: date, observations: int = TYPICAL_OBSERVATIONS,
                    conditions: int = TYPICAL_CONDITIONS) -> Scenario:
    """The seed scenario with Conditions and Observations added up to the given totals."""
    seed = materialise(SEED, today)
    entries = list(seed.bundle["entry"])
    have = {t: sum(1 for e in entries if e["resource"]["resourceType"] == t) for t in ("Condition", "Observation")}
    entries += [_entry(_condition(seed.patient_id, i, today)) for i in range(max(0, conditions - have["Condition"]))]
    entries += [_entry(_vital(seed.patient_id, i, today)) for i in range(max(0, observations - have["Observation"]))]
    return dataclasses.replace(seed, bundle={**seed.bundle, "entry": entries})


def uncapped(definition: HookDefinition) -> HookDefinition:
    """The definition with ``_count`` removed from its templates: prefetch as an EHR that sends everything."""
    templates = {key: re.sub(r"&_count=\d+", "", template) for key, template in definition.prefetch.items()}
    return dataclasses.replace(definition, prefetch=templates)


def prefetched_call(scenario: Scenario) -> dict[str, Any]:
    """The order-select call the bench sends for a chart: every prefetch key filled from it, as an EHR that sends
    everything would (the templates without ``_count``, ``uncapped``), and no FHIR server to fetch from."""
    return hook_request(scenario, "order-select", with_prefetch=True, fhir_server=None,
                        definition=uncapped(default_definition("order-select")))


def resource_count(scenario: Scenario) -> int:
    """Resources in the chart (the Bundle), draft orders not included."""
    return len(scenario.bundle["entry"])
