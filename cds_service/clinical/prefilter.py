"""Literal words a text must contain before a phrase pattern can match it: a cheap test that skips most searches.

Why: a call asks some sixty concepts about the same dozen texts, and a regular-expression search costs several
times a substring test. For every phrase we take, from Python's own parse of the pattern, a set of literal
strings at least one of which occurs in every match ("vertebral artery (?:injury|dissection)" -> {"vertebral
artery"}; "(?:fusion|discectomy)" -> {"fusion", "discectomy"}). A text containing none of a concept's literals
cannot match it, so its search is skipped; any other text is searched exactly as before, so results do not change.

The literals are lower-case ASCII, joined into one case-sensitive alternation that is run on the lower-cased
text (measured: a fifth of the cost of a case-insensitive one). For an ASCII text that is exact: an ASCII
character matches a pattern letter case-insensitively only if both lower-case to the same letter. A text with
other characters (where case-insensitive matching knows folds such as the Kelvin sign for "k") is always
searched. A phrase whose parse we cannot reduce to literals of at least ``MIN_LENGTH`` characters gives None,
and so do more than ``MAX_LITERALS`` literals (design choice: such an alternation, like the joined screen of
every phrase, costs about what the search it would save costs): then the concept is always searched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

try:  # the parser ``re`` itself uses; private, so any surprise only turns the shortcut off
    from re import _parser as _sre
except ImportError:  # pragma: no cover - a Python without it searches every text
    _sre = None

MIN_LENGTH = 3  # shorter literals ("no", " ") occur in almost every text and would skip nothing
MAX_LITERALS = 40
Literals = frozenset[str]


def required_literals(phrases: Iterable[str]) -> Literals | None:
    """Literals one of which every match of any of the phrases contains, or None when some phrase has none."""
    found: set[str] = set()
    for phrase in phrases:
        literals = _phrase_literals(phrase)
        if literals is None:
            return None
        found |= literals
    return frozenset(found) if found else None


def literal_pattern(literals: Literals | None) -> re.Pattern[str] | None:
    """The literals as one alternation (longest first), or None when there are none or too many to pay."""
    if not literals or len(literals) > MAX_LITERALS:
        return None
    return re.compile("|".join(map(re.escape, sorted(literals, key=lambda lit: (-len(lit), lit)))))


def may_match(literals: re.Pattern[str] | None, text: str) -> bool:
    """False only when the text certainly holds none of the literals (see the module docstring)."""
    return literals is None or not text.isascii() or literals.search(text.lower()) is not None


def _phrase_literals(phrase: str) -> Literals | None:
    if _sre is None:
        return None
    try:
        parsed = _sre.parse(phrase, re.IGNORECASE)
    except (re.error, TypeError, ValueError):
        return None
    return _sequence(list(parsed))


def _sequence(items: list[tuple[object, object]]) -> Literals | None:
    """The best literal set among the parts every match of this sequence passes through."""
    candidates: list[Literals] = []
    run: list[str] = []
    for op, value in items:
        char = chr(value) if op is _sre.LITERAL and isinstance(value, int) else ""
        if char.isascii() and char:
            run.append(char.lower())
            continue
        if run:
            candidates.append(frozenset({"".join(run)}))
            run = []
        part = _required_part(op, value)
        if part is not None:
            candidates.append(part)
    if run:
        candidates.append(frozenset({"".join(run)}))
    usable = [c for c in candidates if min(map(len, c)) >= MIN_LENGTH]
    return max(usable, key=lambda c: (min(map(len, c)), -len(c))) if usable else None


def _required_part(op: object, value: object) -> Literals | None:
    """Literals of a group, an alternation or a repeat that must occur at least once; None for anything else."""
    if op is _sre.SUBPATTERN:
        return _sequence(list(value[-1]))  # (group, add_flags, del_flags, pattern)
    if op is _sre.BRANCH:
        branches = [_sequence(list(branch)) for branch in value[1]]
        if any(b is None for b in branches):
            return None
        return frozenset().union(*branches)
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and value[0] >= 1:
        return _sequence(list(value[2]))
    return None
