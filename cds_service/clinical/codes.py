"""Code and text matching for the clinical facts: code lists and text patterns from ``clinical/shared/codes.json``.

Codes match by system AND code. ICD-10-CM is matched by hierarchy (a prefix family such as ``M80.08X``
covers every 7th character), because records carry billable leaf codes while the criteria speak of
families. Free text is a lower-confidence fallback: a pattern hit in a negated, hypothetical or family context
(the ConText rule table of ``clinical/shared/context.json``, applied by ``clinical/context.py``) is never a
positive finding. Every pattern is a
plain alternation without nested quantifiers, and inputs are capped, so matching stays linear in the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .casefold import folded, searched
from .context import ContextRules, default_context_rules
from .prefilter import Prefilter, build_prefilter

# Canonical terminology names -> the Coding.system URIs that carry them (terminology-codes.md "FHIR system
# URIs"; the icd-10 and OID aliases are what real EHR feeds send for ICD-10-CM and SNOMED CT).
SYSTEM_ALIASES: Mapping[str, tuple[str, ...]] = {
    "icd10cm": ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10",
                "urn:oid:2.16.840.1.113883.6.90"),
    "snomed": ("http://snomed.info/sct", "urn:oid:2.16.840.1.113883.6.96"),
    "loinc": ("http://loinc.org", "urn:oid:2.16.840.1.113883.6.1"),
    "rxnorm": ("http://www.nlm.nih.gov/research/umls/rxnorm", "urn:oid:2.16.840.1.113883.6.88"),
    "cpt": ("http://www.ama-assn.org/go/cpt", "urn:oid:2.16.840.1.113883.6.12"),
}
_SYSTEM_BY_URI = {uri: name for name, uris in SYSTEM_ALIASES.items() for uri in uris}

MAX_TEXT = 4000  # characters of one free-text field that are searched; bounds the work per field
JOIN = "\x00"  # joins texts for ``TextPatterns.may_match_joined``

TextResult = Literal["positive", "negated", "historical", "hypothetical", "family"]


def system_name(uri: str | None) -> str | None:
    """The canonical terminology of a Coding.system URI, or None for local / unknown systems (or a non-string)."""
    if not isinstance(uri, str):
        return None
    return _SYSTEM_BY_URI.get(uri.strip().rstrip("/"))


def normalise_code(system: str, code: str) -> str:
    """ICD-10-CM codes are compared upper-case with the dot; a dotless code (``M8008XA``) gets its dot back."""
    code = code.strip()
    if system != "icd10cm":
        return code
    code = code.upper()
    if "." not in code and len(code) > 3:
        code = f"{code[:3]}.{code[3:]}"
    return code


CodedKey = tuple[str, str]  # (canonical system, normalised code): a Coding as the code lists compare it


def coded_key(coding: Mapping[str, Any]) -> CodedKey | None:
    """A Coding reduced to what matching compares, or None when it has no known system or no code.

    Computed once per Coding, so a resource checked against twenty concepts is normalised once, not twenty times.
    """
    system = system_name(coding.get("system"))
    raw = coding.get("code")
    if system is None or not isinstance(raw, str) or not raw.strip():
        return None
    return system, normalise_code(system, raw)


@dataclass(frozen=True)
class CodeList:
    """Codes of one terminology: exact codes, hierarchy prefixes (ICD-10-CM) and inclusive numeric ranges (CPT)."""

    exact: frozenset[tuple[str, str]]
    prefixes: tuple[tuple[str, str], ...]
    ranges: tuple[tuple[str, str, str], ...]
    # The prefixes as set lookups: the prefix lengths to try per system, and the set of (system, prefix).
    _prefix_lengths: Mapping[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)
    _prefix_set: frozenset[tuple[str, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lengths: dict[str, set[int]] = {}
        for system, prefix in self.prefixes:
            lengths.setdefault(system, set()).add(len(prefix))
        object.__setattr__(self, "_prefix_lengths", {s: tuple(sorted(n)) for s, n in lengths.items()})
        object.__setattr__(self, "_prefix_set", frozenset(self.prefixes))

    def match_key(self, key: CodedKey) -> str | None:
        """The code if this Coding (system AND code, see ``coded_key``) is in the list, else None.

        Exact codes and each prefix length are set lookups, so the cost does not grow with the list."""
        if key in self.exact:
            return key[1]
        system, code = key
        for length in self._prefix_lengths.get(system, ()):
            if (system, code[:length]) in self._prefix_set:
                return code
        for s, low, high in self.ranges:
            if system == s and len(code) == len(low) and low <= code <= high:
                return code
        return None

    def any_match_keys(self, keys: Iterable[CodedKey | None]) -> str | None:
        """The first code of ``keys`` in the list (None entries, Codings without a known system, never match)."""
        for key in keys:
            hit = self.match_key(key) if key else None
            if hit:
                return hit
        return None


def build_code_list(entries: Iterable[Mapping[str, Any]]) -> CodeList:
    """Build a code list from codes.json entries ({system, codes | prefixes | ranges, source, status})."""
    exact: set[tuple[str, str]] = set()
    prefixes: list[tuple[str, str]] = []
    ranges: list[tuple[str, str, str]] = []
    for entry in entries:
        system = entry["system"]
        if system not in SYSTEM_ALIASES:
            raise ValueError(f"codes.json: unknown system {system!r}")
        exact.update((system, normalise_code(system, c)) for c in entry.get("codes", ()))
        prefixes.extend((system, normalise_code(system, p)) for p in entry.get("prefixes", ()))
        ranges.extend((system, low, high) for low, high in entry.get("ranges", ()))
    return CodeList(frozenset(exact), tuple(prefixes), tuple(ranges))


@dataclass(frozen=True)
class TextPatterns:
    """Case-insensitive phrases for the free-text fallback, compiled into one alternation, and the context rules
    (``clinical/context.py``) that decide whether a hit is affirmed, negated, historical, hypothetical or a
    family member's."""

    pattern: re.Pattern[str] | None
    context: ContextRules | None = None  # None: the shipped rule table (clinical/shared/context.json)
    excludes: frozenset[str] = frozenset()  # categories besides negated/family/hypothetical that do not count
    prefilter: Prefilter | None = None  # skips texts no phrase can match (``prefilter.py``); None: search every text
    # The pattern for lower-cased ASCII texts, case-sensitive (``casefold.py``; None: not rewritten). Set in
    # ``__post_init__`` from ``pattern``, so a copy with another pattern (``dataclasses.replace``) gets its own.
    folded: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "folded", folded(self.pattern))

    def search(self, text: str | None) -> TextResult | None:
        """"positive" if an affirmed phrase occurs, else the context of the first non-affirmed one, else None.

        A historical mention is affirmed unless the concept excludes it ("history of kyphoplasty" is prior
        surgery; "history of cord compression" is not a red flag today)."""
        if not text or self.pattern is None:
            return None
        text = text[:MAX_TEXT]
        if self.prefilter is not None and not self.prefilter.may_match(text):
            return None
        rules = self.context or default_context_rules()
        result: TextResult | None = None
        pattern, searched_text = searched(self.pattern, self.folded, text)
        for hit in pattern.finditer(searched_text):
            category = rules.category(text, hit.start(), hit.end())
            if category is None or (category == "historical" and category not in self.excludes):
                return "positive"
            result = result or category
        return result

    def may_match_joined(self, joined: str) -> bool:
        """False only when no phrase can match any of some texts joined with ``JOIN`` (NUL, which no literal
        contains, so a literal occurs in the joined string exactly when it occurs in one of the texts): one
        prefilter test for many texts. Phrases without a literal are patterns whose context at a text's edge
        the join could change, so with any of them this says True."""
        prefilter = self.prefilter
        return prefilter is None or prefilter.rest is not None or prefilter.may_match(joined)

    def may_occur(self, text: str) -> bool:
        """False only when no phrase can occur in the searched part of ``text``: the prefilter's answer, which
        may say True for a text no phrase matches, so it is a screen, never a finding.

        Used with the phrases of every concept joined: a text it rejects is searched by no concept (none of their
        ``search`` can find anything in it), so most texts are tested once instead of once per concept."""
        return self.pattern is not None and (self.prefilter is None or self.prefilter.may_match(text[:MAX_TEXT]))


