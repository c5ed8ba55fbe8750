"""The matching shortcuts give exactly the answers of asking each concept in full.

``clinical/prefilter.py`` skips a phrase search when a text lacks every literal the phrases need (one trie per
prefilter, or one Aho-Corasick pass for all of them, ``LiteralScan``), and screens the context rules' triggers
the same way; ``clinical/code_index.py`` answers for every concept at once which of them a coding belongs to.
All are checked here against the plain matching on every text of the fixtures and the ConText sentences, and
on every code of codes.json.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from test_context_sentences import SENTENCES

from cds_service.clinical.casefold import folded
from cds_service.clinical.code_index import CodeIndex
from cds_service.clinical.codes import JOIN, build_text_patterns
from cds_service.clinical.context import CONTEXT_FILE, default_context_rules
from cds_service.clinical.facts import load_fact_rules
from cds_service.clinical.prefilter import ScanMemo, phrase_literals, trie_pattern

RULES = load_fact_rules()
FIXTURES = Path(__file__).resolve().parents[2] / "fhir_fixtures"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


TEXTS = sorted({s for path in FIXTURES.glob("*.json") for s in _strings(json.loads(path.read_text())) if len(s) > 2}
               | {sentence for _, sentence, _ in SENTENCES}
               | {"KYPHOPLASTY T12", "\u212aYPHOPLASTY T12",  # Kelvin sign folds to "k" case-insensitively
                  "Vertebroplastie \u00e0 T12", "cord   compression", "no cord compression", ""})


def test_the_corpus_is_large_and_most_concepts_have_a_prefilter() -> None:
    assert len(TEXTS) > 500
    filtered = [c for c in RULES.concepts.values() if c.text.prefilter is not None]
    with_text = [c for c in RULES.concepts.values() if c.text.pattern is not None]
    assert len(filtered) == len(with_text)  # the vertebral levels ("L[1-5]") are kept as patterns beside literals


@pytest.mark.parametrize("name", sorted(RULES.concepts))
def test_prefilter_never_changes_a_search(name: str) -> None:
    patterns = RULES.concept(name).text
    unfiltered = replace(patterns, prefilter=None)
    assert [patterns.search(t) for t in TEXTS] == [unfiltered.search(t) for t in TEXTS]


def test_one_literal_scan_answers_as_each_prefilter() -> None:
    """``LiteralScan`` (every literal in one automaton, one pass a text) gives each prefilter's own answer, on
    every corpus text, the texts of a type joined and the texts' case variants; only while its memo is active."""
    scan = RULES.literal_scan
    assert scan is not None and len(scan.bits) > 50
    prefilters = scan.held
    texts = [*TEXTS, JOIN.join(TEXTS[:200]), *(t.upper() for t in TEXTS[:200])]
    alone = [[p.may_match(t) for p in prefilters] for t in texts]
    memo = ScanMemo(scan)
    with memo.active():
        scanned = [[p.may_match(t) for p in prefilters] for t in texts]
    assert scanned == alone
    assert len(memo.masks) > 500 and any(not row.count(True) for row in alone)


def test_phrase_screens_never_hide_a_phrase() -> None:
    """The context rules screen each category's triggers, the pseudo-triggers and the terminators
    (``context.Phrases``): on every corpus text, searched whole or from its middle, a screen that says no means
    the alternation finds nothing; and the screens do say no."""
    rules = default_context_rules()
    groups = (*(t.phrases for t in (*rules.forward, *rules.backward)), rules.pseudo, rules.terminators)
    assert all(g is not None and g.screen is not None for g in groups)
    for group in groups:
        for text in TEXTS:
            assert list(group.finditer(text)) or not list(group.pattern.finditer(text)), (group, text)  # type: ignore[union-attr]
            assert group.search(text) or not group.pattern.search(text), (group, text)  # type: ignore[union-attr]
            middle = len(text) // 2
            assert [m.span() for m in group.finditer(text, middle)] == [  # type: ignore[union-attr]
                m.span() for m in group.pattern.finditer(text, middle)]  # type: ignore[union-attr]
    assert sum(not g.screen.may_match(text) for g in groups for text in TEXTS) > 1_000  # type: ignore[union-attr]


def _findings(text: str) -> Iterator[tuple[int, int]]:
    """Every word and every pair of adjacent words of the text, as the span of a finding."""
    words = [m.span() for m in re.finditer(r"\w+", text)]
    yield from words
    yield from ((a[0], b[1]) for a, b in pairwise(words))


