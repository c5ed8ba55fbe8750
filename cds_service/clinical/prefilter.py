"""Literal words a text must contain before a phrase pattern can match it: a cheap test that skips most searches.

Why: a call asks a few dozen concepts about the same few dozen texts, and a phrase search costs several times a
literal test. For every phrase we take, from Python's own parse of the pattern, a set of literal strings at
least one of which occurs in every match ("vertebral artery (?:injury|dissection)" -> {"vertebral artery "};
"(?:fusion|discectomy)" -> {"fusion", "discectomy"}). A text containing none of a concept's literals, and
matching none of its phrases that have no literal (the vertebral levels "L[1-5]"), cannot match the concept,
so its search is skipped; any other text is searched exactly as before, so results do not change.

The literals are lower-case ASCII, compiled as a trie (one branch per next character: measured 0.2-1 us a
text for the ~400 literals of every phrase, where the joined phrases take 1-25 us) and run on the lower-cased
text. For an ASCII text that is exact: an ASCII character matches a pattern letter case-insensitively only if
both lower-case to the same letter. A text with other characters (where case-insensitive matching knows folds
such as the Kelvin sign for "k") always passes. During a fact extraction the same question is answered by one
Aho-Corasick pass per text for the literals of every prefilter of the fact rules (``LiteralScan``). A phrase
whose parse gives no literal of at least ``MIN_LENGTH`` characters is kept as a pattern; when no phrase has one,
there is no prefilter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import ahocorasick

from .casefold import folded, searched
from .current import Current

try:  # the parser ``re`` itself uses; private, so any surprise only turns the shortcut off
    from re import _parser as _sre  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a Python without it searches every text
    _sre = None

MIN_LENGTH = 3  # shorter literals ("no", " ") occur in almost every text and would skip nothing
Literals = frozenset[str]


@dataclass(frozen=True)
class Prefilter:
    literals: re.Pattern[str]  # the literals of the phrases that have them, as a trie
    rest: re.Pattern[str] | None  # the phrases that have none, compiled as they are searched
    words: frozenset[str] = frozenset()  # those literals (``LiteralScan``)
    # ``rest`` for lower-cased ASCII texts (``casefold.py``), set from it; None: ``rest`` is searched as it is
    rest_folded: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rest_folded", folded(self.rest))

    def may_match(self, text: str) -> bool:
        """False only when no phrase can match the text (see the module docstring). While a ``ScanMemo`` that
        knows this prefilter is active, its one scan of the text answers instead of the trie: the same answer."""
        if not text.isascii():
            return True
        memo = _MEMO.get()
        bit = memo.scan.bits.get(id(self)) if memo is not None else None
        if memo is not None and bit is not None:
            has_literal = bool(memo.mask(text) & bit)
        else:
            has_literal = self.literals.search(text.lower()) is not None
        if has_literal or self.rest is None:
            return has_literal
        pattern, searched_text = searched(self.rest, self.rest_folded, text)
        return pattern.search(searched_text) is not None


class LiteralScan:
    """The literals of many prefilters in one Aho-Corasick automaton (pyahocorasick, C): one pass over a text
    finds every literal in it, so one scan answers every prefilter at once. A call asks some fifty prefilters
    about the same seventy texts (about 360 trie searches); scanned once each, the texts cost a fraction of that.
    Each prefilter has a bit; a literal's value is the bits of the prefilters holding it."""

    def __init__(self, prefilters: Iterable[Prefilter]) -> None:
        self.held = list(dict.fromkeys(prefilters))  # held, so that their ids stay unique
        self.bits = {id(p): 1 << n for n, p in enumerate(self.held)}
        masks: dict[str, int] = {}
        for prefilter in self.held:
            for word in prefilter.words:
                masks[word] = masks.get(word, 0) | self.bits[id(prefilter)]
        self._automaton = ahocorasick.Automaton()
        for word, mask in masks.items():
            self._automaton.add_word(word, mask)
        self._automaton.make_automaton()

    def mask(self, text: str) -> int:
        """The bits of the prefilters one of whose literals occurs in ``text`` (lower-case ASCII)."""
        found = 0
        for _end, mask in self._automaton.iter(text):
            found |= mask
        return found


class ScanMemo:
    """One fact extraction's scans, by text: texts and their answers live as long as the extraction, never
    longer (they are patient data)."""

    def __init__(self, scan: LiteralScan) -> None:
        self.scan = scan
        self.masks: dict[str, int] = {}

    def mask(self, text: str) -> int:
        found = self.masks.get(text)
        if found is None:
            found = self.masks[text] = self.scan.mask(text.lower())
        return found

    def active(self) -> Current:
        """A with-block in which this memo answers the prefilters it knows (``Prefilter.may_match``)."""
        return Current(_MEMO, self)


# The extraction's scans in this context (thread), while one of its fact rules runs; None outside.
_MEMO: ContextVar[ScanMemo | None] = ContextVar("literal_scans", default=None)


def build_prefilter(phrases: Iterable[str], compile_phrases: Callable[[list[str]], re.Pattern[str] | None]
                    ) -> Prefilter | None:
    """The prefilter of these phrases; ``compile_phrases`` compiles those without literals as searched."""
    literals: set[str] = set()
    rest: list[str] = []
    for phrase in phrases:
        found = phrase_literals(phrase)
        if found is None:
            rest.append(phrase)
        else:
            literals |= found
    if not literals:
        return None
    return Prefilter(trie_pattern(literals), compile_phrases(rest) if rest else None, frozenset(literals))


def phrase_literals(phrase: str) -> Literals | None:
    """Literals one of which every match of the phrase contains, or None when its parse gives none."""
    if _sre is None:
        return None
    try:
        parsed = _sre.parse(phrase, re.IGNORECASE)
    except (re.error, TypeError, ValueError):
        return None
    return _sequence(list(parsed))


def trie_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """One pattern matching any of the words, nested by common prefix so each position tries few branches."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here
    return re.compile(_branch(trie))


def _branch(node: dict[str, dict]) -> str:
    # A word that is a prefix of another only needs the shorter one (we ask "does one occur?"): stop at its end.
    if "" in node:
        return ""
    options = [re.escape(char) + _branch(child) for char, child in sorted(node.items())]
    return options[0] if len(options) == 1 else "(?:" + "|".join(options) + ")"


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


def _required_part(op: object, value: Any) -> Literals | None:
    """Literals of a group, an alternation or a repeat that must occur at least once; None for anything else."""
    if op is _sre.SUBPATTERN:
        return _sequence(list(value[-1]))  # (group, add_flags, del_flags, pattern)
    if op is _sre.BRANCH:
        branches = [found for branch in value[1] if (found := _sequence(list(branch))) is not None]
        return frozenset().union(*branches) if len(branches) == len(value[1]) else None
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and value[0] >= 1:
        return _sequence(list(value[2]))
    return None
