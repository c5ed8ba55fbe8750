"""Facts for the ACR topic Inflammatory Back Pain: Known or Suspected Axial Spondyloarthritis (2021).

``axial_spa`` is "known" (a confirmed diagnosis), "suspected" (a provisional diagnosis, or inflammatory back
pain stated: ACR's title pairs them, and no 2021 definition of inflammatory back pain was seen, so the words
must be in the record) or "none". The sacroiliac-joint studies already done decide variants 2 and 3:
``si_radiographs`` / ``si_mri`` are "not done", "negative" (sacroiliitis denied in the report), "abnormal" or
"done" (a report that says neither). V5 needs ``spine_ankylosis`` and ``spine_fracture_suspected``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from .evidence import clinical_record, flag, latest_report, stated
from .resources import Found, is_suspected
from .rules import FactRules


def spondyloarthritis_facts(data: PatientData, orders: Sequence[DraftOrder], rules: FactRules) -> dict[str, Found]:
    record = clinical_record(data)
    return {
        "axial_spa": _axial_spa(data, orders, rules),
        "spine_ankylosis": flag(stated(record, "spine_ankylosis", rules)),
        "spine_fracture_suspected": flag(stated(record, "spine_fracture_suspected", rules, orders)),
        "si_radiographs": _si_study(data, "si_radiograph", rules),
        "si_mri": _si_study(data, "si_mri", rules),
    }


def _axial_spa(data: PatientData, orders: Sequence[DraftOrder], rules: FactRules) -> Found:
    hits = stated(clinical_record(data), "axial_spa", rules, orders)
    known = [h for h in hits if h.resource.get("resourceType") == "Condition" and not is_suspected(h.resource)]
    if known:
        return Found("known", tuple(known))
    suspected = hits + stated(clinical_record(data), "inflammatory_back_pain", rules, orders)
    return Found("suspected", tuple(suspected)) if suspected else Found("none", (), "coded")


def _si_study(data: PatientData, concept: str, rules: FactRules) -> Found:
    """The latest report of this sacroiliac-joint study, read for sacroiliitis."""
    return latest_report(data, concept, "sacroiliitis", rules, ("abnormal", "negative"))
