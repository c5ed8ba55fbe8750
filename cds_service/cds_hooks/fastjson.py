"""Fast JSON at the edge, never different from the slow path: reading a request body, writing a hook answer.

Reading. The fast reading of a request body is orjson's, used only when it is provably what the exact reader
(``validate.parse_json``: ``json.loads`` refusing repeated member names, NaN/Infinity, deep nesting, lone
surrogates) would return; otherwise that reader runs, so every refusal keeps its exact message.

Why: the exact reader calls a Python hook per JSON object and walks the body's brackets in Python, about 0.5 ms
for a typical 47 KB order-select call; orjson reads it in C in a fifth of that. Where orjson reads differently:
- a repeated member name: orjson keeps the last silently. Every member is written ``name: value`` and a colon
  outside a string is a member, so the body's colons (strings' colons included) equal those of the document
  re-encoded only when no member was lost; a repeat loses at least its own colon and adds none. The one way a
  string gains a colon in decoding is the escape ``\\u003a``: a body holding ``\\u003`` goes to the exact reader;
- integers beyond 64 bits: orjson makes them floats, which it writes (like Python) as ``9.2e+18``; only when the
  re-encoding holds a ``+`` (a single-byte search; time zones put ``+`` in text too) is the body searched for a
  run of 19 digits, and such a body goes to the exact reader (18 digits always fit; the run may be inside a
  string, which only costs the slow path);
- nesting: orjson's limit is 1024. The re-encoding is indented two spaces a level, so a line indented to the
  limit exists whenever the body reaches it; such bodies go to the exact reader, which counts exactly;
- NaN, Infinity, 1e400, lone surrogate escapes, a BOM, malformed input: orjson refuses them (and its encoder
  refuses any string holding a lone surrogate), so they go to the exact reader too.
Floats are read alike (both round correctly; checked on 350,000 random and halfway literals).

Writing. ``flask.jsonify`` (``json.dumps`` with sorted keys, ASCII only, compact, a final newline) took 0.04 ms
for a typical answer; orjson writes the same bytes in a tenth of that once its output is made ASCII, except
for what is detected here and left to ``jsonify``: floats below 1e-4 (orjson writes ``0.00001`` and ``1e-8``
where Python writes ``1e-05`` and ``1e-08``; checked on a million random floats), NaN and infinities (orjson
writes ``null``), integers beyond 64 bits, non-string keys and values orjson would encode its own way (dates,
dataclasses).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

EXACT: Any = object()  # "only the exact reader can answer": distinct from every JSON value, null included
_DIGIT_RUNS = bytes(ord("0") if chr(byte).isdigit() and byte < 128 else ord(" ") for byte in range(256))
_LONG_NUMBER = b"0" * 19


def read_fast(raw: bytes, max_depth: int) -> Any:
    """The document ``raw`` holds, or ``EXACT`` when the exact reader must decide (it then may refuse)."""
    if max_depth < 1 or (b"\\" in raw and b"\\u003" in raw):
        return EXACT
    try:
        raw.decode("utf-8")  # orjson checks UTF-8 too; Python's own check is the reference and costs little
        document = orjson.loads(raw)
        indented = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    except (UnicodeDecodeError, orjson.JSONDecodeError, orjson.JSONEncodeError):
        return EXACT
    if b"+" in indented and _LONG_NUMBER in raw.translate(_DIGIT_RUNS):  # maybe an integer beyond 64 bits
        return EXACT
    if indented.count(b":") != raw.count(b":"):  # a member name repeats
        return EXACT
    if b"\n" + b" " * (2 * max_depth) in indented:  # nested as deep as the limit, maybe deeper
        return EXACT
    return document


_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# Small floats (a one-digit negative exponent ends at a delimiter, unlike "41e-5f" in a uuid) and ``null`` as a
# value (NaN and infinities become null; a hook answer holds no real null). Text may match too: then jsonify
# writes it, which only costs time.
# Separate searches: one alternation was forty times slower than the three.
_SHORT_NEGATIVE_EXPONENT = re.compile(rb"e-[0-9][,\]}]")
_NULL_VALUE = re.compile(rb"[:,\[]null[,\]}]")
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x00-\x7e]")


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _escape(match: re.Match[str]) -> str:
    """``json.dumps``'s ASCII spelling of one character: ``\\u00e9``, a surrogate pair above U+FFFF."""
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"


def encode_like_jsonify(document: Mapping[str, Any], *, sort_keys: bool) -> bytes | None:
    """The bytes ``jsonify(document)`` sends with Flask's JSON provider in its compact, ASCII-only form (and
    ``sort_keys`` as given), or None when only ``jsonify`` can say."""
    try:
        encoded = orjson.dumps(document, default=_refuse, option=_OPTIONS | (orjson.OPT_SORT_KEYS * sort_keys))
    except orjson.JSONEncodeError:
        return None
    if (b"0.0000" in encoded or _SHORT_NEGATIVE_EXPONENT.search(encoded)
            or (b"null" in encoded and _NULL_VALUE.search(encoded))):
        return None
    if encoded.isascii() and b"\x7f" not in encoded:
        return encoded
    return _NOT_PRINTABLE_ASCII.sub(_escape, encoded.decode("utf-8")).encode("ascii")
