"""What step 5 hands on: the fact vocabulary, one fact with its provenance, and a call's facts.

The fact vocabulary is documented in docs/architecture.md; the rules in docs/clinical-logic.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from .unchecked import Unchecked

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


class Fact(NamedTuple):
    """One fact with its provenance: a named tuple, like ``conditions.Subject`` (which says why)."""

    name: str  # from the vocabulary in docs/architecture.md, e.g. "fracture", "malignancy"
    value: Any
    sources: tuple[str, ...]  # "Condition/abc", "Observation/x", "ServiceRequest/y (reasonCode)"
    confidence: Literal["coded", "text"]  # text = matched on display/free text only (lower confidence)


@dataclass(frozen=True)
class ClinicalFacts:
    """A call's facts. From ``extract_facts`` the four members compute each fact when first read (see
    ``demand.py``); tests build them from plain dicts and tuples."""

    facts: Mapping[str, Fact]
    missing: Sequence[str]  # fact names that could not be determined from the data
    conflicts: Sequence[str]  # fact names on which coded data disagree (no guess is made)
    unchecked: Mapping[str, Unchecked] = field(default_factory=dict)  # absences whose source was not obtained

    def value(self, name: str, default: Any = None) -> Any:
        fact = self.facts.get(name)
        return default if fact is None else fact.value
