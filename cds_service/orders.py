"""Step 3 of the request path: recognise the draft orders that are spine imaging or VCF treatment.

Input: the validated ``HookRequest`` (its raw ``draft_entries``) and the order catalogue (data under
``criteria/``). Output: ``RecognisedOrders``. Entries are parsed one at a time with the R4B
ServiceRequest model, because real clients send Bundles without ``type`` and mixed, partly invalid
entries (see shared/external/README.md); an entry that cannot be parsed is skipped and noted, never fatal.
On order-select only the ``selections`` are rated; on order-sign every draft order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .validate import HookRequest

OrderKind = Literal["imaging", "treatment"]


@dataclass(frozen=True)
class DraftOrder:
    """One draft ServiceRequest mapped to a criteria procedure key (e.g. ``mri-spine-without-contrast``)."""

    reference: str  # "ServiceRequest/<id>", exactly as sent
    resource: Mapping[str, Any]  # the ServiceRequest as sent; update actions start from it
    procedure: str  # criteria procedure key, shared by the order catalogue and the criteria packs
    kind: OrderKind
    display: str  # what was ordered, for card text
    recognised_by: Literal["code", "text"]  # text-only orders get a card but no rating written onto them
    matched_code: Mapping[str, str] | None  # {"system", "code", "display"} that matched, if any
    reason_codes: tuple[Mapping[str, Any], ...]  # every Coding under reasonCode (for VCF-reason facts)
    requires_fracture_context: bool  # whole-body studies count only with a fracture fact or VCF reason
    region: str | None = None  # "cervical" | "thoracic" | "lumbar" | ... when the code says


@dataclass(frozen=True)
class SkippedEntry:
    index: int
    resource_type: str | None
    reason: str  # no patient data in it


@dataclass(frozen=True)
class RecognisedOrders:
    orders: tuple[DraftOrder, ...]
    not_relevant: tuple[str, ...]  # references of parsed orders that are not spine/VCF orders
    skipped: tuple[SkippedEntry, ...]


def recognise_orders(request: HookRequest, catalogue: Any) -> RecognisedOrders:
    raise NotImplementedError
