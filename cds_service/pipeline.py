"""The request path of one hook call, step by step; no logic of its own.

validate -> recognise orders (none relevant: done, nothing fetched) -> gather FHIR data -> extract facts
-> route each order to a topic -> classify its variant -> rate it -> build cards -> check the response.
Authentication happens before, in web.py, because it needs the HTTP headers and URL.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .cards import CardOptions, build_response, out_of_time_card
from .cards.unreadable import with_unreadable
from .cds_hooks.hook_definitions import HookDefinition
from .cds_hooks.response import check_response
from .cds_hooks.validate import HookRequest, Limits, validate_request
from .clinical.facts import ClinicalFacts, DeadlinePassed, extract_facts
from .clinical.orders import RecognisedOrders, recognise_orders
from .clinical.ratings import Rating, rate_order
from .clinical.router import route_order
from .clinical.topic import Topic
from .clinical.variants import VariantMatch, classify_variant, scope_left_open, settle_for_order
from .fhir.gather import PatientData, gather_fhir_data

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Engine:
    """Everything loaded once at start-up that the steps need (see ``create_app``)."""

    settings: Any
    definitions: Any
    topics: tuple[Topic, ...]  # active ACR topics, router order
    catalogue: Any
    fact_rules: Any
    fetcher: Any
    limits: Limits
    card_options: CardOptions


@dataclass(frozen=True)
class HookOutcome:
    response: dict[str, Any]
    request: HookRequest
    ratings: tuple[Rating, ...] = ()
    data: PatientData | None = None
    facts: ClinicalFacts | None = field(default=None, repr=False)


def run_hook(body: Any, definition: HookDefinition, engine: Engine, now: datetime) -> HookOutcome:
    """One hook call. Past the whole-call deadline (``CDS_CALL_DEADLINE``, checked before each fact rule runs and
    inside the record indexing's long loop) the answer is what is known: one card saying the orders could not
    be checked in time, nothing rated or written, never a 5xx."""
    deadline = time.monotonic() + engine.settings.call_deadline
    request = validate_request(body, definition, engine.limits)
    recognised = recognise_orders(request, engine.catalogue)
    for entry in recognised.skipped:  # noted, never fatal; the reason names fields, never their values
        log.info("draft order skipped", extra={"index": entry.index, "resource_type": entry.resource_type,
                                               "reason": entry.reason})
    if recognised.missing_selections:  # a count only: the client selected orders it did not send
        log.warning("selections not in draftOrders", extra={"count": recognised.missing_selections})
    if not recognised.orders:
        return HookOutcome(with_unreadable({"cards": []}, request, recognised.unreadable), request)
    data = gather_fhir_data(request, definition, engine.fetcher, engine.settings.fhir_budget)
    facts = extract_facts(data, recognised.orders, now, engine.fact_rules,
                          past_deadline=lambda: time.monotonic() > deadline)
    try:  # the facts are computed as the steps read them, so the deadline can pass in any of them
        ratings, response = _rate_and_answer(request, recognised, data, facts, engine)
    except DeadlinePassed as late:
        log.warning("call deadline passed", extra={"step": str(late)})
        response = {"cards": [out_of_time_card(request, recognised.orders)]}
        check_response(response)
        return HookOutcome(response, request, (), data)
    check_response(response)
    return HookOutcome(response, request, tuple(ratings), data, facts)


def _rate_and_answer(request: HookRequest, recognised: RecognisedOrders, data: PatientData, facts: ClinicalFacts,
                     engine: Engine) -> tuple[list[Rating], dict[str, Any]]:
    """Route, classify, rate and build the cards. An order no topic takes is not rated, but the patient's
    escalations are still built: a red flag is never suppressed."""
    routes = [route_order(order, facts, engine.topics) for order in recognised.orders]
    # the variant depends on the topic, the order kind and (where a topic's rules read it) the order's region
    variants: dict[tuple[str, str, str | None, tuple[str, ...]], VariantMatch] = {}
    ratings = []
    for route in routes:
        if route.topic is not None:
            key = (route.topic.id, route.order.kind, route.order.region, route.open_scope)
            if key not in variants:
                variants[key] = (scope_left_open(route.order.kind, route.topic, route.open_scope) if route.open_scope
                                 else classify_variant(facts, route.order.kind, route.topic, route.order))
            match = settle_for_order(variants[key], route.order.procedure, route.order.region, route.topic)
            ratings.append(rate_order(route.order, match, route.topic.pack))
    unrouted = [r.order for r in routes if r.topic is None]
    response = with_unreadable(build_response(request, data, facts, ratings, engine.topics, engine.catalogue,
                                              engine.card_options, unrouted), request, recognised.unreadable)
    return ratings, response
