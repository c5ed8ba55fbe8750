"""Step 6 of the request path: map the clinical facts to one ACR variant of the active criteria pack.

Input: ``ClinicalFacts``, the order kind (the 2022 criteria split imaging from treatment variants) and the
criteria pack. Output: ``VariantMatch``. The decision order and every threshold are data with a source.
"No variant" is a valid, explained answer.

Decision (per pack and kind, rules.json): out-of-scope gates first (no current fracture, high-energy
trauma); then the variants in the documented order, malignancy and red-flag variants first. A variant
whose facts are unknown blocks the ones after it: the answer is then "no variant, insufficient data"
with the missing facts, never a guess at a later variant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .facts import ClinicalFacts
from .facts.rules import VCF_RULES, read_criteria_json
from .packs import load_pack


@dataclass(frozen=True)
class VariantMatch:
    pack: str  # e.g. "acr-vcf-2022"
    kind: str  # "imaging" | "treatment"
    variant: str | None  # variant id in the pack, e.g. "v8"; None = no variant applies
    title: str | None
    decided_by: tuple[str, ...]  # fact names that decided it
    missing: tuple[str, ...]  # fact names that were needed but unknown
    conflict: str | None  # another variant that also fit, and the precedence applied
    explanation: str  # why this variant, or why none


@dataclass(frozen=True)
class Requirement:
    """One condition on a fact: its value is in ``allowed``, or (``nonempty``) a non-empty tuple, or benign."""

    fact: str
    allowed: tuple[Any, ...] = ()
    nonempty: bool = False
    benign: bool = False


@dataclass(frozen=True)
class VariantRule:
    id: str
    title: str
    all: tuple[Requirement, ...]
    any: tuple[Requirement, ...]


@dataclass(frozen=True)
class PackRules:
    order: Mapping[str, tuple[str, ...]]  # kind -> variant ids in decision order
    variants: Mapping[str, VariantRule]
    precedence: Mapping[tuple[str, str], str]  # (winner, other) -> why


@dataclass(frozen=True)
class VariantRules:
    packs: Mapping[str, PackRules]
    benign_etiologies: tuple[str, ...]


def load_variant_rules() -> VariantRules:
    """Read the per-pack decision rules from the topic's rules.json; titles come from the pack itself."""
    data = read_criteria_json(VCF_RULES)
    packs: dict[str, PackRules] = {}
    for pack_id, spec in data["packs"].items():
        pack = load_pack(pack_id)
        unknown = set(spec["variants"]) - set(pack.variants)
        if unknown:
            raise ValueError(f"rules.json: {pack_id} has rules for variants it does not define: {sorted(unknown)}")
        variants = {
            vid: VariantRule(vid, pack.variants[vid].title, _requirements(rule.get("all", ())),
                             _requirements(rule.get("any", ())))
            for vid, rule in spec["variants"].items()}
        order = {kind: tuple(ids) for kind, ids in spec["order"].items()}
        unknown = {v for ids in order.values() for v in ids} - set(variants)
        if unknown:
            raise ValueError(f"rules.json: {pack_id} orders unknown variants {sorted(unknown)}")
        precedence = {(p["winner"], p["over"]): p["why"] for p in spec.get("precedence", ())}
        packs[pack_id] = PackRules(order, variants, precedence)
    return VariantRules(packs, tuple(data["benign_etiologies"]["values"]))


def _requirements(items: Any) -> tuple[Requirement, ...]:
    return tuple(Requirement(i["fact"], tuple(i.get("in", ())), bool(i.get("nonempty")), bool(i.get("benign")))
                 for i in items)


def _check(req: Requirement, facts: ClinicalFacts, benign: tuple[str, ...]) -> bool | None:
    """True / False, or None when the fact is unknown (missing or in conflict)."""
    if req.fact not in facts.facts or req.fact in facts.conflicts:
        return None
    value = facts.value(req.fact)
    if req.nonempty:
        return bool(value)
    if req.benign:
        return value in benign
    return value in req.allowed


