"""Cards of the back-pain topics' two honest answers: "an unknown fact decides" and "remove this order".

Undecided (``Rating.status == "undecided"``, see ``clinical/variants.settle_for_order``): the possible variants
rate the order differently, so no rating is given or written onto the order. One card per order says what
would decide it and what each answer gives, in the topic's words (``variant_if`` in its cards.json), the
variant that applies if the unknown facts turn out absent last ("Otherwise": the variant that fits next, or a
last candidate that ``variant_if.otherwise`` marks as the complement of the others). When all possible variants rate the
order alike, the rating card names them (``possible_lines``).

Remove: a usually-not-appropriate order in the variants a topic lists under ``remove`` (LBP 1-2, TBP 1: no
red flags, imaging adds nothing) gets one suggestion, a CDS Hooks ``delete`` of the draft order, with the
ACR's reason in one line.
"""

from __future__ import annotations

from typing import Any

from ..clinical.ratings import Rating
from .content import CARDS, CATEGORIES, CardInput, card, card_uuid, fact_label, missing_data_lines, topic


def undecided_cards(inp: CardInput) -> list[dict[str, Any]]:
    return [_undecided(inp, r) for r in inp.ratings if r.status == "undecided"]


def _undecided(inp: CardInput, rating: Rating) -> dict[str, Any]:
    text = CARDS["cards"]["undecided"]
    active = inp.topic_of(rating)
    pack, match, order = active.pack, rating.variant, rating.order
    wording = active.text.get("variant_if", {})
    lines = [text["text"]]
    answers = []
    # The variant that applies when the blocked ones do not: the one that fits next, else a last candidate the
    # topic marks as the complement of the others (LBP V2 is "not V3"), else none.
    otherwise = match.next_fit or (match.possible[-1] if match.possible[-1] in wording.get("otherwise", ()) else None)
    for vid in match.possible:
        row = pack.variants[vid].row_for(order.procedure, order.region)
        answer = (f"{CATEGORIES[row.category]['display']} ({row.score})" if row and row.score is not None
                  else CATEGORIES[row.category]["display"] if row else text["not_rated"])
        number = pack.variants[vid].number
        named = text["otherwise"] if vid == otherwise else wording.get(vid)  # else the lead names the variant
        lead = named or text["if_variant"].format(number=number)
        answers.append(f"- {lead}: {answer}" + (f" (ACR variant {number})." if named else "."))
    if not otherwise:
        answers.append(f"- {text['otherwise']}: {text['no_variant']}")
    lines.append("\n".join(answers))
    if match.missing:
        lines.append(text["decides"] + " " + ", ".join(fact_label(n) for n in match.missing) + ".")
    lines += [*missing_data_lines(inp.data), f"Criteria: {pack.citation} <{pack.url}>"]
    return card(inp, "undecided", [order], indicator="info",
                summary=text["summary"].format(order=order.display), detail="\n\n".join(lines),
                topic=topic(f"{pack.topic}-{text['topic_suffix']}", text["display"]),
                source={"label": pack.title, "url": pack.url})


def possible_lines(inp: CardInput, rating: Rating) -> list[str]:
    """The rating card's note that several variants were possible and all rate the order alike."""
    possible = rating.variant.possible
    if not possible:
        return []
    pack = inp.topic_of(rating).pack
    numbers = ", ".join(str(pack.variants[v].number) for v in possible)
    return [CARDS["cards"]["undecided"]["all_agree"].format(variants=numbers)]


def remove_suggestion(inp: CardInput, rating: Rating) -> dict[str, Any] | None:
    """A delete of the draft order, for a usually-not-appropriate order in the topic's ``remove`` variants."""
    entry = inp.topic_of(rating).text.get("remove")
    order = rating.order
    if (not entry or rating.category != "usually-not-appropriate" or rating.variant.variant not in entry["variants"]
            or rating.variant.possible):
        return None
    return {"label": entry["label"], "uuid": card_uuid(inp, "remove", [order]), "isRecommended": True,
            "actions": [{"type": "delete", "resourceId": [order.reference],
                         "description": f"Remove {order.display}. {entry['text']}"}]}
