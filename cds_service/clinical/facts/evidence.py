"""Shared reading for the facts of the spine topics (myelopathy, infection, spondyloarthritis, ...).

These topics ask "does the record state X?" for many findings. One helper answers it the same way for all of
them: positive mentions in the current Conditions, Observations and reports, plus the draft orders' reasonCode
(what the ordering clinician states counts as evidence, like a Condition). Nothing here decides a fact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from .resources import Evidence, Found, current_conditions, find, positives, reason_resources
from .rules import FactRules


def clinical_record(data: PatientData) -> list[Mapping[str, Any]]:
    """Where a finding is written: current Conditions, Observations and reports."""
    return [*current_conditions(data), *data.of_type("Observation"), *data.of_type("DiagnosticReport")]


def stated(resources: Iterable[Mapping[str, Any]], concept: str, rules: FactRules,
           orders: Sequence[DraftOrder] = ()) -> list[Evidence]:
    """Positive mentions of ``concept`` in ``resources`` and in the orders' reasonCode."""
    hits = positives(find(resources, rules.concept(concept)))
    for stand_in, cited_as in reason_resources(orders):
        hits += [Evidence(stand_in, cited_as, h.confidence, h.code, "positive") for h in
                 positives(find([stand_in], rules.concept(concept)))]
    return hits


def flag(hits: list[Evidence]) -> Found:
    """True with its evidence, or False: the record is where the finding would be written (absence is coded
    absence; ``fact_sources.json`` turns it into unknown when the record could not be read)."""
    return Found(True, tuple(hits)) if hits else Found(False, (), "coded")
