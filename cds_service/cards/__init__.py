"""Step 8 of the request path: turn ratings, facts and escalations into CDS Hooks cards and systemActions.

Input: the request, recognised orders, patient data (for what was missing), clinical facts, ratings, the
active topics and the order catalogue. Output: ``{"cards": [...], "systemActions": [...]}`` that passes
``response.check_response``. One card per finding, ordered critical -> warning -> info:

- ``escalation``: neurologic red flag (critical), malignancy, new fracture before treatment, augmentation safety;
- ``rating``: one card per rated order (with a swap suggestion when not usually appropriate), no-criteria and
  no-variant cards;
- ``gap``: the osteoporosis-treatment gap;
- ``beyond``: NASS AUC and Medicare coverage documentation, labelled "Beyond the ACR criteria";
- ``actions``: the rating written onto each coded draft order as an ``update`` systemAction.

Pure: no I/O beyond the card data loaded at import, no clock reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..cds_hooks.response import stable_uuid
from ..cds_hooks.validate import HookRequest
from ..clinical.facts import ClinicalFacts
from ..clinical.orders import DraftOrder, OrderCatalogue
from ..clinical.ratings import Rating
from ..clinical.topic import Topic
from ..fhir.patient_data import PatientData
from .actions import consult_id, system_actions
from .beyond import beyond_cards
from .content import CARDS, CardInput, criteria_list_source, shorten, topic
from .escalation import escalation_cards
from .gap import gap_cards
from .rating import rating_cards
from .undecided import undecided_cards

__all__ = ["CardOptions", "build_response", "consult_id", "out_of_time_card"]

_RANK = {"critical": 0, "warning": 1, "info": 2}  # the order clients should show cards in


@dataclass(frozen=True)
class CardOptions:
    mirror_system_actions: bool = True  # also emit extension.systemActions (the CDS Hooks sandbox reads only that)
    explain_out_of_scope: bool = False  # a card saying why an order is outside the criteria (testing only)


def build_response(request: HookRequest, data: PatientData, facts: ClinicalFacts, ratings: Sequence[Rating],
                   topics: Sequence[Topic], catalogue: OrderCatalogue, options: CardOptions,
                   unrouted: Sequence[DraftOrder] = ()) -> dict[str, Any]:
    """The hook response for these ratings and facts, checked by ``response.check_response`` in the pipeline.

    Silence when nothing applies: an order outside every topic's scope (``unrouted``) or outside its topic's
    criteria gets no card, only the no-criteria-apply rating written onto it. Studies that are spine orders
    only in a fracture context (whole-body scans, referrals) get nothing when no topic takes them.
    """
    spine_only = tuple(o for o in unrouted if not o.requires_fracture_context)
    inp = CardInput(request, data, facts, tuple(ratings), tuple(topics), catalogue, spine_only,
                    options.explain_out_of_scope)
    cards = [*escalation_cards(inp), *rating_cards(inp), *undecided_cards(inp), *gap_cards(inp), *beyond_cards(inp)]
    response: dict[str, Any] = {"cards": sorted(cards, key=lambda c: _RANK[c["indicator"]])}
    actions = system_actions(inp)
    if actions:
        response["systemActions"] = actions
        if options.mirror_system_actions:
            response["extension"] = {"systemActions": actions}
    return response


def out_of_time_card(request: HookRequest, orders: Sequence[DraftOrder]) -> dict[str, Any]:
    """Past the whole-call deadline: the orders are named as not checked; nothing is rated or written."""
    text = CARDS["cards"]["out-of-time"]
    names = ", ".join(o.display for o in orders)
    return {"uuid": stable_uuid(request.hook_instance, "out-of-time", *(o.reference for o in orders)),
            "summary": shorten(text["summary"].format(orders=names), 139), "indicator": "warning",
            "detail": text["text"],
            "source": {**criteria_list_source(), "topic": topic(text["topic"], text["display"])}}
