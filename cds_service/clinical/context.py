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

from .casefold import folded, searched
from .prefilter import Prefilter, build_prefilter

Category = Literal["negated", "historical", "hypothetical", "family"]
CATEGORIES: tuple[Category, ...] = ("negated", "family", "hypothetical", "historical")  # most decisive first
CONTEXT_FILE = "clinical/shared/context.json"
_LOOK = 400  # characters searched either side of a hit for the sentence boundary


_WORD_BEFORE, _WORD_AFTER = r"(?<!\w)", r"(?!\w)"


def _alternation(phrases: Iterable[str], before: str = _WORD_BEFORE,
                 after: str = _WORD_AFTER) -> re.Pattern[str] | None:
    """Phrases as one pattern, longest first, each bounded so that "no" never matches inside "not" or "know"
    (``before``/``after``: the bounds, one of which a window screen drops)."""
    ordered = sorted(set(phrases), key=len, reverse=True)
    if not ordered:
        return None
    return re.compile(before + "(?:" + "|".join(f"(?:{p})" for p in ordered) + ")" + after, re.IGNORECASE)


class Phrases(NamedTuple):
    """Phrases as one alternation, with their literal screen (``prefilter.py``): most windows around a finding
    hold none of a group's phrases, and the screen says so for a fraction of the cost of the case-insensitive
    alternation (the alternation is still what decides). The screen is asked of the whole window, also when a
    search starts later in it: a literal in part of a window is in the window, and the phrases the screen
    searches as patterns are searched in the same string. An ASCII window is searched lower-cased by the
    alternation rewritten for that (``casefold.py``), when it could be rewritten."""

    pattern: re.Pattern[str]
    screen: Prefilter | None
    folded: re.Pattern[str] | None

    def finditer(self, window: str, start: int = 0) -> Iterable[re.Match[str]]:
        searched = self._searched(window)
        return () if searched is None else searched[0].finditer(searched[1], start)

    def search(self, window: str) -> re.Match[str] | None:
        searched = self._searched(window)
        return None if searched is None else searched[0].search(searched[1])

    def _searched(self, window: str) -> tuple[re.Pattern[str], str] | None:
        """The pattern to search and the text to search it in; None when the screen rules the window out."""
        if self.screen is not None and not self.screen.may_match(window):
            return None
        return searched(self.pattern, self.folded, window)


def _phrases(phrases: Iterable[str]) -> Phrases | None:
    listed = list(phrases)
    pattern = _alternation(listed)
    if pattern is None:
        return None
    return Phrases(pattern, build_prefilter(listed, _alternation), folded(pattern))


class Trigger(NamedTuple):
    """The trigger phrases of one category in one direction."""

    category: Category
    phrases: Phrases


