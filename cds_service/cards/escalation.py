"""Escalation alerts: shown whenever their condition holds, never suppressed by a rating or another card.

Each active topic declares its escalations in its cards.json, each with a ``when`` condition (the language of
clinical/conditions.py); this module holds how each kind is drawn:
- ``neuro-red-flag`` (critical): immediate spine-surgery consultation, with one suggestion that creates a stat
  draft referral to neurosurgery (Epic: one action per suggestion);
- ``malignancy``: a fracture with malignancy -> pathologic-fracture pathway;
- ``new-fracture-workup``: a newly discovered fracture with a treatment order -> diagnostic work-up first;
- ``augmentation-safety``: retropulsion or a contraindication on an augmentation order.
One card per patient finding, whatever the number of orders; a kind two topics declare is drawn once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..clinical.topic import Topic
from .actions import referral_action
from .content import (
    Builder,
    CardInput,
    Entry,
    card,
    card_uuid,
    citation_line,
    data_source,
    data_used,
    declared_cards,
    fact_line,
    order_names,
    topic,
)


def escalation_cards(inp: CardInput) -> list[dict[str, Any]]:
    return declared_cards(inp, "escalations", BUILDERS)


def _neuro(inp: CardInput, active: Topic, entry: Entry) -> dict[str, Any] | None:
    detail = "\n\n".join([entry["text"], _facts(inp, "neuro_red_flag"), citation_line(entry),
                         *data_used(inp.facts, ["neuro_red_flag"])])
    built = _card(inp, "neuro-red-flag", [], entry, entry["summary"], detail)
    built["suggestions"] = [{"label": entry["suggestion"], "uuid": card_uuid(inp, "neuro-referral", []),
                             "isRecommended": True, "actions": [referral_action(inp, active, entry)]}]
    built["selectionBehavior"] = "any"
    return built


def _malignancy(inp: CardInput, _active: Topic, entry: Entry) -> dict[str, Any] | None:
    detail = "\n\n".join([entry["text"], _facts(inp, "malignancy", "etiology"), citation_line(entry),
                         *data_used(inp.facts, ["malignancy", "etiology"])])
    return _card(inp, "malignancy", [], entry, entry["summary"].format(value=inp.facts.value("malignancy")), detail)


def _new_fracture(inp: CardInput, _active: Topic, entry: Entry) -> dict[str, Any] | None:
    orders = [r.order for r in inp.ratings if r.order.procedure in entry["procedures"]]
    if not orders:
        return None
    detail = "\n\n".join([entry["text"], _facts(inp, "new_fracture", "fracture_onset"), citation_line(entry),
                         *data_used(inp.facts, ["new_fracture", "fracture_onset"])])
    return _card(inp, "new-fracture-workup", orders, entry,
                 entry["summary"].format(orders=order_names(orders)), detail)


def _augmentation_safety(inp: CardInput, _active: Topic, entry: Entry) -> dict[str, Any] | None:
    orders = [r.order for r in inp.ratings if r.order.procedure in entry["procedures"]]
    issues = ["retropulsion"] if inp.facts.value("retropulsion") is True else []
    issues += [c for c in inp.facts.value("contraindications") or () if c in entry["issues"]]
    if not orders or not issues:
        return None
    described = [entry["issues"][i] for i in issues]
    lines = [entry["text"], "\n".join(f"- {d['label']}: {d['text']}" for d in described),
             _facts(inp, "retropulsion", "contraindications"), citation_line(entry),
             *data_used(inp.facts, ["retropulsion", "contraindications"])]
    summary = entry["summary"].format(issues=", ".join(d["label"] for d in described))
    return _card(inp, "augmentation-safety", orders, entry, f"{summary} ({order_names(orders)})", "\n\n".join(lines))


def _facts(inp: CardInput, *names: str) -> str:
    return "\n".join(fact_line(inp.facts, name) for name in names)


def _card(inp: CardInput, kind: str, orders: list[Any], entry: Entry, summary: str, detail: str) -> dict[str, Any]:
    return card(inp, kind, orders, indicator=entry["indicator"], summary=summary, detail=detail,
                topic=topic(entry["topic"], entry["display"]), source=data_source(entry["label"], entry),
                override=entry.get("override_reasons", ()))


BUILDERS: Mapping[str, Builder] = {
    "neuro-red-flag": _neuro, "malignancy": _malignancy, "new-fracture-workup": _new_fracture,
    "augmentation-safety": _augmentation_safety,
}
