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
from .evidence import clinical_record, current_record, flag, stated
from .resources import Found, find, positives, view
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
    low = stated(record, "cspine_rule_low_risk_text", rules)
    indicated = stated(record, "cspine_rule_positive_text", rules)
    if low and not indicated:
        found["cspine_rule"] = Found("low risk", tuple(low))
    elif indicated and not low:
        found["cspine_rule"] = Found("imaging indicated", tuple(indicated))
    return found


def _cervical_ct(data: PatientData, rules: FactRules) -> Found:
    """"no injury" (the report denies fracture or injury), "injury", "done" (says neither) or "not done"."""
    reports = [r for r in data.of_type("DiagnosticReport") if not view(r).void
               and positives(find([r], rules.concept("cervical_ct")))]
    if not reports:
        return Found("not done", (), "coded")
    report = max(reports, key=lambda r: str(r.get("effectiveDateTime") or r.get("issued") or ""))
    findings = find([report], rules.concept("spine_injury_finding"))
    if positives(findings):
        return Found("injury", tuple(positives(findings)))
    if findings:
        return Found("no injury", tuple(findings))
    return Found("done", tuple(positives(find([report], rules.concept("cervical_ct")))))
