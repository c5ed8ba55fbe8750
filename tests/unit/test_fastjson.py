"""The fast body reader answers only what the exact reader would answer, and leaves every refusal to it."""

import json
from datetime import date
from typing import Any

import pytest
from flask import Flask, jsonify
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.cds_hooks import validate
from cds_service.cds_hooks.errors import RequestRejected
from cds_service.cds_hooks.fastjson import EXACT, encode_like_jsonify, read_fast
from cds_service.cds_hooks.validate import Limits, parse_json

LIMITS = Limits()


def exact(raw: bytes, limits: Limits = LIMITS) -> Any:
    """What the exact reader alone answers: the document, or the refusal's message."""
    original = validate.read_fast
    validate.read_fast = lambda _raw, _depth: EXACT
    try:
        return parse_json(raw, limits)
    except RequestRejected as refused:
        return refused
    finally:
        validate.read_fast = original


def typed(value: Any) -> Any:
    """``1 == 1.0 == True`` in Python: compare documents with their JSON types (and -0.0) kept apart."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return type(value).__name__, repr(value)


def assert_agrees(raw: bytes, limits: Limits = LIMITS) -> Any:
    """``parse_json`` (fast path on) answers as the exact reader does: same document, or same message."""
    reference = exact(raw, limits)
    fast = read_fast(raw, limits.max_json_depth)
    if isinstance(reference, RequestRejected):
        assert fast is EXACT, f"fast reader accepted what the exact reader refuses: {reference.message}"
        with pytest.raises(RequestRejected) as refused:
            parse_json(raw, limits)
        assert refused.value.message == reference.message
        return reference
    if fast is not EXACT:
        assert typed(fast) == typed(reference)
    assert typed(parse_json(raw, limits)) == typed(reference)
    return reference


@pytest.mark.parametrize("raw, message", [
    (b'{"a": 1, "a": 2}', "member 'a' appears twice in one JSON object"),
    (b'{"x": {"y": {"a": 1, "b": 2, "a": 3}}}', "member 'a' appears twice"),  # nested object
    (b'{"entry": [{"resource": {}}, {"id": "1", "id": "2"}]}', "member 'id' appears twice"),  # inside an array
    (b'[{"a": 1}, {"a": 1, "a": 1}]', "member 'a' appears twice"),  # same value twice is still ambiguous
    (b'{"a": 1, "\\u0061": 2}', "member 'a' appears twice"),  # two spellings of one name
    (b'{"\\u0061": 1, "\\u0061": 2}', "member 'a' appears twice"),
    (b'{"a:b": 1, "a:b": 2}', "member 'a:b' appears twice"),  # a colon inside the repeated name
    (b'{"a\\u003ab": 1, "a:b": 2}', "member 'a:b' appears twice"),  # an escaped colon
    (b'{"k": "x:y", "k": "x:y"}', "member 'k' appears twice"),
    (b'{"k": 1, "k": 2, "x": "\\u003a"}', "member 'k' appears twice"),  # the escape's colon makes up the count
    (b'{"k": 1, "k": 2, "x": "\\u003A"}', "member 'k' appears twice"),
    (b'[NaN]', "NaN is not a JSON number"),
    (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
    (b'{"a": "\\ud800"}', "lone UTF-16 surrogate"),
    (b'{"\\udc00": 1}', "lone UTF-16 surrogate"),
    (b'["\\udc00\\ud800"]', "lone UTF-16 surrogate"),  # a pair in the wrong order
    (b'["\\ud800\\u0041"]', "lone UTF-16 surrogate"),
    (b'["\xed\xa0\x80"]', "body is not UTF-8 (byte 2)"),  # an encoded surrogate
    (b'["\xc0\xaf"]', "body is not UTF-8 (byte 2)"),  # overlong
    (b"\xef\xbb\xbf{}", "malformed JSON: Unexpected UTF-8 BOM"),
    (b"[" * 65 + b"]" * 65, "JSON nesting deeper than 64 levels"),
    (b"[" * 64 + b"{}" + b"]" * 64, "JSON nesting deeper than 64 levels"),  # the 65th level is empty
    (b'{"a": ' + b"1" * 5000 + b"}", "unreadable JSON value"),
    (b"", "malformed JSON: Expecting value at line 1 column 1"),
    (b'{"a": 1,}', "malformed JSON: Expecting property name enclosed in double quotes"),
])
def test_refusals_keep_the_exact_readers_message(raw: bytes, message: str) -> None:
    refused = assert_agrees(raw)
    assert isinstance(refused, RequestRejected)
    assert message in refused.message


@pytest.mark.parametrize("raw", [
    b"[" * 64 + b"]" * 64,  # exactly the limit
    b"[" * 63 + b"{}" + b"]" * 63,
    b'{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]}',  # a name may repeat in different objects
    b'{"a": "1:2:3", "url": "https://x/y?z=1:2", "b": "\\u00e9\\ud83d\\ude00"}',
    b'{"a": 123456789012345678, "b": -123456789012345678, "c": 1234567890123456789}',  # the last: exact reader
    b'{"a": 18446744073709551616}',  # beyond 64 bits: an int, never a float
    b'{"t": "2026-12-01T09:30:00+01:00", "a": -9223372036854775809, "b": 1e300}',
    b'{"a": 123456789012345678901234567890.5}',  # a float: Python and orjson read it alike
    b'{"a": 1e400, "b": -0.0, "c": -0, "d": 1E-5, "e": 0.1}',  # 1e400 is inf to json.loads
    b'"\\\\u003a"',  # an escaped backslash before u003a: no colon, exact reader anyway
    b"null", b"0", b'""', b"[]", b"{}", b" \t\r\n[1] \n",
])
def test_accepted_bodies_read_alike(raw: bytes) -> None:
    document = assert_agrees(raw)
    assert not isinstance(document, RequestRejected)


def test_the_typical_call_takes_the_fast_path() -> None:
    raw = json.dumps({"hook": "order-select", "context": {"patientId": "p1", "n": [1.5, 2, None, True]},
                      "prefetch": {"p": {"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01"}}}).encode()
    assert read_fast(raw, 64) == json.loads(raw)


def test_long_digit_runs_in_text_keep_the_fast_path() -> None:
    raw = b'{"id": "12345678901234567890123", "value": 12345678901234567, "at": "2026-12-01T09:30:00-05:00"}'
    assert typed(read_fast(raw, 64)) == typed(json.loads(raw))


def test_depth_limit_follows_the_setting() -> None:
    for depth in range(1, 8):
        raw = b"[" * depth + b"]" * depth
        for limit in range(1, 8):
            assert_agrees(raw, Limits(max_json_depth=limit))


_KEYS = st.sampled_from(["a", "b", "\u0061", "a:b", "\u00e9", "id", ""])
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
    st.sampled_from(["\ud800", "\udc00x", "\ud83d\ude00", "\x00\x7f", ":"]),  # lone and paired surrogates
)


def _encode(value: Any, draw: Any) -> str:
    """JSON text written by hand so it can repeat a member name and spell characters as escapes."""
    if isinstance(value, list) and value and value[0] == "<object>":
        members = [f"{_string(key, draw)}:{_encode(item, draw)}" for key, item in value[1:]]
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode(item, draw) for item in value) + "]"
    if isinstance(value, str):
        return _string(value, draw)
    return json.dumps(value)


def _string(text: str, draw: Any) -> str:
    return json.dumps(text, ensure_ascii=draw(st.booleans()))


_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(st.tuples(_KEYS, inner), max_size=4).map(lambda members: ["<object>", *members]),
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_fast_and_exact_readers_agree(data: st.DataObject) -> None:
    value = data.draw(_VALUES)
    raw = _encode(value, data.draw).encode("utf-8", "surrogatepass")
    assert_agrees(raw, Limits(max_json_depth=data.draw(st.integers(min_value=1, max_value=6))))


_ANSWER_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats()
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=6) | st.sampled_from(["\x7f", "\u2028", "\U0001F600"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=16,
)


@pytest.mark.parametrize("sort_keys", [False, True])
@settings(max_examples=300, deadline=None)
@given(document=st.dictionaries(st.text(max_size=4), _ANSWER_VALUES, max_size=4))
def test_answers_are_the_bytes_jsonify_writes(document: dict[str, Any], sort_keys: bool) -> None:
    app = Flask(__name__)
    app.json.sort_keys = sort_keys
    with app.app_context():
        expected = jsonify(document).get_data()
    encoded = encode_like_jsonify(document, sort_keys=sort_keys)
    assert encoded is None or encoded == expected


@pytest.mark.parametrize("value, fast", [
    (0.1, True), (1e16, True), (2.5, True), ("caf\u00e9 \u2028 \U0001F600 \x7f \x00\n\"\\", True),
    ({"b": 1, "a": [True, 1.5, 2**64 - 1]}, True),
    (1e-05, False), (2.5e-08, False), (2**64, False), (-(2**63) - 1, False),  # Python spells them otherwise
    (float("nan"), False), (float("-inf"), False), (None, False), ({1: "x"}, False), (date(2026, 12, 1), False),
])
def test_answer_encoding_edge_values(value: Any, fast: bool) -> None:
    app = Flask(__name__)
    app.json.sort_keys = False
    with app.app_context():
        expected = jsonify({"v": value}).get_data()
    encoded = encode_like_jsonify({"v": value}, sort_keys=False)
    assert encoded == (expected if fast else None)


def test_the_service_sends_its_answers_as_jsonify_would(tmp_path: Any) -> None:
    from cds_service import create_app
    from cds_service.settings import load_settings
    from cds_service.web import answer

    app = create_app(load_settings({}, data_dir=str(tmp_path)))
    document = {"cards": [{"uuid": "9533e2ea-c41e-5fdd-a935-e4f771d40e01", "summary": "Dose \u2265 5 mg \u2014 ok",
                           "n": 3, "x": 0.25, "detail": "not null"}]}
    with app.app_context():
        assert answer(document).get_data() == jsonify(document).get_data()
        assert encode_like_jsonify(document, sort_keys=app.json.sort_keys) == jsonify(document).get_data()
        app.debug = True  # jsonify indents in debug mode: the fast encoder stands aside
        assert answer(document).get_data() == jsonify(document).get_data()