def _context_texts(seed: int, count: int) -> list[str]:
    """Random sentences of the rule table's own phrases (triggers, pseudo-triggers, terminators), the words of
    findings, punctuation and glued words, so cuts, bounds and pseudo-triggers fall everywhere."""
    rules = json.loads((Path(__file__).resolve().parents[2] / "cds_service" / CONTEXT_FILE).read_text())
    samples = ["no", "not", "if", "fhx:", "fh", "family", "history", "negative", "denies", "without", "resolved",
               *(re.sub(r"[^\w ]", "", r["phrase"]) for group in ("rules", "pseudo", "terminators")
                 for r in rules[group])]
    filler = ["cord compression", "fracture", "weakness", "T12", "pain", "edema", "xno", "nonot", "ifx"]
    glue = [" ", " ", " ", ", ", ". ", "; ", " - ", "", "\n", ".5 "]
    chooser = random.Random(seed)
    return ["".join(chooser.choice(samples if chooser.random() < 0.5 else filler) + chooser.choice(glue)
                    for _ in range(chooser.randint(1, 14))) for _ in range(count)]


def test_window_screens_never_change_a_context() -> None:
    """A direction's screen (``context._window_screen``) is asked of a finding's window before the window is cut
    at a sentence break or terminator: on every corpus text and 3,000 random sentences of the rule table's
    phrases, for every word and word pair taken as the finding, the context is the one found without the
    screens; and the screens do skip windows."""
    rules = default_context_rules()
    plain = replace(rules, forward_screen=None, backward_screen=None)
    assert rules.forward_screen is not None and rules.backward_screen is not None
    checked = skipped = 0
    for text in [*TEXTS, *_context_texts(16, 3_000)]:
        for start, end in _findings(text):
            assert rules.category(text, start, end) == plain.category(text, start, end), (text, start, end)
            checked += 1
            skipped += not rules.forward_screen.may_match(text[max(0, start - 400):start])
    assert checked > 20_000 and skipped > checked // 10


def test_a_window_screen_passes_every_window_when_a_phrase_without_literal_looks_around() -> None:
    from cds_service.clinical.context import _window_screen

    screen = _window_screen([r"\bno", "cord compression"], "start")
    assert screen is not None and screen.may_match("fracture") and screen.may_match("")
    screen = _window_screen(["no", "cord compression"], "start")
    assert screen is not None and not screen.may_match("fracture") and screen.may_match("xno")
    screen = _window_screen(["no", "cord compression"], "end")  # the part ends early: "no" may end "nox" there
    assert screen is not None and screen.may_match("nox") and not screen.may_match("xno")
    assert _window_screen(["no"], "end") is None  # no literal at all: no screen, every window is searched


def _spans(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(text)]


def test_folded_patterns_find_the_same_spans() -> None:
    """Every phrase alternation rewritten for lower-cased text (``casefold.py``: the concepts', the drugs', the
    screen's, the context rules' and the prefilters' patterns without literal) finds exactly the original's
    spans, on every ASCII corpus text and 1,000 random sentences of the context phrases, each in its own, upper,
    swapped and title case."""
    patterns = [*(c.text for c in RULES.concepts.values()), *(d.text for d in RULES.drugs), RULES.text_screen]
    pairs = [(p.pattern, p.folded) for p in patterns if p.pattern is not None and p.folded is not None]
    context = default_context_rules()
    groups = [g for g in (*(t.phrases for t in (*context.forward, *context.backward)), context.pseudo,
                          context.terminators) if g is not None]
    prefilters = [*(p.prefilter for p in patterns), *(g.screen for g in groups), context.forward_screen,
                  context.backward_screen]
    pairs += [(p.rest, p.rest_folded) for p in prefilters
              if p is not None and p.rest is not None and p.rest_folded is not None]
    pairs += [(g.pattern, g.folded) for g in groups if g.folded is not None]
    assert len(pairs) > 100 and sum(p.rest_folded is not None for p in prefilters if p is not None) >= 6
    texts = [v for t in [*TEXTS, *_context_texts(7, 1_000)] if t.isascii()
             for v in {t, t.upper(), t.swapcase(), t.title()}]
    found = 0
    for original, rewritten in pairs:
        for text in texts:
            expected = _spans(original, text)
            assert _spans(rewritten, text.lower()) == expected, (original.pattern, text)
            found += bool(expected)
    assert found > 1_000


def test_a_pattern_is_rewritten_only_where_that_is_plain() -> None:
    def rewritten(source: str) -> str | None:
        pattern = folded(re.compile(source, re.IGNORECASE))
        return None if pattern is None else pattern.pattern

    assert rewritten(r"\b(?:MRI?|CT) [CTL]-?spine\B\S\d") == r"\b(?:mri?|ct) [ctl]-?spine\B\S\d"
    assert rewritten("[A-Z0-9_.-]+ (?<!x)(?=y)[^]A-F]") == "[a-z0-9_.-]+ (?<!x)(?=y)[^]a-f]"
    for kept in ("[A-z]", "[#-S]", r"\x41", r"\N{LATIN SMALL LETTER A}", r"(a)\1", "(?i)a", "(?P<n>a)",
                 "k\u00fcmmell", r"\n"):
        assert rewritten(kept) is None, kept
    assert folded(re.compile("abc")) is None  # case-sensitive already
    assert folded(re.compile(r"\bno\b", re.IGNORECASE)).flags & re.ASCII  # type: ignore[union-attr]
    spaced = folded(re.compile(r"no\sfracture", re.IGNORECASE))  # \s keeps Unicode: it also holds \x1c-\x1f
    assert spaced is not None and not spaced.flags & re.ASCII and spaced.search("no\x1cfracture")


