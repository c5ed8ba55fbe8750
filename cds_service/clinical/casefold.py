"""A case-insensitive phrase pattern rewritten for lower-cased ASCII text: the same matches at the same places,
at about half the cost.

Why: a case-insensitive regular expression lower-cases each character it compares through a Unicode lookup, and
the fact rules search every text with case-insensitive phrases. For an ASCII text, a character matches a pattern
letter case-insensitively exactly when both lower-case to the same letter (no ASCII letter folds to anything but
its other case), and lower-casing an ASCII text keeps every position. So the pattern with its letters
lower-cased, searched case-sensitively in the lower-cased text, finds the same spans. It is compiled with
``re.ASCII`` too unless it holds ``\\s`` or ``\\S`` (on ASCII text only ``\\s`` differs: Unicode counts the
separators ``\\x1c``-``\\x1f`` as space), so that each word bound is a table lookup, not a Unicode one.

The rewrite is made only where that is plain to see in the pattern's text: letters outside escapes are
lower-cased; the escapes ``\\b \\B \\d \\D \\w \\W \\s \\S`` and escaped punctuation are kept; a character range
is kept when it holds no letter and lower-cased when it runs between two letters of one case. Anything else (a
range such as ``[A-z]``, a hexadecimal or named escape, a back-reference, inline flags, named groups, a
non-ASCII character) gives None, and the case-insensitive pattern is searched as before.
"""

from __future__ import annotations

import re
import string

_KEPT_ESCAPES = frozenset("bBdDwWsS") | frozenset(string.punctuation) | {" "}
_LETTERS = frozenset(string.ascii_letters)


def folded(pattern: re.Pattern[str] | None) -> re.Pattern[str] | None:
    """``pattern`` (case-insensitive) for lower-cased ASCII text, case-sensitive; None when not rewritten."""
    if pattern is None or not pattern.flags & re.IGNORECASE or not pattern.pattern.isascii():
        return None
    source = _lowered(pattern.pattern)
    if source is None:
        return None
    flags = pattern.flags & ~re.IGNORECASE
    if "\\s" not in source and "\\S" not in source:  # ASCII \s lacks \x1c-\x1f; \b \w \d agree
        flags = (flags & ~re.UNICODE) | re.ASCII
    try:
        return re.compile(source, flags)
    except re.error:  # pragma: no cover - the rewrite keeps the syntax; a surprise only keeps the original
        return None


def searched(pattern: re.Pattern[str], rewritten: re.Pattern[str] | None,
             text: str) -> tuple[re.Pattern[str], str]:
    """What to search and where: ``rewritten`` (``folded(pattern)``) in the lower-cased text when there is one
    and the text is ASCII, else ``pattern`` in the text itself. Match positions are the same either way."""
    if rewritten is not None and text.isascii():
        return rewritten, text.lower()
    return pattern, text


def _lowered(source: str) -> str | None:
    out: list[str] = []
    position, end = 0, len(source)
    while position < end:
        char = source[position]
        if char == "\\":
            escaped = source[position + 1:position + 2]
            if escaped not in _KEPT_ESCAPES:
                return None
            out.append(char + escaped)
            position += 2
        elif char == "[":
            closing = _class_end(source, position)
            body = None if closing is None else _class_lowered(source[position + 1:closing])
            if closing is None or body is None:
                return None
            out.append("[" + body + "]")
            position = closing + 1
        elif char == "(" and source.startswith("(?", position) and not source.startswith(
                ("(?:", "(?=", "(?!", "(?<=", "(?<!", "(?>"), position):
            return None  # inline flags, named groups, conditionals, comments
        else:
            out.append(char.lower())
            position += 1
    return "".join(out)


def _class_end(source: str, start: int) -> int | None:
    """The index of the ``]`` closing the class opened at ``start`` (a ``]`` first in the class is a member)."""
    position = start + 1
    if source.startswith("^", position):
        position += 1
    if source.startswith("]", position):
        position += 1
    while position < len(source):
        if source[position] == "\\":
            position += 2
        elif source[position] == "]":
            return position
        else:
            position += 1
    return None


def _class_lowered(body: str) -> str | None:
    """A class's members lower-cased, or None when a range or escape in it is not plainly safe."""
    out: list[str] = []
    position = 0
    if body.startswith("^"):
        out.append("^")
        position = 1
    while position < len(body):
        if body[position] == "\\":
            escaped = body[position + 1:position + 2]
            if escaped not in _KEPT_ESCAPES:
                return None
            member = body[position:position + 2]
            position += 2
        else:
            member = body[position]
            position += 1
        if body.startswith("-", position) and position + 1 < len(body) and len(member) == 1:
            last = body[position + 1]
            if last == "\\" or not _safe_range(member, last):
                return None
            out.append(f"{member.lower()}-{last.lower()}")
            position += 2
        else:
            out.append(member.lower() if len(member) == 1 else member)
    return "".join(out)


def _safe_range(first: str, last: str) -> bool:
    """No letter between the two, or both letters of one case (then lower-casing both keeps the same letters)."""
    if first in _LETTERS and last in _LETTERS:
        return first.islower() == last.islower()
    return not any(chr(code) in _LETTERS for code in range(ord(first), ord(last) + 1))
