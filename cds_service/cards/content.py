"""Shared pieces of every card: the card data of the topic, the inputs, and the card skeleton.

The shared wording, codes and URLs live in ``cards/text.json``; each topic's own wording (escalations, reasons
a case is outside its criteria, evidence) in its folder's ``cards.json`` and ``beyond.json`` (each clinical
entry with source + status). Reasons arrive as data (``VariantMatch``) and are put into words here.
Every card gets a ``uuid`` from ``response.stable_uuid(hookInstance, kind, order references...)``, so feedback
ties back to the finding, and a static ``source.topic.code`` so that Epic can remember user overrides per kind
of card.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..cds_hooks.response import stable_uuid
from ..cds_hooks.validate import HookRequest
from ..clinical.conditions import Subject, holds
from ..clinical.facts import ClinicalFacts
from ..clinical.orders import DraftOrder, OrderCatalogue
from ..clinical.ratings import Rating
from ..clinical.topic import Topic
from ..clinical.variants import VariantMatch
from ..datafiles import read_checked
from ..fhir.patient_data import PatientData

CARDS: Mapping[str, Any] = read_checked("cards/text.json", "clinical/schemas/card-text.schema.json")  # every topic
URLS: Mapping[str, str] = CARDS["urls"]
CATEGORIES: Mapping[str, Mapping[str, str]] = CARDS["categories"]
Entry = Mapping[str, Any]  # one card kind's wording in a topic's cards.json
Builder = Callable[["CardInput", Topic, Entry], dict[str, Any] | None]
ORDERS_EXTENSION = "org.example.spine-order-cds.orders"  # card.extension key: references of the orders concerned


@dataclass(frozen=True)
class CardInput:
    """Everything the card builders read; one per hook call."""

    request: HookRequest
    data: PatientData
    facts: ClinicalFacts
    ratings: tuple[Rating, ...]
    topics: tuple[Topic, ...]  # the active topics, router order
    catalogue: OrderCatalogue  # preferred_code(procedure, region) for suggestions
    unrouted: tuple[DraftOrder, ...] = ()  # recognised orders no active topic covers: no criteria apply
    explain_out_of_scope: bool = False  # CDS_EXPLAIN_OUT_OF_SCOPE: a card saying why (testing), default silence

    def topic_of(self, rating: Rating) -> Topic:
        """The topic whose pack rated this order."""
        return next(t for t in self.topics if t.pack.id == rating.variant.pack)


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


def criteria_list_source() -> dict[str, str]:
    """Card source for a card about orders no criteria could be applied to: the ACR criteria list."""
    return dict(CARDS["urls"]["criteria_list"])


def data_source(label: str, entry: Mapping[str, Any]) -> dict[str, str]:
    """Card source for a data entry: its clinician-facing reference (``cite``: ACR, DOI/PubMed, CMS, NASS).

    ``source`` in the data is where we verified the claim (provenance); it never reaches a card."""
    source = {"label": label}
    if entry["cite"].get("url"):
        source["url"] = entry["cite"]["url"]
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
    """'- label: value', 'could not be checked: <what> unavailable', or 'not recorded' when unknown.

    The FHIR references behind the values go to one ``data_used`` line at the end of the card."""
    fact = facts.facts.get(name)
    if fact is None:
        return f"- {fact_label(name)}: {unknown(facts, [name])}"
    line = f"- {fact_label(name)}: {format_value(fact.value)}"
    if fact.confidence == "text":
        line += " (from note text)"
    return line


def unknown(facts: ClinicalFacts, names: Iterable[str]) -> str:
    """How a card says facts are unknown: 'could not be checked (<data> unavailable)' when one of them rests on
    data the EHR could not give (``facts.unchecked``), else 'not recorded' (the data was read and holds nothing):
    missing data is never stated as an absence."""
    lost = dict.fromkeys(key for name in names if (u := facts.unchecked.get(name)) is not None for key in u.keys)
    return f"could not be checked ({data_names(lost)} unavailable)" if lost else "not recorded"


def data_used(facts: ClinicalFacts, names: Iterable[str]) -> list[str]:
    """'Data used: Condition/a, Observation/b' for the facts shown, or nothing."""
    refs = dict.fromkeys(ref for n in names if n in facts.facts for ref in facts.facts[n].sources)
    return [f"Data used: {', '.join(refs)}"] if refs else []


def data_names(keys: Iterable[str]) -> str:
    """Prefetch keys in words ("medication list"), from cards/text.json."""
    return ", ".join(CARDS["data_labels"].get(k, k) for k in keys)


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
    return ["\n".join([CARDS["explanations"]["missing-data"],
                       *(f"- {data_names([m.key])}: {m.reason}" for m in data.missing)])]


def citation_line(entry: Mapping[str, Any]) -> str:
    """The clinician-facing reference of a data entry (its ``cite``), as a markdown link where it has a URL."""
    cite = entry["cite"]
    return f"Reference: [{cite['label']}]({cite['url']})" if cite.get("url") else f"Reference: {cite['label']}"


def declared_cards(inp: CardInput, section: str,
                   builders: Mapping[str, Builder]) -> list[dict[str, Any]]:
    """The cards of ``section`` of every active topic's cards.json whose ``when`` holds, each kind once."""
    cards, drawn = [], set()
    for active in inp.topics:
        for kind, entry in active.text.get(section, {}).items():
            if kind in drawn or not holds(entry["when"], Subject(inp.facts, active.sets)):
                continue
            built = builders[kind](inp, active, entry)
            if built:
                cards.append(built)
                drawn.add(kind)
    return cards


def explain(match: VariantMatch, topic: Topic) -> str:
    """Why no variant applies, in words (the no-variant card): the match's reasons rendered from the card
    texts. A matched variant is told by its scenario words and deciding findings instead (rating.py)."""
    words = CARDS["explanations"]
    facts = ", ".join(f"{fact_label(r.fact)}: {format_value(r.value)}" for r in match.reasons)
    if match.outcome == "insufficient-data" and match.blocked:
        return words["blocked"].format(variants=", ".join(_number(v) for v in match.blocked),
                                       facts=", ".join(fact_label(n) for n in match.missing))
    if match.reason in topic.text["reasons"]:
        return topic.text["reasons"][match.reason].format(kind=match.kind)
    return words[match.reason or "no-variant-fits"].format(kind=match.kind, facts=facts)


def also_fits_line(match: VariantMatch) -> str | None:
    if match.also_fits is None:
        return None
    other, why = match.also_fits
    line = CARDS["explanations"]["also-fits"].format(other=_number(other), winner=_number(match.variant), why=why)
    return line[0].upper() + line[1:] + "."


def _number(variant_id: str | None) -> str:
    return (variant_id or "?").removeprefix("v")
