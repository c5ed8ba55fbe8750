"""Myelopathy facts for the ACR Myelopathy topic (Revised 2020): is there a myelopathy, and its course.

ACR splits the topic into acute-onset (variant 1) and chronic or progressive myelopathy (variant 2) and gives
no duration between them (shared/reference/acr-spine-topics.md section 3 "Definitions"). So the course is
read only where the record states it in words; otherwise it stays unknown and the card asks for it: no
interval of ours turns an onset date into "acute".
"""

from __future__ import annotations

from collections.abc import Sequence

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from .evidence import clinical_record, either, flag, stated
from .resources import Found
from .rules import FactRules


def myelopathy_facts(data: PatientData, orders: Sequence[DraftOrder], rules: FactRules) -> dict[str, Found]:
    """``myelopathy`` (bool) and, where stated, ``myelopathy_course`` ("acute" / "chronic or progressive")."""
    record = clinical_record(data)
    found = {"myelopathy": flag(stated(record, "myelopathy", rules, orders))}
    course = either(record, rules, ("acute", "myelopathy_acute_text"),
                    ("chronic or progressive", "myelopathy_chronic_text"))
    if course:
        found["myelopathy_course"] = course
    return found
