"""The request path of one hook call, step by step; no logic of its own.

validate -> recognise orders (none relevant: done, nothing fetched) -> gather FHIR data -> extract facts
-> classify variant -> rate orders -> build cards -> check the response. Authentication happens before,
in web.py, because it needs the HTTP headers and URL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .cards import CardOptions, build_response
from .cards.unreadable import with_unreadable
from .cds_hooks.hook_definitions import HookDefinition
from .cds_hooks.response import check_response
from .cds_hooks.validate import HookRequest, Limits, validate_request
from .clinical.facts import ClinicalFacts, extract_facts
from .clinical.orders import recognise_orders
from .clinical.ratings import Rating, rate_order
from .clinical.variants import classify_variant
from .fhir.gather import PatientData, gather_fhir_data

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Engine:
    """Everything loaded once at start-up that the steps need (see ``create_app``)."""

    settings: Any
    definitions: Any
    pack: Any
    catalogue: Any
    fact_rules: Any
    variant_rules: Any
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
    request = validate_request(body, definition, engine.limits)
    recognised = recognise_orders(request, engine.catalogue)
    for entry in recognised.skipped:  # noted, never fatal; the reason names fields, never their values
        log.info("draft order skipped", extra={"index": entry.index, "resource_type": entry.resource_type,
                                               "reason": entry.reason})
    if not recognised.orders:
        return HookOutcome(with_unreadable({"cards": []}, request, recognised.unreadable, engine.pack), request)
    data = gather_fhir_data(request, definition, engine.fetcher, engine.settings)
    facts = extract_facts(data, recognised.orders, now, engine.fact_rules)
    has_fracture = bool(facts.value("fracture"))
    # Orders that are VCF orders only with a fracture (whole-body studies, referrals) are not rated without
    # one, but the patient's escalations are still built: a red flag is never suppressed.
    orders = [o for o in recognised.orders if has_fracture or not o.requires_fracture_context]
    ratings = tuple(
        rate_order(order, classify_variant(facts, order.kind, engine.pack.id, engine.variant_rules), engine.pack)
        for order in orders
    )
    response = with_unreadable(build_response(request, data, facts, ratings, engine.pack, engine.catalogue,
                                              engine.card_options), request, recognised.unreadable, engine.pack)
    check_response(response)
    return HookOutcome(response, request, ratings, data, facts)
