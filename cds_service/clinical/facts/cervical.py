"""Facts for the ACR topic Cervical Pain or Cervical Radiculopathy (2024 update), and the patient's age.

The variant titles name them (shared/reference/acr-spine-topics.md section 2): adult; acute or increasing vs
chronic neck pain (ACR gives **no duration cut-off**, so the course is read only where the record states it,
else it stays unknown and the card asks for it); radiculopathy; prior cervical spine surgery; suspected
cervicogenic headache. Age comes from Patient.birthDate at the time of the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from .evidence import clinical_record, either, flag, stated
from .index import of
from .resources import Evidence, Found, parse_date, reference
from .rules import FactRules


def cervical_facts(data: PatientData, orders: Sequence[DraftOrder], now: datetime,
                   rules: FactRules) -> dict[str, Found]:
    record = clinical_record(data)
    found = {
        "cervical_radiculopathy": flag(stated(record, "cervical_radiculopathy", rules, orders)),
        "prior_cervical_surgery": flag(stated(record.plus(of("Procedure")), "prior_cervical_surgery", rules)),
        "cervicogenic_headache": flag(stated(record, "cervicogenic_headache", rules, orders)),
    }
    course = either(record, rules, ("acute or increasing", "neck_pain_acute_text"),
                    ("chronic", "neck_pain_chronic_text"))
    if course:
        found["neck_pain_course"] = course
    age = age_years(data, now)
    if age is not None:
        found["age_years"] = age
    return found


def age_years(data: PatientData, now: datetime) -> Found | None:
    """Whole years since Patient.birthDate; None (unknown) without a usable birth date."""
    for patient in data.of_type("Patient"):
        born = parse_date(patient.get("birthDate"))
        if born is None:
            continue
        today = now.date()
        years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        return Found(years, (Evidence(patient, reference(patient), "coded", None, "positive"),), "coded")
    return None
