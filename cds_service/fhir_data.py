"""Step 4 of the request path: gather the patient data the clinical logic needs.

Input: the ``HookRequest`` (its prefetch and fhirServer/fhirAuthorization), the service definition's
prefetch templates, and a ``FhirFetcher`` (``fhir_server.py``, the only module that talks HTTP to FHIR).
Output: ``PatientData``. CDS Hooks 2.0 prefetch semantics: a missing key is fetched; ``null`` means the EHR
has no data; a Bundle holding only an OperationOutcome, or a non-resource value, counts as missing.
Raises ``DataUnavailable`` (412) when none of the required data can be obtained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Origin = Literal["prefetch", "fetched", "none", "missing"]


@dataclass(frozen=True)
class MissingData:
    key: str  # prefetch key, e.g. "observations"
    reason: str  # why it could not be obtained; never patient data or tokens


@dataclass(frozen=True)
class PatientData:
    resources: Mapping[str, tuple[Mapping[str, Any], ...]]  # by resourceType, de-duplicated by type/id
    origin: Mapping[str, Origin]  # per prefetch key
    missing: tuple[MissingData, ...]

    def of_type(self, resource_type: str) -> tuple[Mapping[str, Any], ...]:
        return self.resources.get(resource_type, ())


def gather_fhir_data(*args: Any, **kwargs: Any) -> PatientData:
    raise NotImplementedError
