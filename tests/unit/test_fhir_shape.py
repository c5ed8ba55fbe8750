"""Malformed patient data is dropped with a note, never guessed from and never a 500."""

from typing import Any

import pytest

from cds_service.fhir.shape import malformed_field

GOOD_OBSERVATION = {
    "resourceType": "Observation", "id": "pain-1", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}], "text": "Pain"},
    "category": [{"coding": [{"code": "survey"}]}], "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2026-11-01", "valueInteger": 7, "note": [{"text": "worse"}],
}


def test_well_formed_resources_pass() -> None:
    assert malformed_field(GOOD_OBSERVATION) is None
    assert malformed_field({"resourceType": "MedicationRequest", "id": "m", "dispenseRequest": {
        "validityPeriod": {"start": "2026-01-01", "end": "2026-07-01"}}, "contained": [
        {"resourceType": "Medication", "id": "d", "code": {"coding": [{"code": "993449"}]}}]}) is None


@pytest.mark.parametrize("change, field", [
    ({"resourceType": ["Observation"]}, "resourceType"),  # found by the fuzzer: unhashable type
    ({"code": {"coding": True}}, "code"),  # found by the fuzzer
    ({"clinicalStatus": {"coding": 3}}, "clinicalStatus"),  # found by the fuzzer
    ({"dispenseRequest": "soon"}, "dispenseRequest"),  # found by the fuzzer
    ({"category": [{"coding": [{"code": 7}]}]}, "category"),
    ({"valueQuantity": {"value": "seven"}}, "valueQuantity"),
    ({"valueInteger": True}, "valueInteger"),
    ({"effectiveDateTime": 20261101}, "effectiveDateTime"),
    ({"subject": "Patient/p1"}, "subject"),
    ({"note": "free text"}, "note"),
    ({"contained": [{"resourceType": "Medication", "code": {"coding": {}}}]}, "contained.code"),
])
def test_wrong_json_type_in_a_field_the_logic_reads_is_named(change: dict[str, Any], field: str) -> None:
    assert malformed_field({**GOOD_OBSERVATION, **change}) == field


def test_fields_the_logic_does_not_read_are_not_judged() -> None:
    assert malformed_field({**GOOD_OBSERVATION, "interpretation": 42, "component": "x"}) is None
