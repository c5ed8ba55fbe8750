"""Step 5 of the request path: extract clinical facts, each with the FHIR resources it came from.

Input: ``PatientData``, the recognised ``DraftOrder``s (their reasonCode counts as evidence), the time of
the call, and the fact rules (code lists and thresholds, data under ``clinical/``). Output:
``ClinicalFacts``. Pure: no I/O, no clock reads (``now`` is an argument).
The fact vocabulary is documented in docs/architecture.md; the rules in docs/clinical-logic.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from . import back_pain as fact_back_pain
from . import findings as fact_findings
from . import management as fact_management
from . import risk_factors as fact_risk
from . import therapy as fact_therapy
from .cervical import cervical_facts
from .fracture import fracture_facts
from .index import DeadlinePassed, PastDeadline
from .infection import infection_facts
from .myelopathy import myelopathy_facts
from .resources import Found, best_confidence, extraction_memo, resource_views, sources
from .rules import FactRules, load_fact_rules
from .spondyloarthritis import spondyloarthritis_facts
from .trauma import trauma_facts
from .unchecked import Unchecked, unchecked_absences

__all__ = ["ClinicalFacts", "DeadlinePassed", "Fact", "FactRules", "extract_facts", "load_fact_rules"]

VOCABULARY = (
    "fracture", "fracture_level", "fracture_onset", "acuity", "new_fracture", "etiology", "symptomatic",
    "pain_trend", "pain_latest", "deformity", "pulmonary_dysfunction", "marrow_edema", "neuro_red_flag",
    "retropulsion", "malignancy", "contraindications", "prior_augmentation_or_surgery", "multiple_fractures",
    "osteoporosis", "osteoporosis_therapy", "failed_conservative_care", "high_energy_trauma", "recent_fracture",
    "prior_vcf_history",
    # back-pain topics (LBP 2021, TBP 2024)
    "back_pain_onset", "back_pain_duration", "radiculopathy", "myelopathy", "cauda_equina_suspected",
    "prior_lumbar_surgery", "prior_thoracic_surgery", "weight_loss", "infection_suspected", "immunosuppressed",
    "low_velocity_trauma", "elderly", "chronic_steroid_use", "failed_medical_management", "intervention_candidate",
    "high_risk_trauma", "radiograph_bone_finding",
    # the other spine topics (myelopathy, spine infection, axial spondyloarthritis, trauma, cervical pain)
    "myelopathy_course", "spine_infection_suspected", "infection_red_flags",
    "recent_spinal_intervention", "spine_wound", "infection_on_imaging", "axial_spa", "spine_ankylosis",
    "spine_fracture_suspected", "si_radiographs", "si_mri", "age_years", "neck_pain_course",
    "cervical_radiculopathy", "prior_cervical_surgery", "cervicogenic_headache", "spinal_trauma", "obtunded",
    "high_risk_mechanism",
    "suspected_arterial_injury", "ligamentous_or_cord_injury", "cervical_collar_follow_up", "cervical_ct",
    "cspine_rule",
)


@dataclass(frozen=True)
class Fact:
    name: str  # from the vocabulary in docs/architecture.md, e.g. "fracture", "malignancy"
    value: Any
    sources: tuple[str, ...]  # "Condition/abc", "Observation/x", "ServiceRequest/y (reasonCode)"
    confidence: Literal["coded", "text"]  # text = matched on display/free text only (lower confidence)


@dataclass(frozen=True)
class ClinicalFacts:
    facts: Mapping[str, Fact]
    missing: tuple[str, ...]  # fact names that could not be determined from the data
    conflicts: tuple[str, ...]  # fact names on which coded data disagree (no guess is made)
    unchecked: Mapping[str, Unchecked] = field(default_factory=dict)  # absences whose source was not obtained

    def value(self, name: str, default: Any = None) -> Any:
        fact = self.facts.get(name)
        return default if fact is None else fact.value


def extract_facts(data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules,
                  past_deadline: PastDeadline | None = None) -> ClinicalFacts:
    """Every fact of the vocabulary the data supports; the rest are listed as missing, disagreements as conflicts.

    Malignancy and osteoporosis come first because the fracture etiology depends on them (a traumatic code
    in an osteoporotic patient after a low-energy fall is a fragility fracture; pathologic vs osteoporotic
    codes are only reconciled when a malignancy explains them). Each resource is read once for the whole
    extraction (``resource_views``) and indexed by its codings and screened texts (``index.py``), so each
    rule is a lookup: the cost grows with the record once, not once per rule.

    ``past_deadline`` (the caller's clock, so this step reads none) is asked every 1,024 resources while the
    record is indexed and between groups of facts; once it says True, ``DeadlinePassed`` is raised and no fact
    is returned (a partial set could rate an order without the fact that would forbid it).
    """
    with resource_views(rules.text_screen):
        memo = extraction_memo()
        if memo is not None:
            memo["past_deadline"] = past_deadline
            memo["code_index"] = rules.code_index
        return _extract(data, orders, now, rules, past_deadline or _never)


def _never() -> bool:
    return False


def _check(past_deadline: PastDeadline, step: str) -> None:
    if past_deadline():
        raise DeadlinePassed(step)


def _extract(data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules,
             past_deadline: PastDeadline) -> ClinicalFacts:
    _check(past_deadline, "before fact extraction")
    found: dict[str, Found] = {
        "malignancy": fact_findings.malignancy(data, rules),
        "osteoporosis": fact_findings.osteoporosis(data, rules),
        "neuro_red_flag": fact_findings.neuro_red_flag(data, now, rules),
        "contraindications": fact_findings.contraindications(data, rules),
        "osteoporosis_therapy": fact_therapy.osteoporosis_therapy(data, now, rules),
    }
    _check(past_deadline, "findings")
    found.update(fact_findings.simple_flags(data, rules))
    spine = fact_findings.spine_imaging(data, rules)
    found.update(fact_findings.imaging_findings(data, rules, spine))
    found.update(fact_therapy.pain_facts(data, orders, now, rules))
    _check(past_deadline, "imaging and pain facts")
    fractures, conflicts = fracture_facts(data, orders, now, rules, found["osteoporosis"].value,
                                          found["malignancy"].value, spine)
    found.update(fractures)
    trend = found.get("pain_trend")
    found.update(myelopathy_facts(data, orders, rules))
    found.update(infection_facts(data, orders, now, rules, found["malignancy"].value))
    found.update(spondyloarthritis_facts(data, orders, rules))
    found.update(cervical_facts(data, orders, now, rules))
    found.update(trauma_facts(data, orders, rules))
    failed = fact_therapy.failed_conservative_care(data, rules, trend.value if trend else None)
    if failed:
        found["failed_conservative_care"] = failed
    found.update(fact_back_pain.episode_facts(data, orders, now, rules))
    found.update(fact_back_pain.neuro_facts(data, orders, now, rules))
    found.update(fact_risk.risk_facts(data, orders, now, rules))
    found.update(fact_management.surgery_facts(data, rules))
    onset = found.get("back_pain_onset")
    found.update(fact_management.management_facts(data, orders, now, rules, onset.value if onset else None))
    facts = {name: _fact(name, item) for name, item in found.items()}
    unchecked = unchecked_absences({n: f.value for n, f in facts.items()}, data, rules.fact_sources)
    facts = {n: f for n, f in facts.items() if n not in unchecked}
    missing = tuple(n for n in VOCABULARY if n not in facts and n not in conflicts)
    return ClinicalFacts(facts, missing, tuple(n for n in VOCABULARY if n in conflicts), unchecked)


def _fact(name: str, item: Found) -> Fact:
    confidence = item.confidence or (best_confidence(item.evidence) if item.evidence else "coded")
    return Fact(name, item.value, sources(item.evidence), confidence)
