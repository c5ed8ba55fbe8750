"""Shared pieces of every card: the card data of the topic, the inputs, and the card skeleton.

The wording, codes and URLs live in ``clinical/topics/vcf/cards.json`` and ``beyond.json`` (each clinical entry
with source + status), loaded once at import like the criteria packs. Every card gets a ``uuid`` from
``response.stable_uuid(hookInstance, kind, order references...)``, so feedback ties back to the finding, and a
static ``source.topic.code`` so that Epic can remember user overrides per kind of card.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..cds_hooks.response import stable_uuid
from ..cds_hooks.validate import HookRequest
from ..clinical.facts import ClinicalFacts
from ..clinical.orders import DraftOrder, OrderCatalogue
from ..clinical.packs import CriteriaPack
from ..clinical.ratings import Rating
from ..datafiles import read_json
from ..fhir.patient_data import PatientData

CARDS: Mapping[str, Any] = read_json("clinical/topics/vcf/cards.json")
BEYOND: Mapping[str, Any] = read_json("clinical/topics/vcf/beyond.json")
URLS: Mapping[str, str] = CARDS["urls"]
CATEGORIES: Mapping[str, Mapping[str, str]] = CARDS["categories"]
ORDERS_EXTENSION = "org.example.spine-order-cds.orders"  # card.extension key: references of the orders concerned


@dataclass(frozen=True)
class CardInput:
    """Everything the card builders read; one per hook call."""

    request: HookRequest
    data: PatientData
    facts: ClinicalFacts
    ratings: tuple[Rating, ...]
    pack: CriteriaPack
    catalogue: OrderCatalogue  # preferred_code(procedure, region) for suggestions


def card(inp: CardInput, kind: str, orders: Sequence[DraftOrder], *, indicator: str, summary: str,
         detail: str, topic: Mapping[str, str], source: Mapping[str, str], override: Iterable[str] = (),
         links: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    """A CDS Hooks card; ``kind`` plus the order references make its uuid stable within the hook call."""
    built: dict[str, Any] = {
        "uuid": card_uuid(inp, kind, orders),
        "summary": shorten(summary, 139),
        "indicator": indicator,
        "detail": detail,
        "source": {**source, "topic": dict(topic)},
    }
    reasons = override_reasons(override)
    if reasons:
        built["overrideReasons"] = reasons
    if links:
        built["links"] = [dict(link) for link in links]
    if orders:  # lets the audit (and any client) tie the card to the draft orders it is about
        built["extension"] = {ORDERS_EXTENSION: [o.reference for o in orders]}
    return built


def card_uuid(inp: CardInput, kind: str, orders: Sequence[DraftOrder], *extra: str) -> str:
    return stable_uuid(inp.request.hook_instance, kind, *(o.reference for o in orders), *extra)


def topic(code: str, display: str) -> dict[str, str]:
    return {"system": URLS["topic_system"], "code": code, "display": display}


def data_source(label: str, entry: Mapping[str, Any]) -> dict[str, str]:
    """Card source for a data entry: its citation as label context and its URL, when it has one."""
    source = {"label": label}
    if entry["source"].get("url"):
        source["url"] = entry["source"]["url"]
    return source


def override_reasons(codes: Iterable[str]) -> list[dict[str, str]]:
    table = CARDS["override_reasons"]["reasons"]
    return [{"system": URLS["override_reason_system"], "code": code, "display": table[code]} for code in codes]


def shorten(text: str, limit: int) -> str:
    """Summaries must stay under 140 characters; long order names are cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def order_names(orders: Sequence[DraftOrder]) -> str:
    return ", ".join(o.display for o in orders)


def fact_label(name: str) -> str:
    return CARDS["fact_labels"].get(name, name.replace("_", " "))


def fact_line(facts: ClinicalFacts, name: str) -> str:
    """'- label: value (from Condition/a, Observation/b)', or 'unknown' when the fact is missing."""
    fact = facts.facts.get(name)
    if fact is None:
        return f"- {fact_label(name)}: unknown"
    line = f"- {fact_label(name)}: {format_value(fact.value)}"
    if fact.sources:
        line += f" (from {', '.join(fact.sources)})"
    if fact.confidence == "text":
        line += " [matched on text only]"
    return line


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) if value else "none"
    return str(value)


def missing_data_lines(data: PatientData) -> list[str]:
    """What the EHR could not give us, said plainly on every rating card (one markdown block, or none)."""
    if not data.missing:
        return []
    return ["\n".join(["**Data not available** (the rating may change once it is):",
                       *(f"- {m.key}: {m.reason}" for m in data.missing)])]


def citation_line(entry: Mapping[str, Any]) -> str:
    source = entry["source"]
    url = f" <{source['url']}>" if source.get("url") else ""
    return f"Source: {source['citation']}{url} (status: {entry['status']})."
