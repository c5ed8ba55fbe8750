"""The patient data one hook call gathered: plain, frozen data that clinical code reads.

Kept apart from ``gather.py`` so that facts, variants and cards can import it without pulling in the HTTP
client, its thread pool or the metrics (``tests/unit/test_import_directions.py`` holds that line).
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