def _evaluate(rule: VariantRule, facts: ClinicalFacts, benign: tuple[str, ...]) -> tuple[bool | None, list[str]]:
    """The variant's verdict and the facts that are unknown for it."""
    results = [(r, _check(r, facts, benign)) for r in rule.all]
    any_results = [(r, _check(r, facts, benign)) for r in rule.any]
    unknown = [r.fact for r, ok in results + any_results if ok is None]
    if any(ok is False for _, ok in results):
        return False, []
    any_verdict: bool | None = True
    if any_results:
        if any(ok for _, ok in any_results):
            any_verdict = True
        elif all(ok is False for _, ok in any_results):
            return False, []
        else:
            any_verdict = None
    if any_verdict and all(ok for _, ok in results):
        return True, []
    return None, unknown


def _decided_by(rule: VariantRule, facts: ClinicalFacts, benign: tuple[str, ...]) -> tuple[str, ...]:
    names = [r.fact for r in rule.all] + [r.fact for r in rule.any if _check(r, facts, benign)]
    return tuple(dict.fromkeys(names))


def classify_variant(facts: ClinicalFacts, kind: str, pack_id: str, rules: VariantRules) -> VariantMatch:
    """The one variant of ``pack_id`` for this order kind, or None with the reason and the missing facts."""
    pack = rules.packs.get(pack_id)
    if pack is None:
        return _none(pack_id, kind, f"No decision rules for criteria pack {pack_id!r}.")
    if facts.value("fracture") is False:
        return _none(pack_id, kind, "Out of scope: no current vertebral compression fracture in the record "
                     "(active Condition or VCF reason on the order).")
    if facts.value("fracture") is not True:  # unknown: say so, it may be data that could not be read
        return _none(pack_id, kind, "Insufficient data: no current vertebral compression fracture could be "
                     "established (no active fracture Condition or VCF reason on the order in the data available).",
                     missing=("fracture",))
    if facts.value("high_energy_trauma") is True or facts.value("etiology") == "high-energy-trauma":
        return _none(pack_id, kind, "Out of scope: high-energy trauma is not covered by these criteria.")
    order = pack.order.get(kind)
    if not order:
        return _none(pack_id, kind, f"{pack_id} has no {kind} variants.")
    blocked: list[tuple[str, list[str]]] = []
    for position, vid in enumerate(order):
        rule = pack.variants[vid]
        verdict, unknown = _evaluate(rule, facts, rules.benign_etiologies)
        if verdict is None:
            blocked.append((vid, unknown))
        elif verdict and not blocked:
            return VariantMatch(pack_id, kind, vid, rule.title, _decided_by(rule, facts, rules.benign_etiologies),
                                (), _conflict(pack, vid, order[position + 1:], facts, rules),
                                f"{vid} fits: " + ", ".join(
                                    f"{n}={_show(facts.value(n))}"
                                    for n in _decided_by(rule, facts, rules.benign_etiologies)) + ".")
        elif verdict:
            break
    if blocked:
        missing = tuple(dict.fromkeys(f for _, unknown in blocked for f in unknown))
        variants = ", ".join(v for v, _ in blocked)
        return _none(pack_id, kind, f"Insufficient data to decide between {variants}: unknown "
                     f"{', '.join(missing)}.", missing=missing)
    return _none(pack_id, kind, _why_none(facts, kind))


def _conflict(pack: PackRules, winner: str, later: tuple[str, ...], facts: ClinicalFacts,
              rules: VariantRules) -> str | None:
    for other in later:
        verdict, _ = _evaluate(pack.variants[other], facts, rules.benign_etiologies)
        if verdict:
            why = pack.precedence.get((winner, other), "earlier in the documented decision order")
            return f"{other} also fits; {winner} takes precedence: {why}"
    return None


def _why_none(facts: ClinicalFacts, kind: str) -> str:
    if facts.value("neuro_red_flag") is True:
        return ("Neurologic red flag: the benign-fracture variants are excluded; no variant of this pack "
                f"covers this {kind} question. Escalate for urgent surgical evaluation.")
    described = ", ".join(f"{n}={_show(facts.value(n))}" for n in
                          ("malignancy", "etiology", "symptomatic", "new_fracture") if n in facts.facts)
    return f"No {kind} variant fits this picture ({described})."


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "+".join(value) or "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _none(pack_id: str, kind: str, explanation: str, missing: tuple[str, ...] = ()) -> VariantMatch:
    return VariantMatch(pack_id, kind, None, None, (), missing, None, explanation)