@dataclass(frozen=True)
class ContextRules:
    """The compiled rule table: one pattern per (category, direction), pseudo-triggers, terminators, scope."""

    forward: tuple[Trigger, ...]  # triggers before the finding (incl. bidirectional)
    backward: tuple[Trigger, ...]  # triggers after the finding (incl. bidirectional)
    pseudo: Phrases | None
    terminators: Phrases | None
    sentence_break: re.Pattern[str]
    backward_break: re.Pattern[str] | None
    forward_words: int
    backward_words: int
    # Every trigger of a direction in one screen, asked of the whole window before it is cut (``_window_screen``):
    # most windows around a finding hold no trigger at all, and then neither the cut nor any trigger is searched.
    forward_screen: Prefilter | None = None
    backward_screen: Prefilter | None = None

    def category(self, text: str, start: int, end: int) -> Category | None:
        """The context of the finding at ``text[start:end]``, or None when it is affirmed (a plain positive)."""
        found = set(self._before(text, start)) | set(self._after(text, end))
        return next((c for c in CATEGORIES if c in found), None)

    def _before(self, text: str, start: int) -> Iterable[Category]:
        low = max(0, start - _LOOK)
        window = text[low:start]
        if self.forward_screen is not None and not self.forward_screen.may_match(window):
            return ()
        cut = 0
        for stop in self.sentence_break.finditer(window):
            cut = stop.end()
        if self.terminators is not None:
            stops = list(self.terminators.finditer(window, cut))
            cues = tuple(hit.span() for trigger in self.forward for hit in trigger.phrases.finditer(window, cut)) \
                if stops else ()
            for stop in stops:
                if not _overlaps(stop.span(), cues):  # "no longer reports": part of the trigger
                    cut = stop.end()
        window = window[cut:]
        return self._triggered(self.forward, window, lambda hit: _words(window[hit.end():]) <= self.forward_words)

    def _after(self, text: str, end: int) -> Iterable[Category]:
        window = text[end:end + _LOOK]
        if self.backward_screen is not None and not self.backward_screen.may_match(window):
            return ()
        limit = len(window)
        for pattern in (self.sentence_break, self.terminators, self.backward_break):
            stop = pattern.search(window) if pattern is not None else None  # a regular expression or Phrases
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
            for hit in trigger.phrases.finditer(window):
                if skip is None:
                    skip = _spans(self.pseudo, window)
                if not _overlaps(hit.span(), skip) and near(hit):
                    yield trigger.category
                    break


_WORD = re.compile(r"\w+")


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _spans(phrases: Phrases | None, text: str) -> tuple[tuple[int, int], ...]:
    return () if phrases is None else tuple(m.span() for m in phrases.finditer(text))


def _overlaps(span: tuple[int, int], others: tuple[tuple[int, int], ...]) -> bool:
    return any(span[0] < high and low < span[1] for low, high in others)


def _window_screen(phrases: list[str], cut_at: Literal["start", "end"]) -> Prefilter | None:
    """One screen for a direction's triggers, exact when asked of the window before it is cut.

    The triggers are searched in a part of the window: its start cut at the last sentence break or terminator
    before the finding (``cut_at="start"``), or its end at the first one after it (``"end"``). A literal in
    the part is in the window too. A phrase without a literal is searched in the window with the word bound
    on the cut side dropped (that edge of the part is not one of the window), so each match in the part is one
    in the window; that holds only for phrases that test no neighbouring character themselves, so a phrase
    without a literal that holds an assertion (``\\b``, ``^``, a lookaround) makes the screen pass every window."""
    def compile_rest(rest: list[str]) -> re.Pattern[str] | None:
        if any(token in phrase for phrase in rest for token in _ASSERTIONS):
            return re.compile("")  # matches every window: nothing is skipped
        if cut_at == "start":
            return _alternation(rest, before="")
        return _alternation(rest, after="")

    return build_prefilter(phrases, compile_rest)


_ASSERTIONS = ("\\b", "\\B", "\\A", "\\Z", "^", "$", "(?=", "(?!", "(?<")


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
        return tuple(Trigger(c, p) for c in CATEGORIES if (p := _phrases(table.get(c, ()))) is not None)

    return ContextRules(
        grouped(forward), grouped(backward), _phrases(r["phrase"] for r in data["pseudo"]),
        _phrases(r["phrase"] for r in data["terminators"]), re.compile(scope["sentence_break"]),
        re.compile(scope["backward_break"]) if scope.get("backward_break") else None,
        int(scope["forward_words"]), int(scope["backward_words"]),
        _window_screen([p for phrases in forward.values() for p in phrases], "start"),
        _window_screen([p for phrases in backward.values() for p in phrases], "end"))


@cache
def default_context_rules() -> ContextRules:
    """The shipped rule table, read and checked once (schema and provenance) the first time text is searched."""
    from ..datafiles import check_provenance, read_checked

    data = read_checked(CONTEXT_FILE, "clinical/schemas/context.schema.json")
    check_provenance(data, set(data["sources"]), CONTEXT_FILE,
                     frozenset({"seen", "secondary", "unconfirmed", "design-choice"}))
    return build_context_rules(data)
