"""Every code list of the fact rules inverted once at start-up: a Coding's key -> the lists that hold it.

Why: a call asks some sixty concepts whether each of the record's codings belongs to them, one concept at a
time (``Concept.match_keys``). Inverted, one lookup per coding (its exact code, each prefix length of its
system, the few CPT ranges) answers for every concept at once. The answers are the same as asking each
concept: a concept's exclusion list (e.g. C44 skin cancer under malignancy) removes the coding for that concept
only, and within a resource the first coding that matches gives the code, as in ``match_keys``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .codes import CodedKey, CodeList, Concept

Matcher = Concept | CodeList
Keys = tuple[CodedKey | None, ...]
_Entry = tuple[int, bool]  # (id of the matcher, whether this list excludes the coding for it)


class CodeIndex:
    """The code lists of the given concepts (with their exclusions) and plain code lists, by coding."""

    def __init__(self, matchers: Iterable[Matcher]) -> None:
        self._known: set[int] = set()
        self._exact: dict[CodedKey, list[_Entry]] = {}
        self._prefixes: dict[CodedKey, list[_Entry]] = {}
        self._lengths: dict[str, set[int]] = {}
        self._ranges: list[tuple[str, str, str, _Entry]] = []
        for matcher in matchers:
            self._known.add(id(matcher))
            if isinstance(matcher, Concept):
                self._add(matcher.codes, (id(matcher), False))
                self._add(matcher.exclude, (id(matcher), True))
            else:
                self._add(matcher, (id(matcher), False))

    def _add(self, codes: CodeList, entry: _Entry) -> None:
        for key in codes.exact:
            self._exact.setdefault(key, []).append(entry)
        for system, prefix in codes.prefixes:
            self._prefixes.setdefault((system, prefix), []).append(entry)
            self._lengths.setdefault(system, set()).add(len(prefix))
        self._ranges.extend((system, low, high, entry) for system, low, high in codes.ranges)

    def knows(self, matcher: Matcher) -> bool:
        return id(matcher) in self._known

    def key_matches(self, key: CodedKey) -> set[int]:
        """The ids of the matchers that count this coding (an exclusion takes it from its concept)."""
        system, code = key
        entries = list(self._exact.get(key, ()))
        for length in self._lengths.get(system, ()):
            entries.extend(self._prefixes.get((system, code[:length]), ()))
        entries.extend(entry for s, low, high, entry in self._ranges
                       if s == system and len(code) == len(low) and low <= code <= high)
        excluded = {matcher for matcher, excludes in entries if excludes}
        return {matcher for matcher, excludes in entries if not excludes and matcher not in excluded}

    def keys_matches(self, keys: Keys) -> dict[int, str]:
        """For one resource's codings: each matcher that counts one of them -> the code of the first such."""
        found: dict[int, str] = {}
        for key in keys:
            if key is not None:
                for matcher in self.key_matches(key):
                    found.setdefault(matcher, key[1])
        return found
