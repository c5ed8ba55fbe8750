"""Request validation: strict on the envelope, tolerant inside draftOrders, every rejection names its field."""

import copy
import json
import random
from typing import Any

import pytest

from cds_service.cds_hooks.errors import RequestRejected
from cds_service.cds_hooks.hook_definitions import load_hook_definitions
from cds_service.cds_hooks.validate import Limits, _nesting_exceeds, parse_json, validate_request
from tests.helpers import EXTERNAL, REPO

DEFINITIONS = load_hook_definitions(REPO / "hooks")
SELECT = DEFINITIONS["spine-order-select"]
SIGN = DEFINITIONS["spine-order-sign"]
LIMITS = Limits()


def sandbox_pama() -> dict[str, Any]:
    return json.loads((EXTERNAL / "sandbox-pama-order-select.json").read_text())


def test_sandbox_pama_request_validates_without_bundle_type() -> None:
    body = sandbox_pama()
    assert "type" not in body["context"]["draftOrders"]
    request = validate_request(body, SELECT, LIMITS)
    assert request.hook == "order-select"
    assert request.patient_id == body["context"]["patientId"]
    assert request.selections == ("ServiceRequest/example-request-id",)
    assert request.draft_entries[0]["resourceType"] == "ServiceRequest"
    assert request.prefetch == {}


def test_order_sign_has_no_selections_and_keeps_invalid_entries_raw() -> None:
    body = json.loads((EXTERNAL / "sandbox-rx-order-sign-dstu2-default.json").read_text())
    request = validate_request(body, SIGN, LIMITS)
    assert request.selections is None
    assert request.draft_entries[0]["resourceType"] == "MedicationOrder"  # DSTU2: parsed (and skipped) later


def test_epic_request_with_vendor_extension_is_accepted() -> None:
    body = json.loads((EXTERNAL / "epic-apporchard-order-select-request.json").read_text())
    request = validate_request(body, SELECT, LIMITS)
    assert request.fhir_authorization is not None
    assert "REDACTED" not in repr(request)  # the token is kept out of repr (and so out of logs)


@pytest.mark.parametrize("change, field", [
    (lambda b: b.pop("hook"), "(body): 'hook' is a required property"),
    (lambda b: b.pop("hookInstance"), "'hookInstance' is a required property"),
    (lambda b: b.pop("context"), "'context' is a required property"),
    (lambda b: b.update(hook="order-sign"), "hook: this service (spine-order-select) answers 'order-select'"),
    (lambda b: b.update(hook=7), "hook: 7 is not of type 'string'"),
    (lambda b: b["context"].pop("draftOrders"), "context: 'draftOrders' is a required property"),
    (lambda b: b["context"].pop("selections"), "context.selections: required for order-select"),
    (lambda b: b["context"].update(selections=[]), "context.selections"),
    (lambda b: b["context"].update(userId="COREPRACTITIONER1"), "context.userId"),
    (lambda b: b["context"]["draftOrders"].update(resourceType="Parameters"), "context.draftOrders.resourceType"),
    (lambda b: b["context"]["draftOrders"].update(entry="x"), "context.draftOrders.entry"),
    (lambda b: b.update(fhirAuthorization={"access_token": "t", "token_type": "Bearer"}) or b.pop("fhirServer"),
     "'fhirServer' is a dependency of 'fhirAuthorization'"),
    (lambda b: b.update(fhirAuthorization={"access_token": "t", "token_type": "MAC"}), "token_type"),
    (lambda b: b.update(fhirServer="file:///etc/passwd"), "fhirServer"),
    (lambda b: b.update(prefetch=[]), "prefetch: [] is not of type 'object'"),
])
def test_envelope_violations_are_400_naming_the_field(change: Any, field: str) -> None:
    body = sandbox_pama()
    change(body)
    with pytest.raises(RequestRejected) as error:
        validate_request(body, SELECT, LIMITS)
    assert error.value.status == 400
    assert field in error.value.message


def test_limits_on_draft_orders_and_prefetch() -> None:
    body = sandbox_pama()
    entry = body["context"]["draftOrders"]["entry"][0]
    body["context"]["draftOrders"]["entry"] = [copy.deepcopy(entry) for _ in range(3)]
    with pytest.raises(RequestRejected, match="3 entries, more than 2"):
        validate_request(body, SELECT, Limits(max_draft_orders=2))
    body = sandbox_pama()
    body["prefetch"] = {"observations": {"resourceType": "Bundle", "entry": [{}] * 11}}
    with pytest.raises(RequestRejected, match="more than 10 resources"):
        validate_request(body, SELECT, Limits(max_prefetch_resources=10))


@pytest.mark.parametrize("raw, message", [
    (b'{"hook": ', "malformed JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[" * 65 + b"]" * 65, "nesting deeper than 64"),
    (b'{"a": "' + b"[" * 1000 + b'"}', None),  # brackets inside a string are not nesting
    (b'{"a": ' + b"9" * 5000 + b"}", "unreadable JSON value"),  # found by the fuzzer: was a 500
    (b'{"a": "\\ud800x"}', "lone UTF-16 surrogate"),  # found by the fuzzer: a 500 when stored
])
def test_parse_json(raw: bytes, message: str | None) -> None:
    if message is None:
        assert parse_json(raw, LIMITS) == {"a": "[" * 1000}
        return
    with pytest.raises(RequestRejected, match=message):
        parse_json(raw, LIMITS)


def test_paired_surrogate_escapes_are_ordinary_text() -> None:
    assert parse_json(b'{"a": "\\ud83d\\ude00"}', LIMITS) == {"a": "\U0001F600"}


def test_deep_nesting_is_rejected_in_linear_time() -> None:
    raw = b"[" * 2_000_000
    with pytest.raises(RequestRejected, match="nesting"):
        parse_json(raw, LIMITS)


def _reference_depth_exceeds(raw: bytes, limit: int) -> bool:
    """Byte by byte, as a JSON reader walks: strings (with their escapes) skipped, a running bracket depth."""
    depth, inside, escaped = 0, False, False
    for byte in raw:
        if inside:
            escaped, inside = (False, True) if escaped else (byte == ord("\\"), byte != ord('"'))
        elif byte == ord('"'):
            inside = True
        elif byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        elif byte in b"]}":
            depth -= 1
    return False


def test_the_nesting_check_agrees_with_a_byte_by_byte_walk() -> None:
    """Balanced or not, with strings, escapes and empty strings anywhere: the shortcuts never change the answer."""
    rng = random.Random(16)
    alphabet = [b"[", b"]", b"{", b"}", b'"', b'""', b"\\", b'\\"', b"a", b":", b","]
    for _ in range(4_000):
        raw = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        for limit in (1, 2, 3, 6):
            assert _nesting_exceeds(raw, limit) == _reference_depth_exceeds(raw, limit), (raw, limit)
    nested = b'{"a": [' * 30 + b'""' + b"]}" * 30
    assert not _nesting_exceeds(nested, 60) and _nesting_exceeds(nested, 59)
