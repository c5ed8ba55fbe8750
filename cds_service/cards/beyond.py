"""'Beyond the ACR criteria': NASS appropriate use criteria and a Medicare coverage documentation check.

Both read the same clinical facts but never change the ACR rating; their cards say so in the label. Rules and
checklist items are data (a topic's ``beyond.json``, conditions in the language of clinical/conditions.py).
A condition on a missing fact is unknown: a NASS rule
shows only when all its conditions are known and met; a coverage item is then unticked and said to be not
recorded, or not checked when the data it needs could not be obtained (``content.unknown``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..clinical.conditions import Subject, holds, leaves
from .content import CardInput, card, citation_line, fact_label, order_names, topic, unknown


def beyond_cards(inp: CardInput) -> list[dict[str, Any]]:
    cards = []
    for active in inp.topics:
        if active.beyond:
            subject = Subject(inp.facts, active.sets)
            cards += [*_nass(inp, active.beyond, subject), *_coverage(inp, active.beyond, subject)]
    return cards


def _nass(inp: CardInput, beyond: Mapping[str, Any], subject: Subject) -> list[dict[str, Any]]:
    section, cards = beyond["nass"], []
    for rule in section["rules"]:
        orders = [r.order for r in inp.ratings if r.order.procedure in rule["procedures"]]
        if not orders or holds(rule["when"], subject) is not True:
            continue
        detail = "\n\n".join([
            f"**{beyond['label']}** (does not change the ACR rating). Orders: {order_names(orders)}.",
            rule["text"], "Facts used: " + ", ".join(fact_label(c["fact"]) for c in leaves(rule["when"])) + ".",
            citation_line(rule)])
        cards.append(card(inp, f"nass-{rule['id']}", orders, indicator="info",
                          summary=f"{beyond['label']}: {rule['summary']}", detail=detail,
                          topic=topic(f"{section['topic']}-{rule['id']}", section["display"]),
                          source={"label": f"{beyond['label']}: {section['display']}", "url": rule["cite"]["url"]}))
    return cards


def _coverage(inp: CardInput, beyond: Mapping[str, Any], subject: Subject) -> list[dict[str, Any]]:
    section = beyond["coverage"]
    orders = [r.order for r in inp.ratings if r.order.procedure in section["procedures"]]
    if not orders:
        return []
    words = section["item_status"]
    results = [(item, holds(item["when"], subject)) for item in section["items"]]
    documented = sum(1 for _, met in results if met is True)
    checklist = "\n".join(
        f"- {'[x]' if met else '[ ]'} {item['label']}: "
        + (unknown(inp.facts, [leaf["fact"] for leaf in leaves(item["when"])]) if met is None
           else words["met" if met else "not_met"])
        for item, met in results)
    detail = "\n\n".join([
        f"**{beyond['label']}** (does not change the ACR rating). Orders: {order_names(orders)}.",
        section["text"], checklist, citation_line(section)])
    summary = section["summary"].format(documented=documented, total=len(results))
    return [card(inp, "coverage-check", orders, indicator="info", summary=f"{beyond['label']}: {summary}",
                 detail=detail, topic=topic(section["topic"], section["display"]),
                 source={"label": f"{beyond['label']}: {section['display']}", "url": section["cite"]["url"]})]
