"""Context of a free-text finding, ConText style: negated, historical, hypothetical, about a family member, or none.

The rules are data (``clinical/shared/context.json``): trigger phrases with a category and a direction, pseudo-
triggers that contain a trigger but are not one ("no increase in"), terminators that end a trigger's scope
("but"), and the scope limits. medspaCy's ConText was measured here and missed post-negations ("is not
identified"), "resolved", comma scope and "prior ... in 2018" with its default rules, at 1.2 ms a sentence and
+60 MB per process; this engine is a handful of precompiled alternations run only around a phrase hit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, NamedTuple

from .prefilter import Prefilter, build_prefilter

Category = Literal["negated", "historical", "hypothetical", "family"]
CATEGORIES: tuple[Category, ...] = ("negated", "family", "hypothetical", "historical")  # most decisive first
CONTEXT_FILE = "clinical/shared/context.json"
_LOOK = 400  # characters searched either side of a hit for the sentence boundary


def _alternation(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """Phrases as one pattern, longest first, each bounded so that "no" never matches inside "not" or "know"."""
    ordered = sorted(set(phrases), key=len, reverse=True)
    if not ordered:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(f"(?:{p})" for p in ordered) + r")(?!\w)", re.IGNORECASE)


class Trigger(NamedTuple):
    """The trigger phrases of one category in one direction, with their literal screen (``prefilter.py``): most
    windows around a finding hold no trigger of a category, and the screen says so for a fraction of the cost of
    the case-insensitive alternation (the alternation is still what decides)."""

    category: Category
    pattern: re.Pattern[str]
    screen: Prefilter | None

    def finditer(self, window: str) -> Iterable[re.Match[str]]:
        return self.pattern.finditer(window) if self.screen is None or self.screen.may_match(window) else ()


@dataclass(frozen=True)
class ContextRules:
    """The compiled rule table: one pattern per (category, direction), pseudo-triggers, terminators, scope."""

    forward: tuple[Trigger, ...]  # triggers before the finding (incl. bidirectional)
    backward: tuple[Trigger, ...]  # triggers after the finding (incl. bidirectional)
    pseudo: re.Pattern[str] | None
    terminators: re.Pattern[str] | None
    sentence_break: re.Pattern[str]
    backward_break: re.Pattern[str] | None
    forward_words: int
    backward_words: int

    def category(self, text: str, start: int, end: int) -> Category | None:
        """The context of the finding at ``text[start:end]``, or None when it is affirmed (a plain positive)."""
        found = set(self._before(text, start)) | set(self._after(text, end))
        return next((c for c in CATEGORIES if c in found), None)

    def _before(self, text: str, start: int) -> Iterable[Category]:
        low = max(0, start - _LOOK)
        window = text[low:start]
        cut = 0
        for stop in self.sentence_break.finditer(window):
            cut = stop.end()
        if self.terminators is not None:
            stops = list(self.terminators.finditer(window, cut))
            cues = tuple(hit.span() for trigger in self.forward for hit in trigger.pattern.finditer(window, cut)) \
                if stops else ()
            for stop in stops:
                if not _overlaps(stop.span(), cues):  # "no longer reports": part of the trigger
                    cut = stop.end()
        window = window[cut:]
        return self._triggered(self.forward, window, lambda hit: _words(window[hit.end():]) <= self.forward_words)

    def _after(self, text: str, end: int) -> Iterable[Category]:
        window = text[end:end + _LOOK]
        limit = len(window)
        for pattern in (self.sentence_break, self.terminators, self.backward_break):
            stop = pattern.search(window) if pattern is not None else None
            if stop is not None:
                limit = min(limit, stop.start())
        window = window[:limit]
        return self._triggered(self.backward, window,
                               lambda hit: _words(window[:hit.start()]) <= self.backward_words)

    def _triggered(self, triggers: tuple[Trigger, ...], window: str,
                   near: Callable[[re.Match[str]], bool]) -> Iterator[Category]:
        """The categories with a trigger in ``window`` near enough to the finding and not part of a
        pseudo-trigger ("no increase" is not a negation); the pseudo-triggers are found once a trigger is."""
        skip: tuple[tuple[int, int], ...] | None = None
        for trigger in triggers:
            for hit in trigger.finditer(window):
                if skip is None:
                    skip = _spans(self.pseudo, window)
                if not _overlaps(hit.span(), skip) and near(hit):
                    yield trigger.category
                    break


_WORD = re.compile(r"\w+")


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _spans(pattern: re.Pattern[str] | None, text: str) -> tuple[tuple[int, int], ...]:
    return () if pattern is None else tuple(m.span() for m in pattern.finditer(text))


def _overlaps(span: tuple[int, int], others: tuple[tuple[int, int], ...]) -> bool:
    return any(span[0] < high and low < span[1] for low, high in others)


def build_context_rules(data: Mapping[str, Any]) -> ContextRules:
    """Compile ``context.json`` (already schema-checked): each direction's triggers grouped by category."""
    forward: dict[str, list[str]] = {}
    backward: dict[str, list[str]] = {}
    for rule in data["rules"]:
        if rule["direction"] in ("forward", "bidirectional"):
            forward.setdefault(rule["category"], []).append(rule["phrase"])
        if rule["direction"] in ("backward", "bidirectional"):
            backward.setdefault(rule["category"], []).append(rule["phrase"])
    scope = data["scope"]

    def grouped(table: dict[str, list[str]]) -> tuple[Trigger, ...]:
        return tuple(Trigger(c, p, build_prefilter(table[c], _alternation))  # type: ignore[arg-type]
                     for c in CATEGORIES if (p := _alternation(table.get(c, ()))) is not None)

    return ContextRules(
        grouped(forward), grouped(backward), _alternation(r["phrase"] for r in data["pseudo"]),
        _alternation(r["phrase"] for r in data["terminators"]), re.compile(scope["sentence_break"]),
        re.compile(scope["backward_break"]) if scope.get("backward_break") else None,
        int(scope["forward_words"]), int(scope["backward_words"]))


@cache
def default_context_rules() -> ContextRules:
    """The shipped rule table, read and checked once (schema and provenance) the first time text is searched."""
    from ..datafiles import check_provenance, read_checked

    data = read_checked(CONTEXT_FILE, "clinical/schemas/context.schema.json")
    check_provenance(data, set(data["sources"]), CONTEXT_FILE,
                     frozenset({"seen", "secondary", "unconfirmed", "design-choice"}))
    return build_context_rules(data)
