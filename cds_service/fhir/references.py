"""Which patient a FHIR resource is about, read from its ``subject``/``patient`` reference.

Kept apart from ``gather.py`` (which filters every gathered resource with it) to keep that module readable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]+")


def names_patient(resource: Mapping[str, Any]) -> bool:
    return any(isinstance(resource.get(field), dict) for field in ("subject", "patient"))


def other_patient(resource: dict[str, Any], patient_id: str) -> bool:
    """True when the resource is, or points at, a Patient other than the context patient. The usual reference,
    ``Patient/<the context patient>``, is recognised without parsing it (it is most of a call's references)."""
    if resource.get("resourceType") == "Patient":
        return "id" in resource and resource["id"] != patient_id
    own = f"Patient/{patient_id}"
    for field in ("subject", "patient"):
        target = resource.get(field)
        if isinstance(target, dict) and isinstance(target.get("reference"), str) and target["reference"] != own:
            kind, ref_id = reference_type_and_id(target["reference"])
            if kind == "Patient" and ref_id != patient_id:
                return True
    return False


def reference_type_and_id(reference: str) -> tuple[str | None, str | None]:
    """``Patient/abc``, ``https://ehr/api/FHIR/R4/Patient/abc`` and ``.../Patient/abc/_history/2`` -> (Patient, abc).

    Epic sends absolute references where others send relative ones, so references are compared by type
    and id, never as strings. ``urn:uuid:`` and contained (``#x``) references give (None, None).
    """
    parts = [p for p in reference.split("?", 1)[0].split("/") if p]
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or not _TYPE_NAME.fullmatch(parts[-2]):
        return None, None
    return parts[-2], parts[-1]
