"""Step 6 of the request path: map the clinical facts to one ACR variant of the active criteria pack.

Input: ``ClinicalFacts``, the order kind (the 2022 criteria split imaging from treatment variants) and the
criteria pack. Output: ``VariantMatch``. The decision order and every threshold are data with a source.
"No variant" is a valid, explained answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VariantMatch:
    pack: str  # e.g. "acr-vcf-2022"
    kind: str  # "imaging" | "treatment"
    variant: str | None  # variant id in the pack, e.g. "v8"; None = no variant applies
    title: str | None
    decided_by: tuple[str, ...]  # fact names that decided it
    missing: tuple[str, ...]  # fact names that were needed but unknown
    conflict: str | None  # another variant that also fit, and the precedence applied
    explanation: str  # why this variant, or why none


def classify_variant(*args: Any, **kwargs: Any) -> VariantMatch:
    raise NotImplementedError
