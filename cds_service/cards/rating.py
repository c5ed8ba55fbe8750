"""Rating cards: one per recognised order with a variant, one per distinct 'no variant' explanation.

A rated order gets its ACR category and score, the matched variant, the facts that decided it (with the FHIR
resources they came from), what was missing or in conflict, the criteria row's comment, medical management
as context, seed evidence where it applies, and what data the EHR could not give. An order that is not
usually appropriate gets one swap suggestion to the best usually-appropriate alternative of the same kind
that the order catalogue can code (one ``update`` action: Epic applies one action per suggestion).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..clinical.packs import CriteriaPack
from ..clinical.ratings import Rating
from .actions import consult_id, swap_action
from .content import (
    CARDS,
    CATEGORIES,
    CardInput,
    also_fits_line,
    card,
    card_uuid,
    citation_line,
    explain,
    fact_label,
    fact_line,
    missing_data_lines,
    order_names,
    shorten,
    topic,
)
from .undecided import possible_lines, remove_suggestion


def rating_cards(inp: CardInput) -> list[dict[str, Any]]:
    cards = [_rated(inp, r) if r.status == "rated" else _no_criteria(inp, r)
             for r in inp.ratings if r.status in ("rated", "no-criteria-apply")]
    return cards + _no_variant(inp)


def _rated(inp: CardInput, rating: Rating) -> dict[str, Any]:
    order, category = rating.order, CATEGORIES[rating.category]
    score = f" (ACR {rating.score}/9)" if rating.score is not None else ""
    text = CARDS["cards"]["rating"]
    pack = inp.topic_of(rating).pack
    variant = pack.variants[rating.variant.variant]
    lines = [f"**{order.display}: {category['display']}{score}**",
             f"ACR variant {variant.number}: {variant.title}"]
    lines += _row_details(rating)
    if rating.comment:
        lines.append(f"Criteria comment: {rating.comment}")
    lines += _context_line(inp, rating) + _evidence(inp, rating) + _why(inp, rating)
    if order.recognised_by == "text":
        lines.append(text["text_only"])
    else:
        lines.append(f"PAMA consultation id written on the order: {consult_id(inp.request, order)}")
    lines += missing_data_lines(inp.data) + _sources(inp, rating)
    built = card(inp, "rating", [order], indicator=category["indicator"],
                 summary=_named(order.display, f": {category['display']}{score}"), detail="\n\n".join(lines),
                 topic=topic(f"{pack.topic}-{text['topic_suffix']}", text["display"]),
                 source=_pack_source(pack), links=_links(pack),
                 override=text["override_reasons"] if category["indicator"] == "warning" else ())
    suggestion = _swap(inp, rating) if rating.category != "usually-appropriate" else None
    suggestion = remove_suggestion(inp, rating) or suggestion
    if suggestion:
        built["suggestions"] = [suggestion]
        built["selectionBehavior"] = "any"
    return built


def _no_criteria(inp: CardInput, rating: Rating) -> dict[str, Any]:
    text = CARDS["cards"]["no-criteria-apply"]
    pack = inp.topic_of(rating).pack
    variant = pack.variants[rating.variant.variant]
    lines = [text["text"].format(number=variant.number, title=variant.title)]
    rated = [f"- {row.name}: {CATEGORIES[row.category]['display']}" for row in variant.rows.values()
             if row.category == "usually-appropriate"]
    if rated:
        lines.append("Usually appropriate in this variant:\n" + "\n".join(rated))
    lines += _why(inp, rating) + missing_data_lines(inp.data) + _sources(inp, rating)
    return card(inp, "no-criteria-apply", [rating.order], indicator="info",
                summary=text["summary"].format(order=rating.order.display, number=variant.number),
                detail="\n\n".join(lines), topic=topic(f"{pack.topic}-{text['topic_suffix']}", text["display"]),
                source=_pack_source(pack), links=_links(pack))


def _no_variant(inp: CardInput) -> list[dict[str, Any]]:
    """One card per distinct explanation: several orders without a variant share a finding."""
    text = CARDS["cards"]["no-variant"]
    groups: dict[tuple[str, str, tuple[str, ...]], list[Rating]] = {}
    for rating in inp.ratings:
        if rating.status == "no-variant":
            key = (rating.variant.pack, explain(rating.variant, inp.topic_of(rating)), rating.variant.missing)
            groups.setdefault(key, []).append(rating)
    cards = []
    for (_, explanation, missing), ratings in groups.items():
        orders = [r.order for r in ratings]
        pack = inp.topic_of(ratings[0]).pack
        lines = [text["text"], f"Why: {explanation}"]
        if missing:
            lines.append("Facts that were needed but not found in the record:\n"
                         + "\n".join(f"- {fact_label(name)}" for name in missing))
        lines += [*missing_data_lines(inp.data), f"Criteria: {pack.citation}"]
        cards.append(card(inp, "no-variant", orders, indicator="info",
                          summary=text["summary"].format(orders=order_names(orders)), detail="\n\n".join(lines),
                          topic=topic(f"{pack.topic}-{text['topic_suffix']}", text["display"]),
                          source=_pack_source(pack), links=_links(pack)))
    return cards


def _swap(inp: CardInput, rating: Rating) -> dict[str, Any] | None:
    """The best alternative (clinical/ratings.py lists them best first) that the catalogue can code, as one update."""
    order = rating.order
    for alt in rating.alternatives:
        coding = inp.catalogue.preferred_code(alt["procedure"], order.region)
        if coding:
            return {"label": f"Order {coding['display']} instead", "uuid": card_uuid(inp, "swap", [order]),
                    "isRecommended": True, "actions": [swap_action(inp, rating, alt, coding)]}
    return None


def _named(name: str, rest: str) -> str:
    """Cut a long order name, never the rating after it."""
    return shorten(name, 139 - len(rest)) + rest


def _row_details(rating: Rating) -> list[str]:
    parts = [f"strength of evidence: {rating.strength_of_evidence}" if rating.strength_of_evidence else "",
             f"relative radiation level: {rating.radiation_level}" if rating.radiation_level else ""]
    shown = "; ".join(p for p in parts if p)
    return [shown[0].upper() + shown[1:] + "."] if shown else []


def _context_line(inp: CardInput, rating: Rating) -> list[str]:
    """Medical management is rated in treatment variants; it is shown as context and is never an order."""
    text = CARDS["cards"]["rating"]
    row = inp.topic_of(rating).pack.variants[rating.variant.variant].rows.get(text["context_procedure"])
    if row is None or rating.order.procedure == row.procedure:
        return []
    score = f"{row.score}/9" if row.score is not None else "no score"
    return [text["context_text"].format(category=CATEGORIES[row.category]["display"], score=score)]


def _evidence(inp: CardInput, rating: Rating) -> list[str]:
    """Seed evidence for augmentation, chosen by whether the fracture causes symptoms."""
    entries = inp.topic_of(rating).text.get("evidence", {}).get(rating.order.procedure)
    if not entries:
        return []
    symptomatic = inp.facts.value("symptomatic")
    keys = {True: ["symptomatic"], False: ["radiographic-only"]}.get(symptomatic, ["symptomatic", "radiographic-only"])
    chosen = [entries[k] for k in keys if k in entries] + [v for k, v in entries.items()
                                                             if k not in ("symptomatic", "radiographic-only")]
    return ["**Evidence**\n" + "\n".join(f"- {e['text']} {citation_line(e)}" for e in chosen)]


def _why(inp: CardInput, rating: Rating) -> list[str]:
    match, lines = rating.variant, []
    lines.append(f"Why this variant: {explain(match, inp.topic_of(rating))}")
    lines += possible_lines(inp, rating)
    if match.decided_by:
        lines.append("Decided by:\n" + "\n".join(fact_line(inp.facts, name) for name in match.decided_by))
    if match.missing:
        lines.append("Not found in the record: " + ", ".join(fact_label(name) for name in match.missing) + ".")
    conflicts = [also_fits_line(match)] if match.also_fits else []
    conflicts += [f"coded data disagree on {fact_label(name)}" for name in inp.facts.conflicts]
    if conflicts:
        lines.append("Conflicts: " + "; ".join(conflicts) + ".")
    return lines


def _sources(inp: CardInput, rating: Rating) -> list[str]:
    pack = inp.topic_of(rating).pack
    lines = [f"Criteria: {pack.citation} <{pack.url}>"]
    row: Mapping[str, Any] | None = rating.source
    if row and row.get("citation"):
        lines.append(f"Rating source: {row['citation']}" + (f" <{row['url']}>" if row.get("url") else ""))
    return lines


def _pack_source(pack: CriteriaPack) -> dict[str, str]:
    return {"label": pack.title, "url": pack.url}


def _links(pack: CriteriaPack) -> list[dict[str, str]]:
    return [{"label": "ACR Appropriateness Criteria: narrative and ratings", "url": pack.url, "type": "absolute"}]
