"""Escalation alerts: shown whenever their facts hold, never suppressed by a rating or another card.

- ``critical``: neurologic red flag -> immediate spine-surgery consultation, with one suggestion that creates a
  stat draft referral to neurosurgery (Epic: one action per suggestion).
- ``warning``: malignancy with a fracture -> pathologic-fracture pathway; a newly discovered fracture with a
  treatment order -> diagnostic work-up first; retropulsion or a contraindication on an augmentation order.
Each is one card per patient finding, whatever the number of orders.
"""

from __future__ import annotations

from typing import Any

from .actions import referral_action
from .content import CARDS, CardInput, card, card_uuid, citation_line, data_source, fact_line, order_names, topic


def escalation_cards(inp: CardInput) -> list[dict[str, Any]]:
    return [c for c in (_neuro(inp), _malignancy(inp), _new_fracture(inp), _augmentation_safety(inp)) if c]


def _neuro(inp: CardInput) -> dict[str, Any] | None:
    if inp.facts.value("neuro_red_flag") is not True:
        return None
    entry = CARDS["cards"]["neuro-red-flag"]
    detail = "\n\n".join([entry["text"], fact_line(inp.facts, "neuro_red_flag"), citation_line(entry)])
    built = _card(inp, "neuro-red-flag", [], entry, entry["summary"], detail)
    built["suggestions"] = [{"label": entry["suggestion"], "uuid": card_uuid(inp, "neuro-referral", []),
                             "isRecommended": True, "actions": [referral_action(inp)]}]
    built["selectionBehavior"] = "any"
    return built


def _malignancy(inp: CardInput) -> dict[str, Any] | None:
    entry = CARDS["cards"]["malignancy"]
    value = inp.facts.value("malignancy")
    if value not in entry["values"] or inp.facts.value("fracture") is not True:
        return None
    detail = "\n\n".join([entry["text"], _facts(inp, "malignancy", "etiology"), citation_line(entry)])
    return _card(inp, "malignancy", [], entry, entry["summary"].format(value=value), detail)


def _new_fracture(inp: CardInput) -> dict[str, Any] | None:
    entry = CARDS["cards"]["new-fracture-workup"]
    orders = [r.order for r in inp.ratings if r.order.procedure in entry["procedures"]]
    if not orders or inp.facts.value("new_fracture") is not True:
        return None
    detail = "\n\n".join([entry["text"], _facts(inp, "new_fracture", "fracture_onset"), citation_line(entry)])
    return _card(inp, "new-fracture-workup", orders, entry,
                 entry["summary"].format(orders=order_names(orders)), detail)


def _augmentation_safety(inp: CardInput) -> dict[str, Any] | None:
    entry = CARDS["cards"]["augmentation-safety"]
    orders = [r.order for r in inp.ratings if r.order.procedure in entry["procedures"]]
    if not orders:
        return None
    issues = ["retropulsion"] if inp.facts.value("retropulsion") is True else []
    issues += [c for c in inp.facts.value("contraindications") or () if c in entry["issues"]]
    if not issues:
        return None
    described = [entry["issues"][i] for i in issues]
    lines = [entry["text"], "\n".join(f"- {d['label']}: {d['text']}" for d in described),
             _facts(inp, "retropulsion", "contraindications"), citation_line(entry)]
    summary = entry["summary"].format(issues=", ".join(d["label"] for d in described))
    return _card(inp, "augmentation-safety", orders, entry, f"{summary} ({order_names(orders)})", "\n\n".join(lines))


def _facts(inp: CardInput, *names: str) -> str:
    return "\n".join(fact_line(inp.facts, name) for name in names)


def _card(inp: CardInput, kind: str, orders: list[Any], entry: dict[str, Any], summary: str,
          detail: str) -> dict[str, Any]:
    return card(inp, kind, orders, indicator=entry["indicator"], summary=summary, detail=detail,
                topic=topic(entry["topic"], entry["display"]), source=data_source(entry["label"], entry),
                override=entry.get("override_reasons", ()))
