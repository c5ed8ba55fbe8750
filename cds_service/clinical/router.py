"""Step 6 of the request path: for each recognised draft order, the ACR topic whose scope fits it.

Input: the draft order, the clinical facts and the active topics in router order (each topic's rank in its
topic.json, with the reason for it). Output: ``Route`` per order: the first topic whose scope condition
holds for this order and patient, or none. An order no topic takes is not rated (no criteria apply to it).
A topic whose scope is left open by a fact that could not be checked (its data was not obtained) ends the search
there: that topic may be the one that applies, so the order is neither given to a later topic nor recorded as
"no criteria apply" (``Route.open_scope``; the order then gets the insufficient-data answer).
Why each topic has its rank is written in its topic.json (``precedence.why``), for reviewers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .conditions import Subject, check
from .facts import ClinicalFacts
from .orders import DraftOrder
from .topic import Topic


@dataclass(frozen=True)
class Route:
    order: DraftOrder
    topic: Topic | None  # None: no active topic covers this order for this patient (no criteria apply)
    open_scope: tuple[str, ...] = ()  # facts not checked that leave ``topic``'s scope open (see the docstring)


def route_order(order: DraftOrder, facts: ClinicalFacts, topics: Sequence[Topic]) -> Route:
    """The first topic (lowest rank) that rates the order's procedure and whose scope holds, or whose scope a
    fact that could not be checked leaves open."""
    for topic in topics:
        if not _rates(topic, order):
            continue
        if topic.scope is None:
            return Route(order, topic)
        outcome = check(topic.scope, Subject(facts, topic.sets, order))
        if outcome.verdict:
            return Route(order, topic)
        unchecked = tuple(name for name in outcome.unknown if name in facts.unchecked)
        if outcome.verdict is None and unchecked:
            return Route(order, topic, unchecked)
    return Route(order, None)


def _rates(topic: Topic, order: DraftOrder) -> bool:
    """The topic's pack rates this procedure (for the order's region, where its rows name one) in a variant."""
    return any(variant.row_for(order.procedure, order.region) for variant in topic.pack.variants.values())
