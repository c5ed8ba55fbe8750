"""Step 7 of the request path: map the clinical facts to one ACR variant of the order's topic.

Input: ``ClinicalFacts``, the draft order (its kind: the 2022 VCF criteria split imaging from treatment
variants) and the ``Topic`` the router chose. Output: ``VariantMatch``, with its reasons as data (which
fact had which value, from which resources; which variants were blocked by unknown facts), never prose:
the cards put them into words. The decision is the topic's data (rules.json):

1. gates, in order: a situation the criteria do not cover (out of scope) or cannot be told (insufficient data);
2. the variants of the order's kind in the documented order. A variant whose facts are unknown blocks the
   ones after it: the answer is then "insufficient data" with the missing facts, never a guess at a later
   variant. The first variant that fits wins; a later one that also fits is reported with the precedence.
3. no variant fits: the first ``none`` reason that holds, else the facts listed under ``describe_when_none``.

Honest when one unknown fact decides (packs whose rules say ``"undecided": "compare-ratings"``): blocked
variants are settled per order by ``settle_for_order``. The candidates are the blocked variants and the variant
that fits next; if a later variant fits and every candidate rates the order's procedure the same, the order is
rated under the one that fits, with the candidates named (``possible``); without a variant that fits, the open
ones may all not apply, so the answer stays insufficient data; if they disagree, the outcome is "undecided" and
the cards say what would decide it and what each answer gives, never a rating.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

from .conditions import Outcome, Subject, check, leaves
from .facts import ClinicalFacts
from .topic import Topic

MatchOutcome = Literal["matched", "out-of-scope", "insufficient-data", "no-variant", "undecided"]


class Reason(NamedTuple):
    """One fact behind a decision: its name, its value and the FHIR resources it came from (a named tuple, like
    ``conditions.Outcome``: built for every reason of every call)."""

    fact: str
    value: Any
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class VariantMatch:
    pack: str  # e.g. "acr-vcf-2022"
    kind: str  # "imaging" | "treatment"
    variant: str | None  # variant id in the pack, e.g. "v8"; None = no variant applies
    title: str | None
    outcome: MatchOutcome
    reason: str | None = None  # code of the explanation (a gate's or none-reason's), e.g. "no-current-fracture"
    reasons: tuple[Reason, ...] = ()  # the facts that decided it (or that describe the picture when none fits)
    missing: tuple[str, ...] = ()  # facts that were needed but unknown
    blocked: tuple[str, ...] = ()  # variants that could be neither confirmed nor excluded
    also_fits: tuple[str, str] | None = None  # (another variant that fits, why this one takes precedence)
    next_fit: str | None = None  # blocked: the first later variant that fits (what applies if the blocked ones do not)
    next_reasons: tuple[Reason, ...] = ()  # the facts that make ``next_fit`` fit
    compare: bool = False  # the pack settles blocked variants per order (``settle_for_order``)
    possible: tuple[str, ...] = ()  # settled: every variant the record leaves possible (all rate the order alike)


    @property
    def decided_by(self) -> tuple[str, ...]:
        return tuple(r.fact for r in self.reasons)


def classify_variant(facts: ClinicalFacts, kind: str, topic: Topic, draft: Any = None) -> VariantMatch:
    """The one variant of the topic's active pack for this order kind, or none with the reason as data.

    A fact left unknown because its data could not be obtained (``ClinicalFacts.unchecked``) stays unknown: the
    answer is then insufficient data, or settled per order when every variant it leaves possible rates the order
    alike (``settle_for_order``); a rating is never computed on an assumed value.
    ``draft`` (a DraftOrder) is what ``{"order": ...}`` leaves read, e.g. the region where a topic's variants
    differ by region (acute spinal trauma: cervical vs thoracolumbar); without it they are unknown.
    """
    subject = Subject(facts, topic.sets, draft)
    base: dict[str, Any] = {"pack": topic.pack.id, "kind": kind, "variant": None, "title": None}
    for gate in topic.gates:
        if check(gate.when, subject).verdict:
            missing = tuple(leaf["fact"] for leaf in _known_false(gate.when) if facts.value(leaf["fact"]) is None)
            return VariantMatch(**base, outcome=gate.outcome, reason=gate.reason, missing=missing)
    rules = topic.rules
    order = rules.order.get(kind, ())
    if not order:
        return VariantMatch(**base, outcome="no-variant", reason="no-kind-variants")
    blocked: list[tuple[str, Outcome]] = []
    fallback: tuple[str, Outcome] | None = None
    for position, vid in enumerate(order):
        result = check(rules.variants[vid].when, subject)
        if result.verdict is None:
            blocked.append((vid, result))
        elif result.verdict and not blocked:
            return VariantMatch(topic.pack.id, kind, vid, rules.variants[vid].title, "matched",
                                reasons=_reasons(facts, result), also_fits=_also_fits(topic, vid, order[position + 1:],
                                                                                      subject))
        elif result.verdict:
            fallback = (vid, result)
            break
    if blocked:
        missing = tuple(dict.fromkeys(name for _, r in blocked for name in r.unknown))
        return VariantMatch(**base, outcome="insufficient-data", missing=missing, blocked=tuple(v for v, _ in blocked),
                            next_fit=fallback[0] if fallback else None,
                            next_reasons=_reasons(facts, fallback[1]) if fallback else (),
                            compare=rules.compare_when_blocked)
    for condition, reason in rules.none:
        result = check(condition, subject)
        if result.verdict:
            return VariantMatch(**base, outcome="no-variant", reason=reason, reasons=_reasons(facts, result))
    described = tuple(Reason(n, facts.value(n)) for n in rules.describe_when_none if n in facts.facts)
    return VariantMatch(**base, outcome="no-variant", reason="no-variant-fits", reasons=described)


def scope_left_open(kind: str, topic: Topic, unchecked: tuple[str, ...]) -> VariantMatch:
    """The answer for an order whose topic's scope facts could not be checked (``router.Route.open_scope``):
    insufficient data, naming them; no variant is classified, nothing is rated."""
    return VariantMatch(topic.pack.id, kind, None, None, "insufficient-data", reason="scope-open", missing=unchecked)


def settle_for_order(match: VariantMatch, procedure: str, region: str | None, topic: Topic) -> VariantMatch:
    """For one order: rate under the variant that fits when every candidate rates it alike, else "undecided"."""
    if match.outcome != "insufficient-data" or not match.compare or not match.blocked:
        return match
    candidates = (*match.blocked, *((match.next_fit,) if match.next_fit else ()))
    rows = [topic.pack.variants[v].row_for(procedure, region) for v in candidates]
    ratings = {(row.category, row.score) if row else None for row in rows}
    if len(ratings) == 1 and None not in ratings:
        if match.next_fit is None:  # the open variants may all not apply, and then none does: nothing is sure
            return match
        shown = match.next_fit  # the one that fits
        return replace(match, variant=shown, title=topic.rules.variants[shown].title, outcome="matched",
                       reasons=match.next_reasons, possible=candidates)
    return replace(match, outcome="undecided", possible=candidates)


def _reasons(facts: ClinicalFacts, result: Outcome) -> tuple[Reason, ...]:
    names = dict.fromkeys(leaf["fact"] for leaf in result.met if "fact" in leaf)
    return tuple(Reason(n, facts.value(n), facts.facts[n].sources if n in facts.facts else ()) for n in names)


def _known_false(condition: Any) -> list[Any]:
    """The ``known: false`` leaves of a gate: the facts whose absence the gate reports as missing."""
    return [leaf for leaf in leaves(condition) if leaf.get("known") is False and "fact" in leaf]


def _also_fits(topic: Topic, winner: str, later: tuple[str, ...], subject: Subject) -> tuple[str, str] | None:
    for other in later:
        if check(topic.rules.variants[other].when, subject).verdict:
            return other, topic.rules.precedence.get((winner, other), "earlier in the documented decision order")
    return None


