"""Order recognition: every external request file, each code system, text fallback, selections, bad entries."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cds_service.cds_hooks.validate import HookRequest
from cds_service.clinical.orders import (
    InvalidCatalogue,
    SkippedEntry,
    build_catalogue,
    load_order_catalogue,
    recognise_orders,
)
from cds_service.datafiles import read_json
from tests.helpers import EXTERNAL

CPT, LOINC, SCT = "http://www.ama-assn.org/go/cpt", "http://loinc.org", "http://snomed.info/sct"
CATALOGUE = load_order_catalogue()


def _request(entries: list[Any], selections: tuple[str, ...] | None = None, patient_id: str = "p") -> HookRequest:
    hook = "order-sign" if selections is None else "order-select"
    return HookRequest(service_id="svc", hook=hook, hook_instance="h", patient_id=patient_id, user_id="Practitioner/u",
                       encounter_id=None, selections=selections, draft_entries=tuple(entries), fhir_server=None,
                       prefetch={})


def _from_file(name: str) -> HookRequest:
    body = json.loads((EXTERNAL / name).read_text())
    context = body.get("context", {})
    entries = [e.get("resource") for e in (context.get("draftOrders") or {}).get("entry", [])]
    selections = tuple(context["selections"]) if "selections" in context else None
    return _request(entries, selections, context.get("patientId", "p"))


def _sr(code: dict | None = None, rid: str = "a", **extra: Any) -> dict:
    resource = {"resourceType": "ServiceRequest", "id": rid, "status": "draft", "intent": "plan",
                "subject": {"reference": "Patient/p"}, **extra}
    if code is not None:
        resource["code"] = code
    return resource


def _one(code: dict, **extra: Any):
    result = recognise_orders(_request([_sr(code, **extra)]), CATALOGUE)
    assert len(result.orders) == 1, result
    return result.orders[0]


# name -> (procedures with regions, not_relevant, number of skipped entries)
EXPECTED = {
    "pama-connectathon-scenario-01-order-select-request.json":
        ([("ct-spine-without-and-with-contrast", "lumbar")], (), 0),
    "pama-connectathon-scenario-02-order-select-request.json": ([], ("ServiceRequest/example-MRI-59879846",), 0),
    "pama-ig-archive-order-select-request-superseded.json": ([], (), 0),
    "pama-ig-order-select-request.json": ([], ("ServiceRequest/example-MRI-59879846",), 0),
    "sandbox-pama-order-select-initial-empty.json": ([], ("ServiceRequest/example-request-id",), 0),
    # reconstructed: its order's subject (the sandbox constant) is not the context's placeholder patient
    "sandbox-pama-order-select-smart-launch.json": ([], (), 1),
    "sandbox-pama-order-select.json": ([("mri-spine-without-contrast", "lumbar")], (), 0),
    "sandbox-rx-order-select-r4.json": ([], (), 0),
    "sandbox-rx-order-sign-dstu2-default.json": ([], (), 0),
    "sandbox-services-stub-dummy1-order-select.json": ([], ("ServiceRequest/example-MRI-59879846",), 0),
    "sandbox-services-stub-dummy3-order-select.json": ([], (), 1),
    "sandbox-services-stub-s1r1-order-select.json": ([("ct-spine-without-and-with-contrast", "lumbar")], (), 0),
    "sandbox-services-stub-s1r2-order-select.json": ([], ("ServiceRequest/example-MRI-59879846",), 0),
    "sandbox-services-stub-s2r2-order-select.json": ([], ("ServiceRequest/example-MRI-59879846",), 0),
    "sandbox-services-stub-s2r3-order-select.json": ([], ("ServiceRequest/example-MRI-59879846",), 0),
    "sandbox-tab-reclick-order-select-no-draftorders.json": ([], (), 0),
    "spec-request-example-patient-view.json": ([], (), 0),
    "spec-request-extension-example.json": ([], (), 0),
    "epic-apporchard-order-select-request.json": ([], (), 0),
}


def test_every_external_request_file_is_covered():
    manifest = json.loads((EXTERNAL / "manifest.json").read_text())
    assert sorted(n for n, m in manifest["files"].items() if m["role"] == "request") == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_external_request_files(name):
    procedures, not_relevant, skipped = EXPECTED[name]
    result = recognise_orders(_from_file(name), CATALOGUE)
    assert [(o.procedure, o.region) for o in result.orders] == procedures
    assert result.not_relevant == not_relevant
    assert len(result.skipped) == skipped


def test_sandbox_pama_order_in_detail():
    (order,) = recognise_orders(_from_file("sandbox-pama-order-select.json"), CATALOGUE).orders
    assert order.reference == "ServiceRequest/example-request-id"
    assert (order.kind, order.recognised_by, order.requires_fracture_context) == ("imaging", "code", False)
    assert order.matched_code["code"] == "72148" and order.matched_code["system"] == CPT
    assert order.display == "MRI lumbar spine without contrast"  # the catalogue's short name, not the client's
    assert order.reason_codes[0] == {"system": SCT, "code": "426646004",
                                     "display": "Compression fracture of lumbar spine (disorder)"}
    assert len(order.reason_codes) == 2
    assert order.resource["id"] == "example-request-id"


def test_dummy3_is_skipped_with_a_reason_but_no_values():
    (skipped,) = recognise_orders(_from_file("sandbox-services-stub-dummy3-order-select.json"), CATALOGUE).skipped
    assert skipped == SkippedEntry(0, "ServiceRequest", "invalid ServiceRequest: code.coding.0.code "
                                   "(string_pattern_mismatch); code.text (string_pattern_mismatch)")


def test_order_select_rates_only_exact_selections():
    entries = [_sr({"coding": [{"system": CPT, "code": "72148"}]}, rid="one"),
               _sr({"coding": [{"system": CPT, "code": "72131"}]}, rid="two")]
    selected = recognise_orders(_request(entries, ("ServiceRequest/two",)), CATALOGUE)
    assert [o.reference for o in selected.orders] == ["ServiceRequest/two"]
    assert recognise_orders(_request(entries, ("ServiceRequest/TWO", "two")), CATALOGUE).orders == ()
    signed = recognise_orders(_request(entries), CATALOGUE)
    assert [o.procedure for o in signed.orders] == ["mri-spine-without-contrast", "ct-spine-without-contrast"]


@pytest.mark.parametrize(("system", "code", "procedure", "region", "fracture_context"), [
    (CPT, "72149", "mri-spine-with-contrast", "lumbar", False),
    (CPT, "72157", "mri-spine-without-and-with-contrast", "thoracic", False),
    (CPT, "72125", "ct-spine-without-contrast", "cervical", False),
    (CPT, "72100", "radiography-spine", "lumbar", False),
    (CPT, "22513", "vertebral-augmentation", "thoracic", False),
    (CPT, "22524", "vertebral-augmentation", "lumbar", False),
    (CPT, "78306", "bone-scan-whole-body", None, True),
    (CPT, "78830", "spect-spine", None, True),
    (CPT, "78815", "fdg-pet-ct-skull-base-to-mid-thigh", None, True),
    (CPT, "77080", "dxa", None, True),
    (CPT, "77086", "dxa-vfa", None, True),
    (CPT, "20982", "percutaneous-ablation-spine", None, True),
    (CPT, "77300", "radiation-therapy", None, True),
    (LOINC, "30679-5", "mri-spine-without-contrast", "lumbar", False),
    (LOINC, "24981-3", "mri-spine-without-and-with-contrast", "thoracic", False),
    (LOINC, "36402-6", "ct-spine-without-and-with-contrast", "lumbar", False),
    (LOINC, "39818-0", "bone-scan-whole-body", None, True),
    (SCT, "308482002", "surgical-consultation", None, True),
    (SCT, "306256000", "radiation-oncology-consultation", None, True),
    (SCT, "392010000", "vertebral-augmentation", None, False),
    ("urn:oid:2.16.840.1.113883.6.96", "438791002", "percutaneous-ablation-spine", None, True),
])
def test_codes(system, code, procedure, region, fracture_context):
    order = _one({"coding": [{"system": system, "code": code}]})
    assert (order.procedure, order.region, order.requires_fracture_context) == (procedure, region, fracture_context)
    assert order.recognised_by == "code"


@pytest.mark.parametrize(("system", "code"), [(CPT, "71275"), (LOINC, "36801-9"), (CPT, "72159"), (SCT, "308447003")])
def test_non_spine_codes_are_not_relevant(system, code):
    result = recognise_orders(_request([_sr({"coding": [{"system": system, "code": code}]})]), CATALOGUE)
    assert result.orders == () and result.not_relevant == ("ServiceRequest/a",)


@pytest.mark.parametrize(("text", "procedure", "region"), [
    ("MRI lumbar spine without contrast", "mri-spine-without-contrast", "lumbar"),
    ("MR thoracic spine w/wo", "mri-spine-without-and-with-contrast", "thoracic"),
    ("CT L-spine w/o contrast", "ct-spine-without-contrast", "lumbar"),
    ("Kyphoplasty T12", "vertebral-augmentation", None),
    ("CT-guided biopsy of L2 vertebra", "image-guided-biopsy-spine", None),
    ("Referral to neurosurgery", "surgical-consultation", None),
    ("PET/CT skull base to mid-thigh", "fdg-pet-ct-skull-base-to-mid-thigh", None),
])
def test_text_is_the_last_resort(text, procedure, region):
    order = _one({"coding": [{"system": "urn:local", "code": "X1"}], "text": text})
    assert (order.procedure, order.region, order.recognised_by, order.matched_code) == (procedure, region, "text", None)


@pytest.mark.parametrize("text", ["MRI lumbar spine", "CT head without contrast", "MRI knee without contrast",
                                  "x" * 400 + " kyphoplasty"])
def test_unspecific_or_non_spine_text_is_not_recognised(text):
    assert recognise_orders(_request([_sr({"text": text})]), CATALOGUE).orders == ()


def test_code_wins_over_text_and_text_supplies_a_missing_region():
    order = _one({"coding": [{"system": CPT, "code": "78830"}], "text": "SPECT/CT thoracic spine"})
    assert (order.procedure, order.recognised_by, order.region) == ("spect-spine", "code", "thoracic")


def test_reason_text_without_coding_is_kept_as_a_display():
    order = _one({"coding": [{"system": CPT, "code": "72148"}]},
                 reasonCode=[{"text": "osteoporotic compression fracture"}, {"coding": [{}]}])
    assert order.reason_codes == ({"display": "osteoporotic compression fracture"},)


def test_odd_entries_do_not_crash():
    entries = [None, {"no": "type"}, {"resourceType": "MedicationRequest", "id": "m"},
               {"resourceType": "ProcedureRequest", "id": "p"},
               _sr({"coding": [{"system": CPT, "code": "72148"}]}, rid=""),
               _sr({"coding": [{"system": CPT}]}, rid="b", reasonCode=[]), _sr(None, rid="c")]
    result = recognise_orders(_request(entries), CATALOGUE)
    assert result.orders == ()
    assert result.not_relevant == ("ServiceRequest/b", "ServiceRequest/c")
    assert [(s.index, s.resource_type) for s in result.skipped] == [
        (0, None), (1, None), (3, "ProcedureRequest"), (4, "ServiceRequest")]


def test_preferred_codes_for_swaps():
    assert CATALOGUE.preferred_code("mri-spine-without-contrast", "lumbar") == {
        "system": CPT, "code": "72148", "display": "MRI lumbar spine without contrast"}
    assert CATALOGUE.preferred_code("ct-spine-without-contrast", "thoracic")["code"] == "72128"
    assert CATALOGUE.preferred_code("fdg-pet-ct-skull-base-to-mid-thigh", "lumbar")["code"] == "78815"
    assert CATALOGUE.preferred_code("mri-spine-without-contrast", None) is None
    assert CATALOGUE.preferred_code("medical-management", None) is None


def _catalogue_data() -> tuple[dict, dict]:
    return read_json("clinical/shared/orders.json"), read_json("clinical/schemas/orders.schema.json")


@pytest.mark.parametrize("pattern", [r"(a+)+b", r"\bspine.*lumbar", r"(\w)\1"])
def test_backtracking_patterns_are_refused(pattern):
    data, schema = _catalogue_data()
    data["text_rules"][0]["all"] = [pattern]
    with pytest.raises(InvalidCatalogue, match="may backtrack"):
        build_catalogue(data, schema)


def test_duplicate_code_and_schema_errors_are_refused():
    data, schema = _catalogue_data()
    duplicate = copy.deepcopy(data)
    duplicate["codes"].append(dict(duplicate["codes"][0], preferred=False))
    with pytest.raises(InvalidCatalogue, match="22510 is listed twice"):
        build_catalogue(duplicate, schema)
    data["codes"][0]["procedure"] = "kyphoplasty"
    with pytest.raises(InvalidCatalogue, match=r"codes\.0\.procedure"):
        build_catalogue(data, schema)


def test_every_catalogue_entry_has_a_source():
    for entry in CATALOGUE.codes.values():
        assert entry.source["citation"] and entry.source["url"].startswith("http")
        assert entry.status in {"seen", "secondary", "unconfirmed"}
    assert CATALOGUE.codes[(CPT, "72149")].status == "secondary"
    assert CATALOGUE.codes[(CPT, "77300")].status == "unconfirmed"


def test_an_order_for_another_patient_is_skipped_never_rated() -> None:
    mri = {"resourceType": "ServiceRequest", "id": "x", "status": "draft", "intent": "order",
           "code": {"coding": [{"system": CPT, "code": "72148"}]}, "subject": {"reference": "Patient/someone-else"}}
    result = recognise_orders(_request([mri]), CATALOGUE)
    assert result.orders == ()
    assert [s.reason for s in result.skipped] == ["subject is not the context patient"]
    mri["subject"] = {"reference": "https://ehr.example.org/fhir/Patient/p"}
    assert [o.reference for o in recognise_orders(_request([mri]), CATALOGUE).orders] == ["ServiceRequest/x"]


def test_selections_missing_from_draft_orders_are_counted() -> None:
    mri = {"resourceType": "ServiceRequest", "id": "x", "status": "draft", "intent": "order",
           "code": {"coding": [{"system": CPT, "code": "72148"}]}, "subject": {"reference": "Patient/p"}}
    result = recognise_orders(_request([mri], ("ServiceRequest/x", "ServiceRequest/not-sent")), CATALOGUE)
    assert (len(result.orders), result.missing_selections) == (1, 1)
