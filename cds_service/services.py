"""What one running service holds: the engine (loaded data + FHIR fetcher), the store, the authenticator.

Built once per process by ``create_app``; web.py reaches it through ``current_app.extensions["cds"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .cards import CardOptions
from .criteria import load_pack
from .facts import load_fact_rules
from .fhir_server import FhirFetcher
from .hook_definitions import load_hook_definitions
from .orders import load_order_catalogue
from .pipeline import Engine, HookOutcome
from .settings import Settings
from .validate import Limits
from .variants import load_variant_rules


@dataclass
class Services:
    settings: Settings
    engine: Engine
    store: Any
    authenticator: Any

    def record(self, outcome: HookOutcome) -> None:
        """After a hook call: audit the ratings."""

    def readiness(self) -> dict[str, bool]:
        return {"criteria": bool(self.engine.pack.variants)}


def build_services(settings: Settings) -> Services:
    engine = Engine(
        settings=settings,
        definitions=load_hook_definitions(settings.hooks_dir),
        pack=load_pack(settings.criteria),
        catalogue=load_order_catalogue(),
        fact_rules=load_fact_rules(),
        variant_rules=load_variant_rules(),
        fetcher=FhirFetcher(settings),
        limits=Limits(settings.max_json_depth, settings.max_draft_orders, settings.max_prefetch_resources),
        card_options=CardOptions(mirror_system_actions=settings.mirror_system_actions),
    )
    return Services(settings=settings, engine=engine, store=None, authenticator=None)
