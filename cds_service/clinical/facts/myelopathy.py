"""Myelopathy facts for the ACR Myelopathy topic (Revised 2020): its course, where the record states it.

ACR splits the topic into acute-onset (variant 1) and chronic or progressive myelopathy (variant 2) and gives
no duration between them (shared/reference/acr-spine-topics.md section 3 "Definitions"). So the course is
read only where the record states it in words; otherwise it stays unknown and the card asks for it: no
interval of ours turns an onset date into "acute".
"""

from __future__ import annotations

from ...fhir.patient_data import PatientData
from .evidence import clinical_record, either
from .resources import Found
from .rules import FactRules


def myelopathy_facts(data: PatientData, rules: FactRules) -> dict[str, Found]:
    """``myelopathy_course`` ("acute" / "chronic or progressive") where stated. Whether there is a myelopathy at
    all is read with the other neurologic findings (``back_pain.neuro_facts``), for every topic."""
    course = either(clinical_record(data), rules, ("acute", "myelopathy_acute_text"),
                    ("chronic or progressive", "myelopathy_chronic_text"))
    return {"myelopathy_course": course} if course else {}