def test_the_screen_passes_every_text_some_concept_finds_something_in() -> None:
    screen = RULES.text_screen
    found = [t for t in TEXTS if any(c.text.search(t) for c in RULES.concepts.values())
             or any(d.text.search(t) for d in RULES.drugs)]
    assert found and all(screen.may_occur(t) for t in found)
    assert sum(not screen.may_occur(t) for t in TEXTS) > 100  # and it does reject texts
    assert screen.may_occur("T12") and screen.may_occur("L4-L5")  # vertebral levels have no literal: searched


def test_literals_of_typical_phrases() -> None:
    assert phrase_literals("vertebral artery (?:injury|dissection)") == {"vertebral artery "}
    assert phrase_literals("(?:c[1-7]-c[2-7]|c[1-7]) (?:fusion|discectomy)") == {"fusion", "discectomy"}
    assert phrase_literals("osteoporo(?:sis|tic)") == {"osteoporo"}
    assert phrase_literals("L[1-5](?:[-/](?:L[1-5]|S1))?") is None  # nothing of three letters is required
    assert build_text_patterns(["L[1-5]", "T1[0-2]"]).prefilter is None  # no phrase has a literal
    mixed = build_text_patterns(["HIV", "T1[0-2]"]).prefilter
    assert mixed is not None and mixed.may_match("hiv positive") and mixed.may_match("T12 fracture")
    assert not mixed.may_match("no finding")


def test_the_trie_finds_each_word_and_nothing_else() -> None:
    words = ["fracture", "fract", "fusion", "vertebral artery ", "vcf", "a.b"]
    pattern = trie_pattern(words)
    for word in words:
        assert pattern.search(f"x {word} y"), word
    assert not pattern.search("frac fusio vertebral arter vc axb")


def test_a_non_ascii_text_is_always_searched() -> None:
    patterns = build_text_patterns(["kyphoplasty"])
    assert patterns.search("\u212aYPHOPLASTY") == "positive"
    assert patterns.search("Kyphoplastie") is None


def _keys() -> list[tuple[str, str]]:
    """Every code, prefix (and a child of it) and range bound of every concept, and of its exclusions."""
    keys: set[tuple[str, str]] = set()
    for concept in RULES.concepts.values():
        for codes in (concept.codes, concept.exclude):
            keys |= codes.exact
            keys |= {(s, p) for s, p in codes.prefixes} | {(s, p + "1") for s, p in codes.prefixes}
            keys |= {(s, v) for s, low, high in codes.ranges for v in (low, high)}
    return sorted(keys)


def test_code_index_answers_as_each_concept_does() -> None:
    index = RULES.code_index
    assert index is not None
    keys = _keys()
    assert len(keys) > 300
    for key in keys:
        found = index.keys_matches((key,))
        for concept in RULES.concepts.values():
            assert found.get(id(concept)) == concept.match_keys((key,)), (concept.name, key)
            assert found.get(id(concept.codes)) == concept.codes.any_match_keys((key,)), (concept.name, key)


def test_an_excluded_coding_gives_way_to_the_next_one() -> None:
    malignancy = RULES.concept("malignancy")
    excluded = sorted(malignancy.exclude.exact)[0] if malignancy.exclude.exact else None
    if excluded is None:
        excluded = next((s, p + "1") for s, p in malignancy.exclude.prefixes)
    counted = sorted(malignancy.codes.exact)[0] if malignancy.codes.exact else next(
        (s, p + "1") for s, p in malignancy.codes.prefixes)
    keys = (None, excluded, counted)
    assert malignancy.match_keys(keys) == counted[1]
    assert CodeIndex([malignancy]).keys_matches(keys) == {id(malignancy): counted[1]}
    assert RULES.code_index.keys_matches(keys).get(id(malignancy)) == counted[1]


@pytest.mark.parametrize("name", sorted(RULES.concepts))
def test_texts_joined_pass_whenever_one_of_them_matches(name: str) -> None:
    patterns = RULES.concept(name).text
    for start in range(0, len(TEXTS), 5):
        chunk = TEXTS[start:start + 5]
        if any(patterns.search(t) for t in chunk):
            assert patterns.may_match_joined(JOIN.join(chunk)), chunk


def test_a_literal_never_spans_two_joined_texts() -> None:
    patterns = build_text_patterns(["vertebral artery"])
    assert not patterns.may_match_joined(JOIN.join(["vertebral", "artery"]))
    assert patterns.may_match_joined(JOIN.join(["none", "Vertebral artery dissection"]))
