"""Rating cards: one per recognised order with a variant, one per distinct 'no variant' explanation.

A rated order gets its ACR category and score, the matched variant, the facts that decided it (with the FHIR
resources they came from), what was missing or in conflict, the criteria row's comment, medical management
as context, seed evidence where it applies, and what data the EHR could not give. An order that is not
usually appropriate gets one swap suggestion to the best usually-appropriate alternative of the same kind
that the order catalogue can code (one ``update`` action: Epic applies one action per suggestion).
"""

from __future__ import annotations

from typing import Any

from ..clinical.packs import CriteriaPack, Variant
from ..clinical.ratings import Rating
from ..clinical.topic import Topic
from .actions import swap_action
from .content import (
    CARDS,
    CATEGORIES,
    CardInput,
    also_fits_line,
    card,
    card_uuid,
    citation_line,
    criteria_list_source,
    data_used,
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
    return cards + _no_variant(inp) + _unrouted(inp)


def _unrouted(inp: CardInput) -> list[dict[str, Any]]:
    """Orders no topic covers: silent by default; one explanation card while CDS_EXPLAIN_OUT_OF_SCOPE is on."""
    if not inp.unrouted or not inp.explain_out_of_scope:
        return []
    text = CARDS["cards"]["unrouted"]
    return [card(inp, "unrouted", list(inp.unrouted), indicator="info",
                 summary=text["summary"].format(orders=order_names(inp.unrouted)), detail=text["text"],
                 topic=topic(text["topic"], text["display"]),
                 source=criteria_list_source())]


def _variant(inp: CardInput, rating: Rating) -> Variant:
    """The ACR variant the order was rated under: every rating that reaches these cards has one."""
    variant_id = rating.variant.variant
    assert variant_id is not None
    return inp.topic_of(rating).pack.variants[variant_id]


def _rated(inp: CardInput, rating: Rating) -> dict[str, Any]:
    """Opens with the clinical scenario in words, then the deciding findings, what is missing, the citation,
    and the FHIR references last."""
    assert rating.category is not None  # a rated order has its row's category
    order, category = rating.order, CATEGORIES[rating.category]
    text, active = CARDS["cards"]["rating"], inp.topic_of(rating)
    pack = active.pack
    variant = _variant(inp, rating)
    score = f" (ACR {rating.score}/9)" if rating.score is not None else ""
    lines = [f"{scenario_words(active, variant.id)} (ACR variant {variant.number}).", *_deciding(inp, rating)]
    lines += _row_details(rating)
    if rating.comment:
        lines.append(f"Criteria comment: {rating.comment}")
    lines += _context_line(inp, rating) + _evidence(inp, rating)
    if order.recognised_by == "text":
        lines.append(text["text_only"])
    lines += [*missing_data_lines(inp.data), _criteria_line(pack, variant.number, variant.title)]
    lines += data_used(inp.facts, rating.variant.decided_by)
    indicator = category["indicator"]
    summary = _named(order.display, f": {category['display']}{score}")
    built = card(inp, "rating", [order], indicator=indicator, summary=summary,
                 detail="\n\n".join(lines), topic=topic(f"{pack.topic}-{text['topic_suffix']}", text["display"]),
                 source=_pack_source(pack), links=_links(pack),
                 override=text["override_reasons"] if indicator == "warning" else ())
    suggestion = _swap(inp, rating) if rating.category != "usually-appropriate" else None
    suggestion = remove_suggestion(inp, rating) or suggestion
    if suggestion:
        built["suggestions"] = [suggestion]
        built["selectionBehavior"] = "any"
    return built


def _no_criteria(inp: CardInput, rating: Rating) -> dict[str, Any]:
    text = CARDS["cards"]["no-criteria-apply"]
    active = inp.topic_of(rating)
    pack = active.pack
    variant = _variant(inp, rating)
    lines = [text["text"].format(scenario=scenario_words(active, variant.id), number=variant.number)]
    rated = [f"- {row.name}: {CATEGORIES[row.category]['display']}" for row in variant.rows.values()
             if row.category == "usually-appropriate"]
    if rated:
        lines.append("Usually appropriate in this scenario:\n" + "\n".join(rated))
    lines += _deciding(inp, rating) + missing_data_lines(inp.data)
    lines += [_criteria_line(pack, variant.number, variant.title), *data_used(inp.facts, rating.variant.decided_by)]
    return card(inp, "no-criteria-apply", [rating.order], indicator="info",
                summary=text["summary"].format(order=rating.order.display, number=variant.number),
                detail="\n\n".join(lines), topic=topic(f"{pack.topic}-{text['topic_suffix']}", text["display"]),
                source=_pack_source(pack), links=_links(pack))


def _no_variant(inp: CardInput) -> list[dict[str, Any]]:
    """One card per distinct explanation. An order outside the criteria's scope gets no card (only the
    no-criteria-apply rating on the order), unless the service is set to explain it."""
    text = CARDS["cards"]["no-variant"]
    groups: dict[tuple[str, str, tuple[str, ...]], list[Rating]] = {}
    for rating in inp.ratings:
        silent = rating.variant.outcome == "out-of-scope" and not inp.explain_out_of_scope
        if rating.status == "no-variant" and not silent:
            key = (rating.variant.pack, explain(rating.variant, inp.topic_of(rating)), rating.variant.missing)
            groups.setdefault(key, []).append(rating)
    cards = []
    for (_, explanation, missing), ratings in groups.items():
        orders = [r.order for r in ratings]
        pack = inp.topic_of(ratings[0]).pack
        lines = [explanation]
        if missing:
            lines.append(text["document"].format(facts=", ".join(fact_label(name) for name in missing)))
        lines += [*missing_data_lines(inp.data), f"Criteria: [{pack.title}]({pack.url})"]
        summary = inp.topic_of(ratings[0]).text.get("reason_summaries", {}).get(ratings[0].variant.reason,
                                                                              text["summary"])
        cards.append(card(inp, "no-variant", orders, indicator="info",
                          summary=summary.format(orders=order_names(orders)), detail="\n\n".join(lines),
                          topic=topic(f"{pack.topic}-{text['topic_suffix']}", text["display"]),
                          source=_pack_source(pack), links=_links(pack)))
    return cards


def scenario_words(active: Topic, variant_id: str) -> str:
    """The variant as a clinician would say it (the topic's ``variant_words``), else the exact ACR title."""
    words = active.text.get("variant_words", {}).get(active.pack.id, {})
    return words.get(variant_id) or active.pack.variants[variant_id].title


def _deciding(inp: CardInput, rating: Rating) -> list[str]:
    match = rating.variant
    lines = possible_lines(inp, rating)
    if match.decided_by:
        lines.append("**Deciding findings**\n" + "\n".join(fact_line(inp.facts, name) for name in match.decided_by))
    if match.also_fits:
        lines.append(also_fits_line(match) or "")
    conflicts = [fact_label(name) for name in inp.facts.conflicts]
    if conflicts:
        lines.append("Coded data disagree on: " + ", ".join(conflicts) + ".")
    return lines


def _criteria_line(pack: CriteriaPack, number: int, title: str) -> str:
    return f"Criteria: [{pack.title}]({pack.url}), variant {number}: {title}"


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
    row = _variant(inp, rating).rows.get(text["context_procedure"])
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


def _pack_source(pack: CriteriaPack) -> dict[str, str]:
    return {"label": pack.title, "url": pack.url}


def _links(pack: CriteriaPack) -> list[dict[str, str]]:
    return [{"label": "ACR Appropriateness Criteria: narrative and ratings", "url": pack.url, "type": "absolute"}]
