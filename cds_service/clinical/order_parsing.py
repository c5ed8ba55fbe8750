"""Tolerant reading of one draft ServiceRequest: the whole model if it is valid, else only what is needed.

Real EHR feeds send ``authoredOn`` without a timezone, elements this FHIR version does not know, extensions
without ``url``: none of those touch what recognition and rating read (``NEEDED``), so they must not turn a
kyphoplasty order into silence. Notes name fields and error kinds, never the values (they may be patient data).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

NEEDED = ("resourceType", "id", "status", "intent", "subject", "code")  # what recognition and rating read


def parse_tolerantly(resource: Mapping[str, Any]) -> tuple[ServiceRequest | None, str | None, str]:
    """The model of the whole order; else of its needed fields (+ reasonCode if valid), with a note.

    Returns (model or None, note or None, first invalid needed field or "")."""
    try:
        _check_bindings(resource)
        return ServiceRequest.model_validate(resource), None, ""
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        whole = exc
    needed = {k: resource[k] for k in NEEDED if k in resource}
    attempts = [{**needed, "reasonCode": resource["reasonCode"]}] if "reasonCode" in resource else []
    for attempt in [*attempts, needed]:
        try:
            _check_bindings(attempt)
            parsed = ServiceRequest.model_validate(attempt)
        except (ValueError, TypeError) as exc:
            failure = exc
            continue
        dropped = "" if "reasonCode" in attempt or "reasonCode" not in resource else "; reasonCode not used"
        return parsed, f"read tolerantly, other fields ignored: {_invalid_reason(whole)}{dropped}", ""
    return None, _invalid_reason(failure), _first_field(failure)


# R4 ServiceRequest.status and .intent have required bindings; the model checks only that they are strings.
STATUS = frozenset({"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"})
INTENT = frozenset({"proposal", "plan", "directive", "order", "original-order", "reflex-order", "filler-order",
                    "instance-order", "option"})


class BindingError(ValueError):
    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is outside its required value set")
        self.field = field


def _check_bindings(resource: Mapping[str, Any]) -> None:
    for field, allowed in (("status", STATUS), ("intent", INTENT)):
        value = resource.get(field)
        if isinstance(value, str) and value not in allowed:
            raise BindingError(field)


def _first_field(exc: Exception) -> str:
    if isinstance(exc, BindingError):
        return exc.field
    if isinstance(exc, ValidationError) and exc.errors():
        return ".".join(str(p) for p in exc.errors()[0]["loc"]) or "(resource)"
    return "(resource)"



def _invalid_reason(exc: Exception) -> str:
    """Where and what kind of error, never the offending values (they may be patient data)."""
    if isinstance(exc, BindingError):
        return f"invalid ServiceRequest: {exc.field} (not in the required value set)"
    if not isinstance(exc, ValidationError):
        return f"invalid ServiceRequest ({type(exc).__name__})"
    problems = [f"{'.'.join(str(p) for p in e['loc'])} ({e['type']})" for e in exc.errors()[:3]]
    return "invalid ServiceRequest: " + "; ".join(problems)
