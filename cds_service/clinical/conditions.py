"""The one condition language of the clinical data: variant rules, gates, routing, escalations, beyond-ACR checks.

A condition is JSON. A leaf names what it reads and one test:

    {"fact": "malignancy", "in": ["active", "history"]}      value is one of these
    {"fact": "symptomatic", "is": true}                      value equals this
    {"fact": "pain_latest", "min": 4} / {"max": 3}           number at least / at most
    {"fact": "contraindications", "none_of": ["infection"]}  a collection holding none of these
    {"fact": "contraindications", "nonempty": true}          a non-empty collection
    {"fact": "etiology", "in_set": "benign_etiologies"}      value is in a named set of the topic
    {"fact": "fracture", "known": false}                     the fact could (not) be established
    {"order": "requires_fracture_context", "is": false}      a property of the draft order being rated

and ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}`` combine them. Evaluation is three-valued:
True, False, or None when a fact it needs is unknown (absent, ``None``, or in conflict). ``all`` is False as
soon as one part is False, ``any`` is True as soon as one part is True, so an unknown fact only leaves the
answer open when it could change it. ``known`` is the only test that is never unknown. The parts of an ``all``
are read in order up to the first False one, so the facts of the parts after it are never computed (facts are
computed when first read); an ``any`` reads all its parts, since every met part is a reason on the card.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .facts import ClinicalFacts

Condition = Mapping[str, Any]
TESTS = ("in", "is", "min", "max", "none_of", "nonempty", "in_set", "known")
COMBINATORS = ("all", "any", "not")


class Subject(NamedTuple):
    """What a condition reads: the patient's facts, the topic's named sets, and the order being rated. Named
    tuples here and for ``Outcome``: dozens are built a call, and a compiled frozen dataclass is built through
    an interpreted ``__init__`` at about three times the cost (``facts/resources.py`` ``ResourceView``)."""

    facts: ClinicalFacts
    sets: Mapping[str, tuple[Any, ...]]
    order: Any = None  # a DraftOrder, or None where no single order is concerned


class Outcome(NamedTuple):
    """The verdict and the leaves that decided it (met leaves of a True verdict; unknown facts of None)."""

    verdict: bool | None
    met: tuple[Condition, ...] = ()
    unknown: tuple[str, ...] = ()


_FALSE = Outcome(False)  # Outcomes are immutable: one instance serves every plain False, which most leaves are


def check(condition: Condition, subject: Subject) -> Outcome:
    """Evaluate ``condition`` for ``subject`` (see the module docstring for the language)."""
    if "all" in condition:  # up to the first False part (see the module docstring)
        parts = []
        for part in condition["all"]:
            outcome = check(part, subject)
            if outcome.verdict is False:
                return _FALSE
            parts.append(outcome)
        return _all(parts)
    if "any" in condition:
        return _any([check(c, subject) for c in condition["any"]])
    if "not" in condition:
        inner = check(condition["not"], subject)
        return Outcome(None if inner.verdict is None else not inner.verdict, (), inner.unknown)
    return _leaf(condition, subject)


def holds(condition: Condition, subject: Subject) -> bool | None:
    return check(condition, subject).verdict


def validate(condition: Any, where: str, sets: Mapping[str, Any] | None = None) -> None:
    """Start-up check of one condition tree; raises ``ValueError`` naming ``where`` and what is wrong."""
    if not isinstance(condition, Mapping):
        raise ValueError(f"{where}: a condition must be an object")
    combinators = [k for k in COMBINATORS if k in condition]
    if combinators:
        key = combinators[0]
        parts = [condition[key]] if key == "not" else condition[key]
        if len(condition) != 1 or not isinstance(parts, list | Mapping) or (key != "not" and not parts):
            raise ValueError(f"{where}: {key!r} must stand alone with a non-empty list of conditions")
        for index, part in enumerate(parts):
            validate(part, f"{where}.{key}[{index}]", sets)
        return
    subjects = [k for k in ("fact", "order") if k in condition]
    tests = [k for k in TESTS if k in condition]
    extra = set(condition) - {"fact", "order", *TESTS}
    if len(subjects) != 1 or len(tests) != 1 or extra:
        raise ValueError(f"{where}: a leaf needs one of fact/order and one test of {', '.join(TESTS)}; "
                         f"got {sorted(condition)}")
    if tests[0] == "in_set" and sets is not None and condition["in_set"] not in sets:
        raise ValueError(f"{where}: unknown named set {condition['in_set']!r}")


def leaves(condition: Condition) -> list[Condition]:
    """Every leaf of a condition tree, in order (for docs and for checks that a fact exists)."""
    for key in ("all", "any"):
        if key in condition:
            return [leaf for part in condition[key] for leaf in leaves(part)]
    if "not" in condition:
        return leaves(condition["not"])
    return [condition]


def _all(parts: list[Outcome]) -> Outcome:
    if any(p.verdict is False for p in parts):
        return _FALSE
    if all(p.verdict for p in parts):
        return Outcome(True, tuple(m for p in parts for m in p.met))
    return Outcome(None, (), _unknown(parts))


def _any(parts: list[Outcome]) -> Outcome:
    met = [p for p in parts if p.verdict]
    if met:
        return Outcome(True, tuple(m for p in met for m in p.met))
    if all(p.verdict is False for p in parts):
        return _FALSE
    return Outcome(None, (), _unknown(parts))


def _unknown(parts: list[Outcome]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for p in parts if p.verdict is None for name in p.unknown))


def _leaf(condition: Condition, subject: Subject) -> Outcome:
    if "order" in condition:
        value = getattr(subject.order, condition["order"], None)
        known = subject.order is not None
        name = f"order.{condition['order']}"
    else:
        name = condition["fact"]
        fact = subject.facts.facts.get(name)
        known = fact is not None and fact.value is not None and name not in subject.facts.conflicts
        value = fact.value if fact is not None else None
    if "known" in condition:
        return Outcome(True, (condition,)) if known == condition["known"] else _FALSE
    if not known:
        return Outcome(None, (), (name,))
    verdict = _test(condition, value, subject.sets)
    return _FALSE if verdict is False else Outcome(verdict, (condition,) if verdict else ())


def _test(condition: Condition, value: Any, sets: Mapping[str, tuple[Any, ...]]) -> bool:
    if "in" in condition:
        return value in condition["in"]
    if "is" in condition:
        return bool(value == condition["is"] and type(value) is type(condition["is"]))
    if "min" in condition:
        return isinstance(value, int | float) and value >= condition["min"]
    if "max" in condition:
        return isinstance(value, int | float) and value <= condition["max"]
    if "none_of" in condition:
        return not set(value or ()) & set(condition["none_of"])
    if "nonempty" in condition:
        return bool(value) == condition["nonempty"]
    return value in sets[condition["in_set"]]