def build_text_patterns(phrases: Iterable[str], excludes: Iterable[str] = (),
                        context: ContextRules | None = None) -> TextPatterns:
    """Phrases are regular expressions without nested quantifiers; they are joined with word boundaries."""
    phrases = list(phrases)
    if not phrases:
        return TextPatterns(None)
    return TextPatterns(_joined(phrases), context, frozenset(excludes), build_prefilter(phrases, _joined))


def _joined(phrases: list[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in phrases) + r")", re.IGNORECASE)


@dataclass(frozen=True)
class Concept:
    """One clinical concept of codes.json: what counts (codes, text) and what is explicitly excluded."""

    name: str
    codes: CodeList
    text: TextPatterns
    exclude: CodeList

    def match_keys(self, keys: Iterable[CodedKey | None]) -> str | None:
        """The first matching code of Codings reduced by ``coded_key``, ignoring codings on the exclusion list
        (e.g. C44 skin cancer)."""
        for key in keys:
            if key is None or self.exclude.match_key(key):
                continue
            hit = self.codes.match_key(key)
            if hit:
                return hit
        return None


def build_concept(name: str, spec: Mapping[str, Any]) -> Concept:
    """A concept from its codes.json block: ``codes`` and ``exclude`` entries, ``text`` entries."""
    phrases = [p for entry in spec.get("text", ()) for p in entry["patterns"]]
    return Concept(name, build_code_list(spec.get("codes", ())),
                   build_text_patterns(phrases, spec.get("context_excludes", ())),
                   build_code_list(spec.get("exclude", ())))


# ICD-10-CM S22.0- / S32.0- 5th character -> vertebral level (terminology-codes.md §1a).
_THORACIC_LEVELS = {"1": "T1", "2": "T2", "3": "T3", "4": "T4", "5": "T5-T6", "6": "T7-T8", "7": "T9-T10",
                    "8": "T11-T12"}
_LUMBAR_LEVELS = {"1": "L1", "2": "L2", "3": "L3", "4": "L4", "5": "L5"}
# A vertebral level ("T12", "L-1"), not an MRI sequence ("T1-weighted", "T2/STIR", "T1 hypointense", "T2W").
_TEXT_LEVEL = re.compile(r"\b([CTL])[- ]?(1[0-2]|[1-9])\b(?![-/ ]?(?i:weighted|w\b|stir|flair|hypo|hyper|signal))")


def icd_fracture_level(code: str) -> str | None:
    """The vertebral level an ICD-10-CM S22.0x / S32.0x fracture code names (5th character), if any."""
    if len(code) >= 6 and code.startswith("S22.0"):
        return _THORACIC_LEVELS.get(code[5])
    if len(code) >= 6 and code.startswith("S32.0"):
        return _LUMBAR_LEVELS.get(code[5])
    return None


def text_levels(text: str | None) -> tuple[str, ...]:
    """Vertebral levels written in free text ("T12", "L-1"), in order of appearance, without repeats."""
    found: list[str] = []
    for hit in _TEXT_LEVEL.finditer((text or "")[:MAX_TEXT]):
        level = f"{hit.group(1).upper()}{hit.group(2)}"
        if level not in found:
            found.append(level)
    return tuple(found)
