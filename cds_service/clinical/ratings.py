"""Step 7 of the request path: rate one draft order in its matched variant.

Input: ``DraftOrder``, ``VariantMatch``, the criteria pack. Output: ``Rating``. A procedure the pack does
not rate for the variant gets status ``no-criteria-apply``: never a borrowed or guessed rating. The
variant must come from the same pack, so a 2018 row can never be used while the 2022 pack is active.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .orders import DraftOrder
from .packs import Category, CriteriaPack, ProcedureRow, Variant
from .variants import VariantMatch

Status = Literal["rated", "no-criteria-apply", "no-variant", "undecided"]


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


def rate_order(order: DraftOrder, variant: VariantMatch, pack: CriteriaPack) -> Rating:
    """Look the order's procedure up in the matched variant; absent means "no criteria apply"."""
    if variant.pack != pack.id:
        raise ValueError(f"variant match is for pack {variant.pack!r}, but the active pack is {pack.id!r}")
    if variant.variant is None:
        status: Status = "undecided" if variant.outcome == "undecided" else "no-variant"
        return Rating(order, variant, status, None, None, None, None, None, None, ())
    criteria = pack.variants.get(variant.variant)
    if criteria is None:
        raise ValueError(f"pack {pack.id!r} has no variant {variant.variant!r}")
    alternatives = _alternatives(criteria, order)
    row = criteria.row_for(order.procedure, order.region)
    if row is None:
        return Rating(order, variant, "no-criteria-apply", None, None, None, None, None, None, alternatives)
    return Rating(
        order=order, variant=variant, status="rated", category=row.category,
        score=row.score, strength_of_evidence=row.strength_of_evidence, radiation_level=row.radiation_level,
        comment=row.comment, source=_source(pack, criteria, row), alternatives=alternatives,
    )


def _alternatives(criteria: Variant, order: DraftOrder) -> tuple[Mapping[str, Any], ...]:
    """Usually-appropriate orderable rows of the order's kind and region, best score first (source order breaks
    ties)."""
    rows = [
        row for row in criteria.regional.values()
        if row.category == "usually-appropriate" and row.orderable and row.kind == order.kind
        and row.procedure != order.procedure and row.region in (None, order.region)
    ]
    rows.sort(key=lambda row: -(row.score or 0))  # stable: 2018 rows (no score) keep the ACR table order
    return tuple(
        {"procedure": row.procedure, "name": row.name, "category": row.category, "score": row.score,
         "disagreement": row.disagreement, "strength_of_evidence": row.strength_of_evidence,
         "radiation_level": row.radiation_level}
        for row in rows
    )


def _source(pack: CriteriaPack, criteria: Variant, row: ProcedureRow) -> dict[str, Any]:
    source = {
        "pack": pack.id, "pack_citation": pack.citation, "pack_url": pack.url,
        "variant": criteria.id, "variant_number": criteria.number, "variant_title": criteria.title,
        "procedure": row.name, "citation": row.source["citation"], "url": row.source["url"], "status": row.status,
    }
    if "corroborated_by" in row.source:
        source["corroborated_by"] = dict(row.source["corroborated_by"])
    return source
