"""Step 2 of the request path: validate a hook call and turn it into a plain ``HookRequest``.

Input: the raw request bytes and the service definition. Output: ``HookRequest`` or a ``RequestRejected``
(400) naming the field. Strict on the envelope (CDS Hooks 2.0 #http-request, order-select/order-sign
context), tolerant inside ``draftOrders``: entries are kept raw and parsed one by one by ``clinical/orders.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from ..datafiles import first_error
from ..waits import LET_OTHERS_RUN_EVERY, let_others_run
from .errors import RequestRejected
from .fastjson import EXACT, read_fast
from .hook_definitions import HookDefinition


@dataclass(frozen=True)
class Limits:
    max_json_depth: int = 64
    max_draft_orders: int = 200
    max_prefetch_resources: int = 20_000


@dataclass(frozen=True)
class HookRequest:
    service_id: str
    hook: str
    hook_instance: str
    patient_id: str
    user_id: str
    encounter_id: str | None
    selections: tuple[str, ...] | None  # order-select only; None on order-sign
    draft_entries: tuple[Any, ...]  # each draftOrders.entry[].resource, unparsed (may be invalid)
    fhir_server: str | None
    prefetch: Mapping[str, Any]  # as sent: a missing key means "fetch it", None means "no data"
    fhir_authorization: Mapping[str, Any] | None = field(default=None, repr=False)  # never logged

    @property
    def access_token(self) -> str | None:
        if not self.fhir_authorization:
            return None
        return self.fhir_authorization.get("access_token")


def parse_json(raw: bytes, limits: Limits) -> Any:
    """Decode a JSON body; malformed, non-UTF-8 or too deeply nested input is a 400 with the reason.

    The fast reader (``fastjson.py``) answers most bodies below ``SHARED_STRINGS_FROM``; larger ones, the rest
    and every refusal are read here. A large body is read here because this reader shares equal strings and
    the fast reader's proofs re-encode the whole document: for 4 MB of JSON the fast path peaked at 52 MB
    traced, this one under 2.4 x the body (``tests/unit/test_worker_memory.py``)."""
    document = read_fast(raw, limits.max_json_depth) if len(raw) < SHARED_STRINGS_FROM else EXACT
    if document is not EXACT:
        return document
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRejected(f"body is not UTF-8 (byte {exc.start})", field="(body)") from exc
    if _nesting_exceeds(raw, limits.max_json_depth):
        raise RequestRejected(f"JSON nesting deeper than {limits.max_json_depth} levels", field="(body)")
    pairs_hook = _unique_keys if len(raw) < SHARED_STRINGS_FROM else _SharedStrings()
    try:
        document = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=_no_constant)
    except _Ambiguous as exc:
        raise RequestRejected(str(exc), field="(body)") from exc
    except json.JSONDecodeError as exc:
        raise RequestRejected(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                              field="(body)") from exc
    except ValueError as exc:  # e.g. an integer literal longer than Python's 4,300-digit conversion limit
        raise RequestRejected(f"unreadable JSON value: {str(exc)[:120]}", field="(body)") from exc
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(document):
        raise RequestRejected("a JSON string holds a lone UTF-16 surrogate escape (not valid Unicode)",
                              field="(body)")
    return document


class _Ambiguous(ValueError):
    """JSON that two readers could read differently: a repeated member name, NaN or Infinity."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Two ``context.patientId`` members would mean "the last one wins" here and maybe "the first" elsewhere."""
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _repeated(pairs)
    return document


def _repeated(pairs: list[tuple[str, Any]]) -> _Ambiguous:
    """The refusal of an object whose member names repeat, naming the first repeated one."""
    seen: set[str] = set()
    repeated = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
    return _Ambiguous(f"member {repeated[:60]!r} appears twice in one JSON object")


# A large chart repeats its code systems, codes, displays, references and dates thousands of times: from this
# body size on, equal string values of one body share one object (8,000 Conditions, 6.6 MB: 129,000 strings,
# 16,000 distinct; the document 23 MB instead of 32 MB). It costs about a quarter more parse time, so small
# bodies, where it saves little, are parsed as before. The memo lives for one parse only (no patient data kept).
SHARED_STRINGS_FROM = 256 * 1024


class _SharedStrings:
    """The pairs hook of one large parse: ``_unique_keys``, with equal string values sharing one object, and the
    worker's other calls let run every ``LET_OTHERS_RUN_EVERY`` objects (``waits.let_others_run``)."""

    def __init__(self) -> None:
        self.strings: dict[str, str] = {}
        self.objects = 0

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        document: dict[str, Any] = {}
        strings = self.strings
        for key, value in pairs:  # one pass: each member stored once, its string value already shared
            document[key] = strings.setdefault(value, value) if value.__class__ is str else value
        if len(document) != len(pairs):
            raise _repeated(pairs)
        self.objects += 1
        if self.objects % LET_OTHERS_RUN_EVERY == 0:
            let_others_run()
        return document


def _no_constant(name: str) -> Any:
    raise _Ambiguous(f"{name} is not a JSON number (RFC 8259)")


