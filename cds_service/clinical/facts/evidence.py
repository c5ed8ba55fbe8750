"""Shared reading for the facts of the spine topics (myelopathy, infection, spondyloarthritis, ...).

These topics ask "does the record state X?" for many findings. One helper answers it the same way for all of
them: positive mentions in the current Conditions, Observations and reports, plus the draft orders' reasonCode
(what the ordering clinician states counts as evidence, like a Condition). Nothing here decides a fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from .index import CURRENT_CONDITIONS, Group, lookup, of
from .resources import Evidence, Found, find, positives, reason_resources, view
from .rules import FactRules


@dataclass(frozen=True)
class Where:
    """Which of the patient's resources a finding is looked for in: groups of the call's record index, so each
    question is a lookup, not a scan of every resource (the fact-scaling test holds that)."""

    data: PatientData
    groups: tuple[Group, ...]

    def plus(self, *groups: Group) -> Where:
        return Where(self.data, (*self.groups, *groups))


def clinical_record(data: PatientData) -> Where:
    """Where a finding is written: current Conditions, Observations and reports."""
    return Where(data, (CURRENT_CONDITIONS, of("Observation"), of("DiagnosticReport")))


def current_record(data: PatientData, *groups: Group) -> Where:
    """Current Conditions, plus ``groups``."""
    return Where(data, (CURRENT_CONDITIONS, *groups))


def stated(where: Where, concept: str, rules: FactRules, orders: Sequence[DraftOrder] = ()) -> list[Evidence]:
    """Positive mentions of ``concept`` in ``where`` and in the orders' reasonCode."""
    hits = positives(lookup(where.data, rules.concept(concept), *where.groups))
    for stand_in, cited_as in reason_resources(orders):
        hits += [Evidence(stand_in, cited_as, h.confidence, h.code, "positive") for h in
                 positives(find([stand_in], rules.concept(concept)))]
    return hits


def flag(hits: list[Evidence]) -> Found:
    """True with its evidence, or False: the record is where the finding would be written (absence is coded
    absence; ``fact_sources.json`` turns it into unknown when the record could not be read)."""
    return Found(True, tuple(hits)) if hits else Found(False, (), "coded")


def either(where: Where, rules: FactRules, first: tuple[str, str], second: tuple[str, str]) -> Found | None:
    """One of two opposite statements (e.g. an acute vs a chronic course), each a (value, concept): the value
    whose concept alone is stated; None (unknown) when neither or both are written."""
    hits_first, hits_second = stated(where, first[1], rules), stated(where, second[1], rules)
    if hits_first and not hits_second:
        return Found(first[0], tuple(hits_first))
    if hits_second and not hits_first:
        return Found(second[0], tuple(hits_second))
    return None


def latest_report(data: PatientData, study: str, finding: str, rules: FactRules,
                  words: tuple[str, str]) -> Found:
    """The latest report of ``study`` read for ``finding``: ``words`` = (value when the finding is stated,
    value when it is denied); "done" when the report says neither, "not done" without such a report."""
    reports = [r for r in data.of_type("DiagnosticReport") if not view(r).void
               and positives(find([r], rules.concept(study)))]
    if not reports:
        return Found("not done", (), "coded")
    report = max(reports, key=lambda r: str(r.get("effectiveDateTime") or r.get("issued") or ""))
    findings = find([report], rules.concept(finding))
    if positives(findings):
        return Found(words[0], tuple(positives(findings)))
    if findings:
        return Found(words[1], tuple(findings))
    return Found("done", tuple(positives(find([report], rules.concept(study)))))
