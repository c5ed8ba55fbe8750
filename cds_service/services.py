"""What one running service holds: the engine (loaded data + FHIR fetcher), store, authenticator, metrics.

Built once per process by ``create_app``; web.py reaches it through ``current_app.extensions["cds"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cards import CardOptions, consult_id
from .cards.content import ORDERS_EXTENSION
from .cds_hooks.authenticate import build_authenticator
from .cds_hooks.errors import CdsError
from .cds_hooks.hook_definitions import load_hook_definitions
from .cds_hooks.validate import Limits
from .clinical.facts import load_fact_rules
from .clinical.orders import load_order_catalogue
from .clinical.ratings import Rating
from .clinical.topic import load_topics
from .fhir.client import FhirFetcher
from .ops import metrics as metrics_module
from .ops.audit import AuditQueue
from .ops.logs import configure_logging
from .ops.metrics import Metrics
from .ops.store import FeedbackConflict, Store
from .pipeline import Engine, HookOutcome
from .settings import Settings

if TYPE_CHECKING:
    from .cds_hooks.tokens import Authenticator  # loaded only with trusted issuers (authenticate.py)

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    store: Store
    authenticator: Authenticator | None
    metrics: Metrics
    audit: AuditQueue  # writes the store's audit rows in batches (ops/audit.py says what a kill -9 loses)

    def record(self, outcome: HookOutcome) -> None:
        """After a hook call: audit each rating with the cards shown for it, and count what happened."""
        service_id = outcome.request.service_id
        cards = outcome.response.get("cards", [])
        for card in cards:
            self.metrics.observe_card(service_id, card.get("indicator"))
        for rating in outcome.ratings:
            self.metrics.observe_rating(service_id, rating.status, rating.category)
        if outcome.data is not None:
            self.metrics.observe_prefetch(service_id, dict(outcome.data.origin))
        if outcome.ratings:  # written in a batch shortly after; a failed write is logged and counted there
            self.audit.add(audit_rows(outcome))

    def save_feedback(self, service_id: str, items: Sequence[Mapping[str, Any]]) -> int:
        try:
            stored = self.store.save_feedback(service_id, items)
        except FeedbackConflict as exc:
            raise CdsError(f"{exc}; nothing of this post was stored", status=409, field="feedback",
                           code="conflict") from exc
        self.metrics.observe_feedback(service_id, (item.get("outcome") for item in items), stored)
        return stored

    def close(self) -> None:
        """Release the FHIR fetcher's threads and connections; write the pending audit rows; close the pool."""
        self.engine.fetcher.close()
        self.audit.close()
        self.store.close()

    def readiness(self) -> dict[str, bool]:
        return {"criteria": all(t.pack.variants for t in self.engine.topics), "database": self.store.ping()}


def _card_kind(card: Mapping[str, Any]) -> Any:
    """The card's topic code (the service's own vocabulary, e.g. ``acr-vcf-2022-rating``), else its indicator."""
    return (card.get("source") or {}).get("topic", {}).get("code") or card.get("indicator")


def _shown_with(rating: Rating, cards: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Cards about this rating's order (they list it under ``ORDERS_EXTENSION``) and cards about no order
    in particular (e.g. a treatment gap), which were shown alongside every rating of the call."""
    shown = []
    for card in cards:
        orders = (card.get("extension") or {}).get(ORDERS_EXTENSION)
        if orders is None or rating.order.reference in orders:
            shown.append(card)
    return shown


def audit_rows(outcome: HookOutcome) -> list[dict[str, Any]]:
    """One row per (rating, card shown for it); a rating without a card still gets one row. Codes only."""
    request = outcome.request
    cards = [c for c in outcome.response.get("cards", []) if isinstance(c, Mapping)]
    rows = []
    for rating in outcome.ratings:
        code = rating.order.matched_code or {}
        base = {
            "consult_id": consult_id(request, rating.order), "service_id": request.service_id,
            "hook": request.hook, "hook_instance": request.hook_instance, "order_system": code.get("system"),
            "order_code": code.get("code"), "procedure": rating.order.procedure,
            "variant": rating.variant.variant, "rating_status": rating.status,
            "rating_category": rating.category, "rating_score": rating.score, "criteria_pack": rating.variant.pack,
            "card_uuid": None, "card_kind": None,  # a rating shown on no card (out of scope) still gets its row
        }
        rows += [{**base, "card_uuid": c.get("uuid"), "card_kind": _card_kind(c)}
                 for c in _shown_with(rating, cards)] or [base]
    return rows


def build_services(settings: Settings) -> Services:
    configure_logging(settings.log_level)
    definitions = load_hook_definitions(settings.hooks_dir)
    engine = Engine(
        settings=settings,
        definitions=definitions,
        topics=load_topics(settings.criteria, settings.extra_topics_dir),
        catalogue=load_order_catalogue(),
        fact_rules=load_fact_rules(),
        fetcher=FhirFetcher(settings),
        limits=Limits(settings.max_json_depth, settings.max_draft_orders, settings.max_prefetch_resources),
        card_options=CardOptions(mirror_system_actions=settings.mirror_system_actions,
                                 explain_out_of_scope=settings.explain_out_of_scope),
    )
    store = Store(settings.store_url)
    metrics = Metrics(definitions, (key for d in definitions.values() for key in d.prefetch))
    metrics_module.install(metrics)
    return Services(settings=settings, engine=engine, store=store,
                    authenticator=build_authenticator(settings, store.remember_jti), metrics=metrics,
                    audit=AuditQueue(store, metrics.audit_failures.inc))