# "\ud800" escapes decode to strings that cannot be stored or logged as UTF-8; only bodies that contain such an
# escape (paired, as in emoji, or lone) pay for the full check.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(document: Any) -> bool:
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# Nesting is decided on the body's bytes (UTF-8 never encodes a non-ASCII character with an ASCII byte), reduced to
# the bytes that matter: quotes, backslashes and brackets.
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'"\\[]{}')  # bytes.translate's delete set
# An escape whose second character is neither a quote nor a bracket: removing it changes nothing (inside a string
# the pair is skipped; outside one both are ignored), and leaves the rare escapes that need the string regex.
_ESCAPE_PAIR = re.compile(rb'\\[^"\[\]{}]')
# A JSON string, unrolled so the engine runs its fast single-class loops and never backtracks; an unterminated
# string runs to the end.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_PARENS = bytes.maketrans(b"[{]}", b"(())")  # one kind of bracket: nesting is all that is asked
_DEPTH_STEP = tuple({ord("("): 1, ord(")"): -1}.get(b, 0) for b in range(256))
_SPLIT_CHUNK = 1 << 16  # bytes split at a time, so the pieces' list stays small whatever the body holds


def _nesting_exceeds(raw: bytes, limit: int) -> bool:
    """Bracket depth outside strings, linear and in C (json.loads would recurse, then crash).

    The body is reduced to quotes and brackets (``bytes.translate``); without escapes left, adjacent quotes go
    first (an empty string, or the gap between two strings: nothing outside a string is lost, and the quotes
    left still alternate), then the strings are the odd pieces between quotes, found by ``split`` a chunk at a
    time (a regex match per string cost three times as much). What is left outside strings is brackets only;
    ``_within`` answers for the usual body, and a running sum decides the rest, stopping at the first depth
    above the limit (2,000,000 '[' are rejected after 65)."""
    if b"\\" in raw:
        raw = _ESCAPE_PAIR.sub(b"", raw)
    structure = raw.translate(None, _NOT_STRUCTURE)
    if b"\\" in structure:
        outside = _JSON_STRING.sub(b"", structure)
    else:
        outside = b"".join(_outside_strings(structure.replace(b'""', b"")))
    brackets = outside.translate(_PARENS)
    if _within(brackets, limit):
        return False
    depths = accumulate(map(_DEPTH_STEP.__getitem__, brackets))
    return next(filter(limit.__lt__, depths), None) is not None


def _within(brackets: bytes, limit: int) -> bool:
    """True when ``brackets`` (parentheses only) is balanced and at most ``limit`` deep. Each round removes every
    innermost pair, one level (``replace`` does not rescan what it joins), so a sequence gone after k rounds was
    k deep; a round that removes nothing means unbalanced, or deeper than the rounds left: the caller's running
    sum decides. A C scan a level instead of a Python step a bracket: 29 -> 2 ms for 8,000 Conditions."""
    for _ in range(limit):
        if not brackets:
            return True
        reduced = brackets.replace(b"()", b"")
        if len(reduced) == len(brackets):
            return False
        brackets = reduced
    return not brackets


def _outside_strings(structure: bytes) -> Iterator[bytes]:
    """The parts of escape-free ``structure`` that lie outside strings, chunk by chunk (a string may span two)."""
    inside = 0
    for start in range(0, len(structure), _SPLIT_CHUNK):
        pieces = structure[start:start + _SPLIT_CHUNK].split(b'"')
        yield b"".join(pieces[inside::2])
        inside = (inside + len(pieces) - 1) % 2


def validate_request(body: Any, definition: HookDefinition, limits: Limits) -> HookRequest:
    problem = first_error("hook-request", body)
    if problem:
        raise RequestRejected(problem, field=problem.split(":", 1)[0])
    if body["hook"] != definition.hook:
        raise RequestRejected(
            f"hook: this service ({definition.id}) answers {definition.hook!r}, not {body['hook']!r}", field="hook")
    context = body["context"]
    problem = first_error("order-context", context, prefix="context")
    if problem:
        raise RequestRejected(problem, field=problem.split(":", 1)[0])
    if definition.hook == "order-select" and "selections" not in context:
        raise RequestRejected("context.selections: required for order-select", field="context.selections")
    entries = context["draftOrders"].get("entry", [])
    if len(entries) > limits.max_draft_orders:
        raise RequestRejected(f"context.draftOrders: {len(entries)} entries, more than {limits.max_draft_orders}",
                              field="context.draftOrders.entry")
    prefetch = body.get("prefetch") or {}
    _check_prefetch_size(prefetch, limits)
    selections = tuple(context["selections"]) if definition.hook == "order-select" else None
    return HookRequest(
        service_id=definition.id,
        hook=body["hook"],
        hook_instance=body["hookInstance"],
        patient_id=context["patientId"],
        user_id=context["userId"],
        encounter_id=context.get("encounterId"),
        selections=selections,
        draft_entries=tuple(entry.get("resource") for entry in entries),
        fhir_server=body.get("fhirServer"),
        prefetch=prefetch,
        fhir_authorization=body.get("fhirAuthorization"),
    )


def _check_prefetch_size(prefetch: Mapping[str, Any], limits: Limits) -> None:
    total = 0
    for key, value in prefetch.items():
        if isinstance(value, dict) and isinstance(value.get("entry"), list):
            total += len(value["entry"])
        elif value is not None:
            total += 1
        if total > limits.max_prefetch_resources:
            raise RequestRejected(
                f"prefetch: more than {limits.max_prefetch_resources} resources in total", field=f"prefetch.{key}")
