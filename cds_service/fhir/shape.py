"""Check the JSON shape of the fields the clinical logic reads, once per resource, before facts are extracted.

Patient data comes from the caller (prefetch) or a FHIR server we do not control. Full ``fhir.resources``
validation costs ~0.1 ms a resource, too much for a 5,000-Observation record, and would judge fields the
logic never reads. So each resource is checked only where the fact rules look: a field of the wrong JSON
type (``coding: true``, ``dispenseRequest: "x"``, ``resourceType: []``) makes the resource malformed; the
caller drops it and says so, instead of guessing from it or failing the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Each check is written out rather than built from a generic "members pass their checks" helper: about 70
# resources arrive with a typical call and the checks ran a call per member. Throughout, a missing member reads
# as a default of the right type and a present one (even null) must have the type, which is that same rule.
def _concept(value: Any) -> bool:
    if not isinstance(value, dict) or not isinstance(value.get("text", ""), str):
        return False
    coding = value.get("coding", [])
    if not isinstance(coding, list):
        return False
    for item in coding:  # each Coding inline: a call per Coding was a tenth of the checks' time
        if not (isinstance(item, dict) and isinstance(item.get("system", ""), str)
                and isinstance(item.get("code", ""), str) and isinstance(item.get("display", ""), str)):
            return False
    return True


def _concepts(value: Any) -> bool:
    """A CodeableConcept, or a list of them (R4 uses both shapes across the resources we read)."""
    if type(value) is dict:
        return _concept(value)
    if isinstance(value, list):
        for item in value:
            if not _concept(item):
                return False
        return True
    return _concept(value)


def _reference(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("reference", ""), str)


def _period(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("start", ""), str) and isinstance(value.get("end", ""), str)


def _quantity(value: Any) -> bool:
    return isinstance(value, dict) and _is_number(value.get("value", 0))


def _annotations(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(note, dict) and isinstance(note.get("text", ""), str)
                                           for note in value)


def _dispense_request(value: Any) -> bool:
    return isinstance(value, dict) and ("validityPeriod" not in value or _period(value["validityPeriod"]))


# Field -> check, for every field a fact rule, the order step or the patient filter reads. The same field
# name has the same R4 type in every resource type we read (Condition, Observation, MedicationRequest,
# MedicationStatement, Medication, DiagnosticReport, ImagingStudy, Procedure, Patient).
FIELD_CHECKS: Final[dict[str, Callable[[Any], bool]]] = {
    **{field: _is_string for field in (
        "id", "status", "onsetDateTime", "effectiveDateTime", "performedDateTime", "occurrenceDateTime",
        "issued", "authoredOn", "started", "recordedDate", "dateAsserted", "conclusion", "valueString",
        "description", "birthDate", "gender")},
    **{field: _concepts for field in (
        "code", "category", "clinicalStatus", "verificationStatus", "bodySite", "valueCodeableConcept",
        "medicationCodeableConcept", "conclusionCode", "procedureCode", "reasonCode")},
    **{field: _reference for field in ("subject", "patient", "medicationReference")},
    **{field: _period for field in ("onsetPeriod", "effectivePeriod", "performedPeriod")},
    "valueQuantity": _quantity,
    "valueInteger": _is_number,
    "note": _annotations,
    "dispenseRequest": _dispense_request,
}


def malformed_field(resource: dict[str, Any]) -> str | None:
    """The first field the logic reads whose JSON shape is wrong, or None when the resource is usable. Typed
    ``dict`` (parsed JSON always is), like ``FIELD_CHECKS``: the compiled build then reads them with dict calls,
    not generic method calls (800 a typical call)."""
    if not isinstance(resource.get("resourceType"), str):
        return "resourceType"
    for field, value in resource.items():  # a resource has few members; the table has many
        check = FIELD_CHECKS.get(field)
        if check is None or (isinstance(value, str) if check is _is_string else check(value)):
            continue
        return field
    contained = resource.get("contained")
    if contained is not None:
        if not isinstance(contained, list) or not all(isinstance(item, dict) for item in contained):
            return "contained"
        for item in contained:
            inner = malformed_field(item)
            if inner:
                return f"contained.{inner}"
    return None
