"""Facts for the ACR topic Acute Spinal Trauma (2024 update): blunt spine trauma and what splits its variants.

The variant titles name them (shared/reference/acr-spine-topics.md section 4): whether imaging is indicated
by the Canadian C-spine Rule or NEXUS (V1 vs V2), follow-up in a collar for neck pain (V3), suspected arterial
injury (V4), suspected or confirmed ligamentous, cord or nerve root injury (V5), obtundation (V6, V7) and a
cervical CT without injury (V7). ACR does not restate the NEXUS or CCR items, and a record rarely holds them
all, so ``cspine_rule`` is read only where the clinician wrote the result; otherwise it is unknown and the
card asks for it. Vertebral fracture codes are not read as trauma here: a fragility fracture is a VCF.
``high_risk_mechanism`` is the VCF topic's high-energy mechanism (motor vehicle collision, fall from height)
in any current Condition, not only one tied to a fracture.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from .evidence import clinical_record, current_record, either, flag, latest_report, stated
from .resources import Found
from .rules import FactRules


def trauma_facts(data: PatientData, orders: Sequence[DraftOrder], rules: FactRules) -> dict[str, Found]:
    record = clinical_record(data)
    found = {
        "spinal_trauma": flag(stated(record, "spinal_trauma", rules, orders)),
        "high_risk_mechanism": flag(stated(current_record(data), "high_energy_trauma", rules, orders)),
        "obtunded": flag(stated(record, "obtunded", rules)),
        "suspected_arterial_injury": flag(stated(record, "suspected_arterial_injury", rules, orders)),
        "ligamentous_or_cord_injury": flag(stated(record, "ligamentous_or_cord_injury", rules, orders)),
        "cervical_collar_follow_up": flag(stated(record, "cervical_collar_follow_up", rules)),
        "cervical_ct": _cervical_ct(data, rules),
    }
    rule = either(record, rules, ("low risk", "cspine_rule_low_risk_text"),
                  ("imaging indicated", "cspine_rule_positive_text"))
    if rule:
        found["cspine_rule"] = rule
    return found


def _cervical_ct(data: PatientData, rules: FactRules) -> Found:
    """"no injury" (the report denies fracture or injury), "injury", "done" (says neither) or "not done"."""
    return latest_report(data, "cervical_ct", "spine_injury_finding", rules, ("injury", "no injury"))
