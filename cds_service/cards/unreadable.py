"""A card for each spine/VCF draft order that could not be read: "This order could not be checked: <field>
is not valid FHIR". Without it such an order would get the same empty answer as "not a spine order".

Wording lives in ``cards/text.json`` (``cards.unreadable``); the card cites the ACR criteria list (the
criteria the order could not be checked against). Field paths only, never values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..cds_hooks.response import stable_uuid
from ..cds_hooks.validate import HookRequest
from ..clinical.orders import UnreadableOrder
from .content import CARDS, ORDERS_EXTENSION, criteria_list_source, override_reasons, shorten, topic

TEXT: Mapping[str, Any] = CARDS["cards"]["unreadable"]
_RANK = {"critical": 0, "warning": 1, "info": 2}


def unreadable_cards(request: HookRequest, orders: Sequence[UnreadableOrder]) -> list[dict[str, Any]]:
    return [{
        "uuid": stable_uuid(request.hook_instance, "order-not-checked", order.reference),
        "summary": shorten(TEXT["summary"].format(field=order.field), 139),
        "indicator": TEXT["indicator"],
        "detail": TEXT["text"].format(field=order.field, order=shorten(order.display, 200)),
        "source": {**criteria_list_source(), "topic": topic(TEXT["topic"], TEXT["display"])},
        "overrideReasons": override_reasons(TEXT["override_reasons"]),
        "extension": {ORDERS_EXTENSION: [order.reference]},
    } for order in orders]


def with_unreadable(response: dict[str, Any], request: HookRequest,
                    orders: Sequence[UnreadableOrder]) -> dict[str, Any]:
    """``response`` with the unreadable-order cards added, still ordered critical -> warning -> info."""
    if orders:
        cards = [*response["cards"], *unreadable_cards(request, orders)]
        response["cards"] = sorted(cards, key=lambda c: _RANK[c["indicator"]])
    return response
