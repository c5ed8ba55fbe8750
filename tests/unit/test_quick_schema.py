"""The quick schema check says yes exactly when jsonschema finds nothing, and stands aside where it cannot know."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.datafiles import _compiled, first_error, quick_check, validator

_NAMES = ["hook", "hookInstance", "fhirServer", "fhirAuthorization", "context", "prefetch", "extension",
          "access_token", "token_type", "expires_in", "userId", "patientId", "encounterId", "selections",
          "draftOrders", "resourceType", "type", "entry", "x"]
_LENGTHS = [c * n for c, limit in (("x", 100), ("y", 200), ("z", 512)) for n in (limit, limit + 1)]
_LENGTHS += ["http://" + "u" * 2041, "http://" + "u" * 2042]  # fhirServer: 2048 and 2049 characters
_STRING_EDGES = ["", "a", "order-select", "Bundle", "bundle", "Patient/p1", "Patient/", "Patient/a b",
                            "ServiceRequest/1", "Practitioner/x\n", "http://fhir/x", "https://a b", "ftp://x",
                            "http://x\n", "Bearer", "bearer", "BEARER ", *_LENGTHS]
_STRINGS = st.sampled_from(_STRING_EDGES)
_SCALARS = _STRINGS | st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from([1.0, 2.5, float("inf")])
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.sampled_from(_NAMES), inner, max_size=6), max_leaves=25)


_VALID = {
    "hook-request": {"hook": "order-select", "hookInstance": "1", "fhirServer": "http://fhir/x", "context": {},
                     "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": 1}},
    "order-context": {"userId": "Practitioner/1", "patientId": "p1", "selections": ["ServiceRequest/1"],
                      "draftOrders": {"resourceType": "Bundle", "entry": [{}]}},
}


def _overlaid(base: Any, data: st.DataObject) -> Any:
    """A valid instance with a few members (at any depth) dropped or replaced by arbitrary values."""
    if not isinstance(base, dict):
        return data.draw(_VALUES) if data.draw(st.integers(0, 15)) == 0 else base
    changed = {}
    for name, value in base.items():
        roll = data.draw(st.integers(0, 15))
        if roll == 0:
            continue  # dropped
        changed[name] = data.draw(_VALUES) if roll == 1 else _overlaid(value, data)
    if data.draw(st.integers(0, 5)) == 0:  # sometimes an extra member
        changed |= data.draw(st.dictionaries(st.sampled_from(_NAMES), _VALUES, max_size=1))
    return changed


@pytest.mark.parametrize("name", sorted(_VALID))
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_quick_check_agrees_with_jsonschema(name: str, data: st.DataObject) -> None:
    instance = _overlaid(_VALID[name], data)
    passes = quick_check(f"cds_hooks/schemas/{name}.schema.json")
    assert passes is not None
    assert passes(instance) == validator(name).is_valid(instance)


def _paths(base: Any, at: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not isinstance(base, dict):
        return [at]
    return [at] * bool(at) + [path for name, value in base.items() for path in _paths(value, (*at, name))]


def _replaced(base: Any, path: tuple[str, ...], value: Any) -> Any:
    if not path:
        return value
    return {**base, path[0]: _replaced(base.get(path[0], {}), path[1:], value)}


_EDGES = [*_STRING_EDGES, None, True, 0, 1, -1, 1.0, 2.5, [], ["a"], {}, {"a": 1}]


@pytest.mark.parametrize("name", sorted(_VALID))
def test_every_member_at_every_edge_value(name: str) -> None:
    """Each member of a valid instance replaced, in turn, by each edge value: lengths at and past the limits,
    1.0 against 2.5 for an integer, near-misses of each pattern, wrong JSON types."""
    passes = quick_check(f"cds_hooks/schemas/{name}.schema.json")
    assert passes is not None
    for path in _paths(_VALID[name]):
        for value in _EDGES:
            instance = _replaced(_VALID[name], path, value)
            assert passes(instance) == validator(name).is_valid(instance), (path, value)


def test_a_valid_order_context_passes_and_a_violation_keeps_its_message() -> None:
    context = {"userId": "Practitioner/1", "patientId": "p1", "selections": ["ServiceRequest/1"],
               "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": {}}]}}
    assert first_error("order-context", context) is None
    context["selections"] = ["ServiceRequest/"]
    assert first_error("order-context", context, prefix="context") == (
        "context.selections.0: 'ServiceRequest/' does not match '^[A-Za-z]+/[^/\\\\s]+$'")


@pytest.mark.parametrize("schema", [
    {"enum": ["a"]}, {"$ref": "#/$defs/x"}, {"type": ["string", "null"]}, {"const": 1},
    {"items": True}, {"prefixItems": [{}], "items": {"type": "string"}}, {"properties": {"a": {"not": {}}}},
])
def test_keywords_it_does_not_know_leave_the_schema_to_jsonschema(schema: dict[str, Any]) -> None:
    assert _compiled(schema) is None
    assert quick_check("cds_hooks/schemas/feedback.schema.json") is None  # $ref, enum, if/then
