"""Request fuzzing shared by tests/fuzz/ and bench/fuzz.py: a corpus of real bodies, mutations, checks.

The corpus is what real clients send: every shared/external/ file whose manifest role is ``request`` or
``feedback`` (and ``context-only`` bodies as-is), plus an order-select and an order-sign call with full
prefetch for every fixture scenario. Hypothesis picks one and mutates it the ways clients and attackers
break bodies: dropped fields, wrong JSON types, huge strings and numbers, deep nesting, lone surrogates,
the wrong hook or service, bad UTF-8, truncation, the wrong Content-Type. The invariant is the service's
contract for bad input: never a 5xx, never a traceback, and every 4xx a JSON OperationOutcome with a
message.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import EXTERNAL

SELECT, SIGN = "spine-order-select", "spine-order-sign"
SERVICE_FOR_HOOK = {"order-select": SELECT, "order-sign": SIGN}
# Placeholders replaced after serialisation by what json.dumps cannot write: a nesting bomb (it would
# recurse) and an integer of 5,000 digits (more than int -> str allows by default since Python 3.11).
DEEP, BIG_INT = "\x00deep\x00", "\x00bigint\x00"
MAX_BODY = 11_000_000  # a little over the service's default limit: 413 is tested, memory is not wasted
TRACEBACK_MARKERS = (b"Traceback (most recent call last)", b'File "/', b"site-packages")


@dataclass(frozen=True)
class Seed:
    name: str
    path: str  # URL path it is normally sent to
    body: Any


class Case:
    """One request. Not a dataclass: Hypothesis prints dataclass fields, and ``raw`` can be 11 MB."""

    def __init__(self, path: str, raw: bytes, content_type: str | None, mutations: tuple[str, ...]) -> None:
        self.path, self.raw, self.content_type, self.mutations = path, raw, content_type, mutations

    def describe(self) -> str:
        return (f"POST {self.path[:200]} [{self.content_type}] {len(self.raw)} bytes; "
                f"mutations: {', '.join(self.mutations)}; starts {self.raw[:120]!r}")

    __repr__ = describe


@cache
def corpus() -> tuple[Seed, ...]:
    from cds_service.cli.fixtures import hook_request, list_scenarios, materialise

    manifest = json.loads((EXTERNAL / "manifest.json").read_text())["files"]
    seeds = []
    for name, meta in sorted(manifest.items()):
        if meta.get("role") not in {"request", "feedback", "context-only"} or not meta.get("valid_json"):
            continue
        body = json.loads((EXTERNAL / name).read_text())
        service = SERVICE_FOR_HOOK.get(meta.get("hook"), SELECT)
        path = f"/cds-services/{service}/feedback" if meta["role"] == "feedback" else f"/cds-services/{service}"
        seeds.append(Seed(f"external/{name}", path, body))
    today = date.today()
    for scenario_name in list_scenarios():
        scenario = materialise(scenario_name, today)
        for hook, service in SERVICE_FOR_HOOK.items():
            body = hook_request(scenario, hook, with_prefetch=True, fhir_server=None)
            seeds.append(Seed(f"fixture/{scenario_name}/{hook}", f"/cds-services/{service}", body))
    return tuple(seeds)


def paths_in(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (the root is ``()``)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths_in(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths_in(child, (*prefix, index))
    return found


def replace_at(document: Any, path: tuple[Any, ...], new: Any, *, delete: bool = False) -> Any:
    if not path:
        return new
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return document


wrong_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=50),
    st.builds(list), st.builds(dict),  # fresh objects: a later mutation must not change a shared one
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.none(),
                                                                                   max_size=3),
    st.just(BIG_INT),
    st.just(1e308 * 10),  # serialised as Infinity, which Python's json accepts and strict JSON does not
    st.sampled_from(["\ud800", "\udfff\ud800", "\u0000", "\u202e", "ServiceRequest/", "Patient/../x", "../../etc",
                     "http://169.254.169.254/latest/meta-data/", "%s%s%n", "' OR 1=1 --", "<script>", "{{x}}"]),
)
hook_names = st.sampled_from(["order-select", "order-sign", "patient-view", "", "ORDER-SELECT", "order-select ",
                              "encounter-start", "x" * 500])


@st.composite
def mutated_document(draw: st.DrawFn, body: Any) -> tuple[Any, list[str]]:
    document = copy.deepcopy(body)
    applied: list[str] = []
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3]))):
        candidates = paths_in(document)
        path = draw(st.sampled_from(candidates))
        where = "/".join(map(str, path)) or "(root)"
        kind = draw(st.sampled_from(["drop", "wrong-type", "huge-string", "deep", "duplicate", "hook", "unicode"]))
        if kind == "drop" and path:
            document = replace_at(document, path, None, delete=True)
        elif kind == "wrong-type":
            document = replace_at(document, path, draw(wrong_values))
        elif kind == "huge-string":
            document = replace_at(document, path, "x" * draw(st.sampled_from([1_000, 100_000, 1_000_000])))
        elif kind == "deep":
            document = replace_at(document, path, DEEP)
        elif kind == "duplicate" and path and isinstance(document_at(document, path[:-1]), list):
            items = document_at(document, path[:-1])
            item = items[path[-1]]
            copies = draw(st.sampled_from([1, 50, 300]))
            if len(json.dumps(item, default=str)) * copies > MAX_BODY:
                continue
            items.extend(copy.deepcopy(item) for _ in range(copies))
        elif kind == "hook" and isinstance(document, dict):
            document["hook"] = draw(hook_names)
            where = "hook"
        elif kind == "unicode" and isinstance(document_at(document, path), str):
            document = replace_at(document, path, document_at(document, path) + draw(st.text(max_size=20)))
        else:
            continue
        applied.append(f"{kind}@{where}"[:120])
    return document, applied


def document_at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


@st.composite
def cases(draw: st.DrawFn) -> Case:
    seed = draw(st.sampled_from(corpus()))
    document, applied = draw(mutated_document(seed.body))
    applied.insert(0, seed.name)
    ascii_only = draw(st.booleans())
    text = json.dumps(document, ensure_ascii=ascii_only)
    deep, big = json.dumps(DEEP), json.dumps(BIG_INT)
    if deep in text:
        depth = draw(st.sampled_from([60, 65, 1_000, 200_000]))
        text = text.replace(deep, "[" * depth + "1" + "]" * depth, 1).replace(deep, "1")
    text = text.replace(big, "7" * 5_000)
    if not ascii_only:
        applied.append("utf8-literal")
    raw = text.encode("utf-8", "surrogatepass")[:MAX_BODY]  # lone surrogates become invalid UTF-8 bytes
    # Weights keep most cases well-formed enough to reach the clinical engine, where most bugs live.
    byte_kind = draw(st.sampled_from(["none"] * 15 + ["bad-utf8", "truncate", "bom", "empty", "latin1"]))
    if byte_kind == "bad-utf8":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])) + raw[at:]
    elif byte_kind == "truncate":
        raw = raw[:draw(st.integers(0, max(0, len(raw) - 1)))]
    elif byte_kind == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif byte_kind == "empty":
        raw = b""
    elif byte_kind == "latin1":
        raw = text.encode("latin-1", "replace")
    if byte_kind != "none":
        applied.append(byte_kind)
    path = seed.path
    route = draw(st.sampled_from(["same"] * 16 + ["other-service", "unknown-service", "feedback", "weird-id"]))
    if route == "other-service":
        path = path.replace(SELECT, "\0").replace(SIGN, SELECT).replace("\0", SIGN)
    elif route == "unknown-service":
        path = "/cds-services/no-such-service"
    elif route == "feedback" and not path.endswith("/feedback"):
        path += "/feedback"
    elif route == "weird-id":
        path = "/cds-services/" + draw(st.sampled_from(["%00", "..%2f..%2fetc", "a" * 3000, "%F0%9F%92%A9", "%ff"]))
    if route != "same":
        applied.append(route)
    content_type = draw(st.sampled_from(["application/json"] * 14 + ["application/fhir+json",
                                         "application/json; charset=latin-1", "text/plain", None]))
    return Case(path, raw, content_type, tuple(applied))


def check_response(case: Case, status: int, body: bytes, content_type: str | None) -> None:
    """The contract for any input: no 5xx, no traceback, and 4xx bodies are OperationOutcomes with a message."""
    where = case.describe()
    assert status < 500, f"{status} for {where}: {body[:300]!r}"
    for marker in TRACEBACK_MARKERS:
        assert marker not in body, f"traceback-like text in the answer to {where}"
    assert (content_type or "").startswith("application/json"), f"{status} {content_type} for {where}"
    answer = json.loads(body)
    if status >= 400:
        assert answer.get("resourceType") == "OperationOutcome", f"{status} without OperationOutcome for {where}"
        message = answer["issue"][0]["diagnostics"]
        assert isinstance(message, str) and message.strip(), f"{status} with an empty message for {where}"
    elif not case.path.endswith("/feedback"):
        assert isinstance(answer.get("cards"), list), f"200 without cards for {where}"


def has_cards(body: bytes) -> bool:
    """A 200 whose answer holds at least one card: the clinical engine rated something."""
    return b'"cards":[{' in body.replace(b" ", b"")


def fuzz_test(send: Callable[[Case], tuple[int, bytes, str | None]], stats: Counter[str], max_examples: int,
              reached: Callable[[bytes], bool] = has_cards,
              failures: list[tuple[Case, str]] | None = None, derandomize: bool = False) -> Callable[[], None]:
    """A Hypothesis test over ``cases()``: ``send`` performs one request; ``stats`` counts outcomes.

    ``reached(body)`` says whether the last hook call got to the clinical engine (a spine order
    recognised and patient data gathered); in-process runs know it from the pipeline, live runs count
    200s with cards. With a ``failures`` list, broken contracts are collected there and the run goes on
    (the long run wants every distinct bug, not the first one shrunk); without it the first one fails.
    ``derandomize`` makes CI see the same cases on every run (no flaky failures); the long run explores.
    """

    @settings(max_examples=max_examples, deadline=None, database=None, print_blob=True, derandomize=derandomize,
              suppress_health_check=list(HealthCheck))
    @given(cases())
    def run(case: Case) -> None:
        status, body, content_type = send(case)
        stats["requests"] += 1
        stats[f"status {status}"] += 1
        if status == 200 and not case.path.endswith("/feedback"):
            if reached(body):
                stats["reached clinical engine"] += 1
            if has_cards(body):
                stats["200 with cards"] += 1
        try:
            check_response(case, status, body, content_type)
        except AssertionError as broken:
            if failures is None:
                raise
            stats["contract broken"] += 1
            failures.append((case, str(broken)))

    return run
