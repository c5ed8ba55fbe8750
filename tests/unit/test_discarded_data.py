"""Issue 17 finding 3: every resource dropped from the patient data is named in the missing-data list by
reason, and a resource without ``subject`` is the context patient's only when its search was for that patient.

Before: Conditions of another patient or of the wrong type vanished without a word, and a Condition without
``subject`` was taken as this patient's whatever the search was.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cds_service.fhir.gather import gather_fhir_data
from tests.unit.test_fhir_data import PATIENT, definition, full_prefetch, hook_request, res, searchset

__all__ = ["definition"]  # the fixture, shared with test_fhir_data.py


def _notes(data: Any, key: str) -> list[str]:
    return [m.reason for m in data.missing if m.key == key]


def test_each_discarded_resource_is_counted_by_reason(definition: Any, fetcher: Any, fhir_settings: Any) -> None:
    conditions = searchset(
        res("Condition", "mine"),
        res("Condition", "theirs-1", patient="Patient/someone-else"),
        res("Condition", "theirs-2", patient="https://ehr.example.org/R4/Patient/another"),
        res("Observation", "wrong-type"),
        {"resourceType": "Condition", "id": "bad", "subject": {"reference": f"Patient/{PATIENT}"}, "code": "M80"},
        {"resourceType": "Condition", "subject": {"reference": f"Patient/{PATIENT}"}},
        {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "processing"}]},
    )
    data = gather_fhir_data(hook_request(full_prefetch(definition, conditions=conditions)), definition, fetcher,
                            fhir_settings.fhir_budget)
    assert [c["id"] for c in data.of_type("Condition")] == ["mine"]
    assert sorted(_notes(data, "conditions")) == sorted([
        "1 malformed Condition resource(s) ignored (wrong JSON type in: code)",
        "2 Condition resource(s) for another patient ignored",
        "1 resource(s) of another type than Condition ignored (Observation)",
        "1 Condition resource(s) without an id ignored",
    ])


def test_no_subject_is_kept_when_the_search_was_for_the_patient(definition: Any, fetcher: Any,
                                                                 fhir_settings: Any) -> None:
    orphan = {"resourceType": "Condition", "id": "no-subject"}
    data = gather_fhir_data(hook_request(full_prefetch(definition, conditions=searchset(orphan))), definition,
                            fetcher, fhir_settings.fhir_budget)
    assert data.of_type("Condition") == (orphan,) and _notes(data, "conditions") == []


def test_no_subject_is_dropped_and_named_when_the_search_was_not_for_the_patient(definition: Any, fetcher: Any,
                                                                                 fhir_settings: Any) -> None:
    unscoped = replace(definition, prefetch={**definition.prefetch, "conditions": "Condition?code=M80.08XA"})
    orphan = {"resourceType": "Condition", "id": "no-subject"}
    data = gather_fhir_data(hook_request(full_prefetch(unscoped, conditions=searchset(orphan, res("Condition", "c1")))),
                            unscoped, fetcher, fhir_settings.fhir_budget)
    assert [c["id"] for c in data.of_type("Condition")] == ["c1"]
    assert _notes(data, "conditions") == [
        "1 Condition resource(s) without a subject ignored (the search was not for the context patient)"]
