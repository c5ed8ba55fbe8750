"""'Beyond the ACR criteria': NASS appropriate use criteria and a Medicare coverage documentation check.

Both read the same clinical facts but never change the ACR rating; their cards say so in the label. Rules and
checklist items are data (``clinical/topics/vcf/beyond.json``). A condition on a missing fact is unknown: a NASS rule
shows only when all its conditions are known and met; a coverage item is then listed as missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..clinical.facts import ClinicalFacts
from .content import BEYOND, CardInput, card, citation_line, fact_label, order_names, topic


def beyond_cards(inp: CardInput) -> list[dict[str, Any]]:
    return [*_nass(inp), *_coverage(inp)]


def condition_met(facts: ClinicalFacts, condition: Mapping[str, Any]) -> bool | None:
    """True / False, or None when the fact is not in the record."""
    fact = facts.facts.get(condition["fact"])
    if fact is None or fact.value is None:
        return None
    value = fact.value
    if "in" in condition:
        return value in condition["in"]
    if "is" in condition:
        return value == condition["is"]
    if "min" in condition:
        return value >= condition["min"]
    if "max" in condition:
        return value <= condition["max"]
    return not set(value) & set(condition["none_of"])


def _all_met(facts: ClinicalFacts, conditions: list[Mapping[str, Any]]) -> bool | None:
    results = [condition_met(facts, c) for c in conditions]
    if False in results:
        return False
    return None if None in results else True


def _nass(inp: CardInput) -> list[dict[str, Any]]:
    section, cards = BEYOND["nass"], []
    for rule in section["rules"]:
        orders = [r.order for r in inp.ratings if r.order.procedure in rule["procedures"]]
        if not orders or _all_met(inp.facts, rule["when"]) is not True:
            continue
        detail = "\n\n".join([
            f"**{BEYOND['label']}** (does not change the ACR rating). Orders: {order_names(orders)}.",
            rule["text"], "Facts used: " + ", ".join(fact_label(c["fact"]) for c in rule["when"]) + ".",
            citation_line(rule)])
        cards.append(card(inp, f"nass-{rule['id']}", orders, indicator="info",
                          summary=f"{BEYOND['label']}: {rule['summary']}", detail=detail,
                          topic=topic(f"{section['topic']}-{rule['id']}", section["display"]),
                          source={"label": f"{BEYOND['label']}: {section['display']}", "url": rule["source"]["url"]}))
    return cards


def _coverage(inp: CardInput) -> list[dict[str, Any]]:
    section = BEYOND["coverage"]
    orders = [r.order for r in inp.ratings if r.order.procedure in section["procedures"]]
    if not orders:
        return []
    status = {True: "documented", False: "not documented", None: "missing from the record"}
    results = [(item, _all_met(inp.facts, item["when"])) for item in section["items"]]
    documented = sum(1 for _, met in results if met is True)
    checklist = "\n".join(f"- {'[x]' if met else '[ ]'} {item['label']}: {status[met]}" for item, met in results)
    detail = "\n\n".join([
        f"**{BEYOND['label']}** (does not change the ACR rating). Orders: {order_names(orders)}.",
        section["text"], checklist, citation_line(section)])
    summary = section["summary"].format(documented=documented, total=len(results))
    return [card(inp, "coverage-check", orders, indicator="info", summary=f"{BEYOND['label']}: {summary}",
                 detail=detail, topic=topic(section["topic"], section["display"]),
                 source={"label": f"{BEYOND['label']}: {section['display']}", "url": section["source"]["url"]})]
