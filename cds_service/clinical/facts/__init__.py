"""Step 5 of the request path: extract clinical facts, each with the FHIR resources it came from.

Input: ``PatientData``, the recognised ``DraftOrder``s (their reasonCode counts as evidence), the time of
the call, and the fact rules (code lists and thresholds, data under ``clinical/``). Output:
``ClinicalFacts`` (``model.py``), whose facts are computed as the later steps read them (``demand.py``).
Pure: no I/O, no clock reads (``now`` is an argument).
The fact vocabulary is documented in docs/architecture.md; the rules in docs/clinical-logic.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from . import back_pain as fact_back_pain
from . import findings as fact_findings
from . import management as fact_management
from . import risk_factors as fact_risk
from . import therapy as fact_therapy
from .cervical import cervical_facts
from .demand import FactBook, Producer
from .fracture import fracture_facts
from .index import DeadlinePassed, PastDeadline
from .infection import infection_facts
from .model import VOCABULARY, ClinicalFacts, Fact
from .myelopathy import myelopathy_facts
from .resources import Evidence, Found
from .rules import FactRules, load_fact_rules
from .spondyloarthritis import spondyloarthritis_facts
from .trauma import trauma_facts

__all__ = ["PRODUCERS", "VOCABULARY", "ClinicalFacts", "DeadlinePassed", "Fact", "FactRules", "extract_facts",
           "load_fact_rules"]


def extract_facts(data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules,
                  past_deadline: PastDeadline | None = None) -> ClinicalFacts:
    """The facts of the vocabulary the data supports, each computed when a step first reads it (``demand.py``):
    the rest are missing, disagreements conflicts, absences resting on data not obtained unchecked.

    Each resource is read once per call and indexed by its codings and screened texts (``index.py``), so each
    rule is a lookup: the cost grows with the record once, not once per rule.

    ``past_deadline`` (the caller's clock, so this step reads none) is asked before each rule runs and every
    1,024 resources while the record is indexed; once it says True, ``DeadlinePassed`` is raised from the step
    that asked (a partial set could rate an order without the fact that would forbid it).
    """
    return FactBook(data, orders, now, rules, PRODUCERS, past_deadline or _never).clinical_facts()


def _never() -> bool:
    return False


def _spine(book: FactBook) -> list[Evidence]:
    """Spine MRI/CT on record: read by the MRI findings and by the fracture's newness, searched once."""
    if "spine" not in book.shared:
        book.shared["spine"] = fact_findings.spine_imaging(book.data, book.rules)
    return book.shared["spine"]


def _fracture(book: FactBook) -> Mapping[str, Found]:
    """Malignancy and osteoporosis come first because the fracture etiology depends on them (a traumatic code
    in an osteoporotic patient after a low-energy fall is a fragility fracture; pathologic vs osteoporotic
    codes are only reconciled when a malignancy explains them)."""
    found, conflicts = fracture_facts(book.data, book.orders, book.now, book.rules, book.value("osteoporosis"),
                                      book.value("malignancy"), _spine(book))
    book.report_conflict(conflicts)
    return found


def _failed_conservative_care(book: FactBook) -> Mapping[str, Found]:
    failed = fact_therapy.failed_conservative_care(book.data, book.rules, book.value("pain_trend"))
    return {} if failed is None else {"failed_conservative_care": failed}


def _one(name: str, rule: Callable[[FactBook], Found]) -> Producer:
    return Producer((name,), lambda book: {name: rule(book)})


# Which rule gives which facts (each fact exactly one rule; tests/unit/test_fact_demand.py checks the names).
PRODUCERS: tuple[Producer, ...] = (
    _one("malignancy", lambda b: fact_findings.malignancy(b.data, b.rules)),
    _one("osteoporosis", lambda b: fact_findings.osteoporosis(b.data, b.rules)),
    _one("neuro_red_flag", lambda b: fact_findings.neuro_red_flag(b.data, b.now, b.rules)),
    _one("contraindications", lambda b: fact_findings.contraindications(b.data, b.rules)),
    _one("osteoporosis_therapy", lambda b: fact_therapy.osteoporosis_therapy(b.data, b.now, b.rules)),
    Producer(("deformity", "pulmonary_dysfunction", "prior_augmentation_or_surgery"),
             lambda b: fact_findings.simple_flags(b.data, b.rules)),
    Producer(("marrow_edema", "retropulsion"), lambda b: fact_findings.imaging_findings(b.data, b.rules, _spine(b))),
    Producer(("pain_latest", "pain_trend", "symptomatic"),
             lambda b: fact_therapy.pain_facts(b.data, b.orders, b.now, b.rules)),
    Producer(("fracture", "fracture_level", "fracture_onset", "acuity", "new_fracture", "recent_fracture", "etiology",
              "high_energy_trauma", "multiple_fractures", "prior_vcf_history"), _fracture, conflicts=("etiology",)),
    Producer(("myelopathy_course",), lambda b: myelopathy_facts(b.data, b.rules)),
    Producer(("spine_infection_suspected", "infection_red_flags", "spine_wound", "infection_on_imaging",
              "recent_spinal_intervention"),
             lambda b: infection_facts(b.data, b.orders, b.now, b.rules, b.value("malignancy"))),
    Producer(("axial_spa", "spine_ankylosis", "spine_fracture_suspected", "si_radiographs", "si_mri"),
             lambda b: spondyloarthritis_facts(b.data, b.orders, b.rules)),
    Producer(("cervical_radiculopathy", "prior_cervical_surgery", "cervicogenic_headache", "neck_pain_course",
              "age_years"), lambda b: cervical_facts(b.data, b.orders, b.now, b.rules)),
    Producer(("spinal_trauma", "high_risk_mechanism", "obtunded", "suspected_arterial_injury",
              "ligamentous_or_cord_injury", "cervical_collar_follow_up", "cervical_ct", "cspine_rule"),
             lambda b: trauma_facts(b.data, b.orders, b.rules)),
    Producer(("failed_conservative_care",), _failed_conservative_care),
    Producer(("back_pain_onset", "back_pain_duration"),
             lambda b: fact_back_pain.episode_facts(b.data, b.orders, b.now, b.rules)),
    Producer(("radiculopathy", "myelopathy", "cauda_equina_suspected"),
             lambda b: fact_back_pain.neuro_facts(b.data, b.orders, b.now, b.rules)),
    Producer(("weight_loss", "immunosuppressed", "infection_suspected", "low_velocity_trauma", "chronic_steroid_use",
              "high_risk_trauma", "radiograph_bone_finding", "elderly"),
             lambda b: fact_risk.risk_facts(b.data, b.orders, b.now, b.rules)),
    Producer(("prior_lumbar_surgery", "prior_thoracic_surgery"),
             lambda b: fact_management.surgery_facts(b.data, b.rules)),
    Producer(("failed_medical_management", "intervention_candidate"),
             lambda b: fact_management.management_facts(b.data, b.orders, b.now, b.rules, b.value("back_pain_onset"))),
)
