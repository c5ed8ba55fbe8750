"""Step 7 of the request path: rate one draft order in its matched variant.

Input: ``DraftOrder``, ``VariantMatch``, the criteria pack. Output: ``Rating``. A procedure the pack does
not rate for the variant gets status ``no-criteria-apply``: never a borrowed or guessed rating.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .orders import DraftOrder
from .variants import VariantMatch

Category = Literal["usually-appropriate", "may-be-appropriate", "usually-not-appropriate"]
Status = Literal["rated", "no-criteria-apply", "no-variant"]


@dataclass(frozen=True)
class Rating:
    order: DraftOrder
    variant: VariantMatch
    status: Status
    category: Category | None
    score: int | None  # ACR 1-9
    strength_of_evidence: str | None
    radiation_level: str | None
    comment: str | None  # the criteria row's narrative comment
    source: Mapping[str, Any] | None  # citation of the row (pack, variant, url, status)
    alternatives: tuple[Mapping[str, Any], ...]  # usually-appropriate rows of the same kind in the variant


def rate_order(*args: Any, **kwargs: Any) -> Rating:
    raise NotImplementedError
