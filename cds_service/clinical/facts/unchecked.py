"""Missing data is unknown, never "no": an absence is stated only where its source was read.

Each fact lists the prefetch keys that feed it (``clinical/shared/fact_sources.json``). When one of them could
not be obtained (its origin is ``missing``: a timeout, a server error, a key that could not be fetched) and
the fact's value is one that means "nothing found" (no red flag, no cancer, no drug on record), the fact is
withheld: it becomes unknown and is listed as unchecked with what was unavailable. Positive findings stand,
except in a fact read from all its keys together (``"absence": "any"``: the latest pain score, the pain trend,
whether the fracture is symptomatic), where what could not be read may supersede whatever was found.
No rating assumes a withheld value (clinical/variants).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...fhir.patient_data import PatientData


@dataclass(frozen=True)
class FactSource:
    keys: tuple[str, ...]
    absence: tuple[Any, ...]  # values that mean "nothing found"
    # The value is read from all the keys together (the latest pain score, a trend over every score): with one
    # of them lost, whatever was found may be superseded by what could not be read, so every value is withheld.
    any_value: bool = False


@dataclass(frozen=True)
class Unchecked:
    fact: str
    keys: tuple[str, ...]  # the feeding keys that could not be obtained
    source: FactSource


def build_fact_sources(data: Mapping[str, Any]) -> Mapping[str, FactSource]:
    return {name: _source(spec) for name, spec in data["facts"].items()}


def _source(spec: Mapping[str, Any]) -> FactSource:
    """One entry of fact_sources.json: ``absence`` lists the 'nothing found' values, or is ``"any"``."""
    every = spec["absence"] == "any"
    return FactSource(tuple(spec["keys"]), () if every else tuple(_frozen(v) for v in spec["absence"]), every)


def lost_keys(data: PatientData) -> frozenset[str]:
    """The prefetch keys that could not be obtained."""
    return frozenset(key for key, origin in data.origin.items() if origin == "missing")


def unchecked_absence(name: str, source: FactSource, lost: frozenset[str],
                      found: Callable[[], Any]) -> Unchecked | None:
    """Whether the fact's 'nothing found' value (any value, for ``any_value``) rests on data that could not be
    obtained. ``found`` gives what the fact's rule found (an object with ``value``, or None); it is asked only
    when a feeding key was lost."""
    missing = tuple(k for k in source.keys if k in lost)
    if not missing:
        return None
    item = found()
    if item is None or source.any_value or _frozen(item.value) in source.absence:
        return Unchecked(name, missing, source)
    return None


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value
