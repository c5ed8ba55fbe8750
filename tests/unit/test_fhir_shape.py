"""Malformed patient data is dropped with a note, never guessed from and never a 500."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    ({"code": {"coding": [{"system": "http://loinc.org"}, {"display": ["Pain"]}]}}, "code"),  # the second Coding
    ({"code": {"coding": [{"system": None}]}}, "code"),  # present as null: not a string
    ({"code": {"coding": [{"code": "x"}], "text": 1}}, "code"),
    ({"category": [{"coding": [{"code": "x"}]}, {"coding": [{"display": 2}]}]}, "category"),  # the second concept
    ({"category": [{"text": "x"}, "survey"]}, "category"),
    ({"code": {"coding": "72514-3"}}, "code"),
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


# The rule the hand-written checks implement, stated once and generically: a field's value has its JSON type,
# and each listed member of an object, where present (even as null), passes its own rule.
_STR, _NUM = "string", "number"
_CODING = {"system": _STR, "code": _STR, "display": _STR}
_CONCEPT = {"text": _STR, "coding": [_CODING]}
_PERIOD = {"start": _STR, "end": _STR}
_RULES: dict[str, Any] = {
    "id": _STR, "status": _STR, "effectiveDateTime": _STR, "code": "concepts", "category": "concepts",
    "subject": {"reference": _STR}, "valueQuantity": {"value": _NUM}, "valueInteger": _NUM, "note": [{"text": _STR}],
    "effectivePeriod": _PERIOD, "dispenseRequest": {"validityPeriod": _PERIOD},
}


def _passes(value: Any, rule: Any) -> bool:
    if rule == _STR:
        return isinstance(value, str)
    if rule == _NUM:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if rule == "concepts":
        return all(_passes(v, _CONCEPT) for v in value) if isinstance(value, list) else _passes(value, _CONCEPT)
    if isinstance(rule, list):
        return isinstance(value, list) and all(_passes(item, rule[0]) for item in value)
    return isinstance(value, dict) and all(_passes(value[k], r) for k, r in rule.items() if k in value)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.sampled_from(["text", "coding", "system", "code", "display", "reference", "value",
                                          "start", "end", "validityPeriod"]), inner, max_size=4), max_leaves=12)


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(_RULES)), _JSON, max_size=4))
def test_checks_follow_the_generic_rule(fields: dict[str, Any]) -> None:
    resource = {"resourceType": "Observation", **fields}
    expected = next((name for name, value in fields.items() if not _passes(value, _RULES[name])), None)
    assert malformed_field(resource) == expected
