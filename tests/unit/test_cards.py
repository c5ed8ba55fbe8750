"""Cards: the seed case, the neuro escalation, the swap suggestion, gaps, beyond-the-criteria cards, actions.

Inputs are built by hand from the step dataclasses; the real 2022 pack, order catalogue and rate_order are used.
Every response built here must pass ``response.check_response``.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from cds_service.cards import CardOptions, build_response, consult_id
from cds_service.cds_hooks.response import check_response, stable_uuid
from cds_service.cds_hooks.validate import HookRequest
from cds_service.clinical.facts import ClinicalFacts, Fact
from cds_service.clinical.orders import DraftOrder, load_order_catalogue
from cds_service.clinical.ratings import rate_order
from cds_service.clinical.topic import topic_for_pack
from cds_service.clinical.variants import Reason, VariantMatch
from cds_service.fhir.patient_data import MissingData, PatientData

HOOK = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
PAMA = "http://fhir.org/argonaut/Extension/pama-rating"
ACR = "https://spine-order-cds.example.org/fhir/StructureDefinition/acr-rating"
TOPIC = topic_for_pack("acr-vcf-2022")
PACK = TOPIC.pack
CATALOGUE = load_order_catalogue()

SEED_FACTS = {
    "fracture": (True, ("Condition/vcf-t12",)), "fracture_level": ("T12", ("Condition/vcf-t12",)),
    "etiology": ("osteoporotic", ("Condition/vcf-t12",)), "new_fracture": (False, ("Condition/vcf-t12",)),
    "acuity": ("subacute", ("Condition/vcf-t12",)), "symptomatic": (True, ("Observation/pain-3",)),
    "pain_trend": ("worsening", ("Observation/pain-1", "Observation/pain-3")),
    "pain_latest": (8, ("Observation/pain-3",)), "deformity": (True, ("Observation/height-2",)),
    "pulmonary_dysfunction": (True, ("Condition/dyspnea",)), "neuro_red_flag": (False, ()),
    "malignancy": ("none", ()), "contraindications": ((), ()), "osteoporosis": (True, ("Condition/op",)),
    "osteoporosis_therapy": (False, ()), "failed_conservative_care": (True, ("MedicationRequest/tramadol",)),
    "retropulsion": (False, ()),
}


def request() -> HookRequest:
    return HookRequest(service_id="spine-order-select", hook="order-select", hook_instance=HOOK,
                       patient_id="vcf-seed-82f", user_id="Practitioner/dr", encounter_id=None,
                       selections=None, draft_entries=(), fhir_server=None, prefetch={})


def order(oid: str, procedure: str, kind: str, display: str, code: str, region: str | None = "thoracic",
          reasons: bool = True, recognised_by: str = "code") -> DraftOrder:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": oid, "status": "draft", "intent": "order",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": code}], "text": display},
        "subject": {"reference": "Patient/vcf-seed-82f"},
        "extension": [{"url": PAMA, "valueCodeableConcept": {"coding": [{"code": "not-appropriate"}]}}],
    }
    if reasons:
        resource["reasonCode"] = [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M80.08XA"}]}]
    return DraftOrder(reference=f"ServiceRequest/{oid}", resource=resource, procedure=procedure, kind=kind,
                      display=display, recognised_by=recognised_by, matched_code=None, reason_codes=(),
                      requires_fracture_context=False, region=region)


KYPHOPLASTY = order("kypho", "vertebral-augmentation", "treatment", "Kyphoplasty T12", "22513")
MRI_CONTRAST = order("mri", "mri-spine-with-contrast", "imaging", "MRI lumbar spine with contrast", "72149",
                     region="lumbar", reasons=False)


def facts(**changes: Any) -> ClinicalFacts:
    table = {**SEED_FACTS, **{k: (v, (f"Condition/{k}",)) for k, v in changes.items() if v is not None}}
    for name, value in changes.items():
        if value is None:
            del table[name]
    return ClinicalFacts({n: Fact(n, v, s, "coded") for n, (v, s) in table.items()}, missing=(), conflicts=())


def match(variant: str | None, kind: str = "treatment", missing: tuple[str, ...] = ()) -> VariantMatch:
    title = PACK.variants[variant].title if variant else None
    if variant is None:
        return VariantMatch(pack="acr-vcf-2022", kind=kind, variant=None, title=None, outcome="insufficient-data",
                        missing=missing, blocked=("v2", "v4"))
    reasons = (Reason("fracture", True), Reason("etiology", "osteoporotic"), Reason("pain_trend", "worsening"))
    return VariantMatch(pack="acr-vcf-2022", kind=kind, variant=variant, title=title, outcome="matched",
                        reasons=reasons, missing=missing)


def respond(orders_variants: list[tuple[DraftOrder, str | None]], clinical: ClinicalFacts | None = None,
            missing: tuple[MissingData, ...] = (), mirror: bool = True) -> dict[str, Any]:
    ratings = [rate_order(o, match(v, o.kind), PACK) for o, v in orders_variants]
    data = PatientData(resources={}, origin={}, missing=missing)
    response = build_response(request(), data, clinical or facts(), ratings, [TOPIC], CATALOGUE,
                              CardOptions(mirror_system_actions=mirror))
    check_response(response)
    return response


def topics(response: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["indicator"], c["source"]["topic"]["code"]) for c in response["cards"]]


def extension(resource: dict[str, Any], url: str) -> list[dict[str, Any]]:
    return [e for e in resource["extension"] if e["url"] == url]


def test_seed_kyphoplasty_is_usually_appropriate_with_gap_and_coverage_cards() -> None:
    response = respond([(KYPHOPLASTY, "v8")])
    assert topics(response) == [("info", "acr-vcf-2022-rating"), ("info", "osteoporosis-treatment-gap"),
                                ("info", "medicare-pva-coverage-check")]
    rating = response["cards"][0]
    assert rating["summary"] == "Kyphoplasty T12: usually appropriate (ACR 8/9)"
    assert "suggestions" not in rating and "overrideReasons" not in rating
    assert rating["source"]["url"] == "https://acsearch.acr.org/docs/70545/Narrative/"
    assert rating["links"][0]["type"] == "absolute"
    assert rating["uuid"] == stable_uuid(HOOK, "rating", "ServiceRequest/kypho")
    assert rating["extension"] == {"org.example.spine-order-cds.orders": ["ServiceRequest/kypho"]}
    assert consult_id(request(), KYPHOPLASTY) not in rating["detail"]  # written on the order, not shown
    assert rating["detail"].startswith("Benign compression fracture with worsening pain, deformity or breathing "
                                       "problems (ACR variant 8).")
    for text in ("- pain trend: worsening\n", "medical management only is rated may be appropriate (5/9)",
                 "correlating signs and symptoms", "PMID 29901504", "variant 8: Benign VCF with worsening pain",
                 "Data used: Condition/vcf-t12, Observation/pain-1, Observation/pain-3"):
        assert text in rating["detail"]
    assert rating["detail"].endswith("Data used: Condition/vcf-t12, Observation/pain-1, Observation/pain-3")
    assert "without correlating symptoms" not in rating["detail"]  # the patient is symptomatic
    assert response["cards"][1]["summary"] == "Osteoporotic fracture with no osteoporosis drug on record"
    coverage = response["cards"][2]
    assert coverage["summary"] == ("Beyond the ACR criteria: Medicare augmentation coverage: 6 of 7 criteria "
                                   "documented")
    assert "[ ] Fracture age confirmed on MRI (marrow edema or cleft): not recorded" in coverage["detail"]
    assert "[x] Pain score of 5 or more (0-10): documented" in coverage["detail"]


def test_seed_rating_is_written_onto_the_order() -> None:
    response = respond([(KYPHOPLASTY, "v8")])
    [action] = response["systemActions"]
    assert response["extension"]["systemActions"] == response["systemActions"]
    resource = action["resource"]
    assert action["type"] == "update" and resource["id"] == "kypho"
    assert resource["code"] == KYPHOPLASTY.resource["code"]
    assert extension(resource, PAMA) == [{"url": PAMA, "valueCodeableConcept": {"coding": [
        {"system": "http://fhir.org/argonaut/CodeSystem/pama-rating", "code": "appropriate"}]}}]
    assert extension(resource, "http://fhir.org/argonaut/Extension/pama-rating-consult-id")[0]["valueUri"] == (
        consult_id(request(), KYPHOPLASTY))
    assert consult_id(request(), KYPHOPLASTY) == f"urn:uuid:{stable_uuid(HOOK, 'ServiceRequest/kypho')}"
    assert extension(resource, "http://fhir.org/argonaut/Extension/pama-rating-auc-applied")[0]["valueUri"] == (
        PACK.url)
    assert extension(resource, ACR)[0]["valueCodeableConcept"]["coding"][0]["code"] == "usually-appropriate"
    assert len(resource["extension"]) == 4  # the stale pama-rating sent with the order was replaced
    assert KYPHOPLASTY.resource["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "not-appropriate"


def test_neuro_red_flag_puts_a_critical_referral_card_first() -> None:
    response = respond([(KYPHOPLASTY, "v8")], facts(neuro_red_flag=True))
    assert topics(response)[:2] == [("critical", "spine-neuro-red-flag"), ("info", "acr-vcf-2022-rating")]
    neuro = response["cards"][0]
    assert neuro["summary"] == "Neurologic red flag: immediate spine-surgery consultation"
    assert neuro["selectionBehavior"] == "any"
    [suggestion] = neuro["suggestions"]
    [action] = suggestion["actions"]
    assert action["type"] == "create"
    assert action["resource"] == {
        "resourceType": "ServiceRequest", "status": "draft", "intent": "order", "priority": "stat",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "308482002",
                             "display": "Referral to neurosurgeon"}], "text": "Referral to neurosurgeon"},
        "subject": {"reference": "Patient/vcf-seed-82f"}}
    nass = [c for c in response["cards"] if c["source"]["topic"]["code"].startswith("nass-auc-vcf")]
    assert [c["summary"] for c in nass] == [
        "Beyond the ACR criteria: NASS: surgery likely appropriate with stenosis and neurologic change"]


def test_mri_with_contrast_in_v1_warns_and_suggests_72148() -> None:
    clinical = facts(new_fracture=True, acuity="acute", pain_trend="unknown")
    response = respond([(MRI_CONTRAST, "v1")], clinical)
    card = response["cards"][0]
    assert (card["indicator"], card["summary"]) == ("warning", "MRI lumbar spine with contrast: usually not "
                                                    "appropriate (ACR 3/9)")
    assert [r["code"] for r in card["overrideReasons"]] == ["patient-specific", "imaging-elsewhere",
                                                            "specialist-advice", "discussed-with-radiology"]
    assert card["selectionBehavior"] == "any"
    [suggestion] = card["suggestions"]
    assert suggestion["label"] == "Order MRI lumbar spine without contrast instead"
    [action] = suggestion["actions"]
    resource = action["resource"]
    assert (action["type"], resource["id"]) == ("update", "mri")
    assert resource["code"]["coding"] == [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148",
                                           "display": "MRI lumbar spine without contrast"}]
    assert resource["subject"] == {"reference": "Patient/vcf-seed-82f"}
    assert "reasonCode" not in resource  # none added: it would be read back as evidence of a fracture
    assert extension(resource, PAMA)[0]["valueCodeableConcept"]["coding"][0]["code"] == "appropriate"
    assert extension(resource, ACR)[0]["valueCodeableConcept"]["coding"][0]["code"] == "usually-appropriate"
    [rated] = response["systemActions"]
    assert extension(rated["resource"], PAMA)[0]["valueCodeableConcept"]["coding"][0]["code"] == "not-appropriate"
    assert rated["resource"]["code"] == MRI_CONTRAST.resource["code"]


def test_treatment_swap_only_when_the_catalogue_codes_the_alternative() -> None:
    ablation = order("abl", "percutaneous-ablation-spine", "treatment", "Ablation T12", "20982")
    response = respond([(ablation, "v8")])
    card = response["cards"][0]
    assert card["summary"] == "Ablation T12: usually not appropriate (ACR 1/9)"
    [action] = card["suggestions"][0]["actions"]
    assert action["resource"]["code"]["coding"][0]["code"] == "22513"  # augmentation, 8/9, thoracic
    assert action["resource"]["reasonCode"] == ablation.resource["reasonCode"]


def test_several_orders_share_one_card_per_finding() -> None:
    vertebroplasty = order("vp", "vertebral-augmentation", "treatment", "Vertebroplasty T12", "22510")
    clinical = facts(new_fracture=True, neuro_red_flag=True, retropulsion=True)
    response = respond([(KYPHOPLASTY, "v8"), (vertebroplasty, "v8"), (MRI_CONTRAST, "v1")], clinical)
    assert topics(response) == [
        ("critical", "spine-neuro-red-flag"), ("warning", "spine-new-fracture-workup"),
        ("warning", "spine-augmentation-safety"), ("warning", "acr-vcf-2022-rating"),
        ("info", "acr-vcf-2022-rating"), ("info", "acr-vcf-2022-rating"), ("info", "osteoporosis-treatment-gap"),
        ("info", "nass-auc-vcf-osteoporotic-surgery-neuro"), ("info", "medicare-pva-coverage-check")]
    assert response["cards"][1]["summary"] == ("New fracture: complete the work-up (MRI) before Kyphoplasty T12, "
                                               "Vertebroplasty T12")
    assert response["cards"][2]["summary"].startswith("Check before augmentation: retropulsed fragment (")
    assert len({c["uuid"] for c in response["cards"]}) == 9
    assert [a["resource"]["id"] for a in response["systemActions"]] == ["kypho", "vp", "mri"]


@pytest.mark.parametrize(("malignancy", "shown"), [("active", True), ("history", True), ("suspected", True),
                                                   ("none", False)])
def test_malignancy_with_a_fracture_points_to_the_pathologic_pathway(malignancy: str, shown: bool) -> None:
    response = respond([(KYPHOPLASTY, "v8")], facts(malignancy=malignancy))
    assert (("warning", "spine-pathologic-fracture-pathway") in topics(response)) is shown


@pytest.mark.parametrize("contraindication", ["infection", "coagulopathy", "pregnancy"])
def test_contraindication_on_augmentation(contraindication: str) -> None:
    response = respond([(KYPHOPLASTY, "v8")], facts(contraindications=(contraindication,)))
    card = response["cards"][0]
    assert card["summary"] == f"Check before augmentation: {contraindication} (Kyphoplasty T12)"
    assert card["overrideReasons"][0]["display"] == "Patient-specific clinical factors not captured by the criteria"


def test_missing_data_is_named_and_the_gap_is_not_claimed() -> None:
    missing = (MissingData("medications", "FHIR server timed out"),)
    response = respond([(KYPHOPLASTY, "v8")], facts(osteoporosis_therapy=None), missing=missing)
    rating, gap = response["cards"][0], response["cards"][1]
    assert "- medication list: FHIR server timed out" in rating["detail"]
    assert gap["summary"] == "Osteoporosis treatment could not be checked: medication data missing"
    assert "- medication list: FHIR server timed out" in gap["detail"]


def test_no_gap_card_when_therapy_is_in_place_or_fracture_not_osteoporotic() -> None:
    for clinical in (facts(osteoporosis_therapy=True), facts(etiology="pathologic")):
        codes = [code for _, code in topics(respond([(KYPHOPLASTY, "v8")], clinical))]
        assert "osteoporosis-treatment-gap" not in codes


def test_nass_chronic_low_pain_rule() -> None:
    response = respond([(KYPHOPLASTY, "v8")], facts(acuity="chronic", pain_latest=5))
    summaries = [c["summary"] for c in response["cards"]]
    assert ("Beyond the ACR criteria: NASS: cement augmentation rarely appropriate (chronic fracture, pain <= 6)"
            in summaries)
    assert response["cards"][0]["summary"] == "Kyphoplasty T12: usually appropriate (ACR 8/9)"  # rating unchanged


def test_no_criteria_apply_is_written_without_acr_extension() -> None:
    radiation = order("rt", "radiation-therapy", "treatment", "Radiation therapy T12", "77427")
    response = respond([(radiation, "v8")])
    card = response["cards"][0]
    assert card["summary"] == "Radiation therapy T12: not rated by the ACR criteria for this scenario"
    assert "do not rate this procedure" in card["detail"]
    resource = response["systemActions"][0]["resource"]
    assert extension(resource, PAMA)[0]["valueCodeableConcept"]["coding"][0]["code"] == "no-criteria-apply"
    assert extension(resource, ACR) == []


def test_no_variant_is_one_explained_card_and_no_action() -> None:
    ct = order("ct", "ct-spine-without-contrast", "imaging", "CT lumbar spine", "72131", region="lumbar")
    ratings = [rate_order(o, match(None, o.kind, missing=("acuity",)), PACK) for o in (MRI_CONTRAST, ct)]
    response = build_response(request(), PatientData({}, {}, ()), facts(), ratings, [TOPIC], CATALOGUE, CardOptions())
    check_response(response)
    no_variant = [c for c in response["cards"] if c["source"]["topic"]["code"] == "acr-vcf-2022-no-variant"]
    assert [c["summary"] for c in no_variant] == [
        "MRI lumbar spine with contrast, CT lumbar spine: not rated, the record does not show which ACR scenario "
        "applies"]
    detail = no_variant[0]["detail"]
    assert detail.startswith("The record does not show enough to choose between ACR variants 2, 4.")
    assert "To rate it, document: fracture age." in detail
    assert "systemActions" not in response and "extension" not in response


def test_text_only_orders_get_a_card_but_no_rating_written() -> None:
    text_only = order("txt", "vertebral-augmentation", "treatment", "kyphoplasty please", "22513",
                      recognised_by="text")
    response = respond([(text_only, "v8")])
    assert "recognised from its text only" in response["cards"][0]["detail"]
    assert "systemActions" not in response


def test_mirror_off_and_empty_members_in_the_order_are_dropped() -> None:
    sparse = order("sp", "vertebral-augmentation", "treatment", "Kyphoplasty T12", "22513")
    resource = copy.deepcopy(dict(sparse.resource)) | {"note": [], "bodySite": [{}], "requester": None}
    sparse = replace(sparse, resource=resource)
    response = respond([(sparse, "v8")], mirror=False)
    assert "extension" not in response
    assert {"note", "bodySite", "requester"}.isdisjoint(response["systemActions"][0]["resource"])


def test_long_order_names_keep_the_summary_under_140_characters() -> None:
    long = order("long", "vertebral-augmentation", "treatment", "Percutaneous vertebral augmentation " * 6, "22513")
    summary = respond([(long, "v8")])["cards"][0]["summary"]
    assert len(summary) == 139 and summary.endswith("…: usually appropriate (ACR 8/9)")


CODES = {"imaging": "72148", "treatment": "22513"}


@pytest.mark.parametrize("variant", sorted(PACK.variants))
@pytest.mark.parametrize("clinical", [
    facts(), facts(neuro_red_flag=True, malignancy="active", new_fracture=True, retropulsion=True,
                   contraindications=("infection", "pregnancy", "coagulopathy")),
    facts(osteoporosis_therapy=None, pain_latest=None, acuity="chronic", symptomatic=None, etiology="unknown"),
], ids=["seed", "every-escalation", "sparse"])
def test_every_row_of_every_variant_gives_a_valid_response(variant: str, clinical: ClinicalFacts) -> None:
    rows = PACK.variants[variant].rows.values()
    orders = [(order(f"o{i}", row.procedure, row.kind, row.name, CODES[row.kind], region="lumbar"), variant)
              for i, row in enumerate(rows) if row.orderable]
    orders.append((order("unrated", "radiation-therapy", "treatment", "Radiation therapy", "77427"), variant))
    response = respond(orders, clinical, missing=(MissingData("medications", "timed out"),))
    assert [c["indicator"] for c in response["cards"]] == sorted(
        (c["indicator"] for c in response["cards"]), key=["critical", "warning", "info"].index)
    assert len({c["uuid"] for c in response["cards"]}) == len(response["cards"])
    for card in response["cards"]:
        for suggestion in card.get("suggestions", []):
            assert len(suggestion["actions"]) == 1 and card["selectionBehavior"] == "any"
            if suggestion["actions"][0]["type"] == "update":
                resource = suggestion["actions"][0]["resource"]
                assert extension(resource, PAMA)
    assert len(response["systemActions"]) == len(orders)


def test_every_clinical_statement_in_the_card_data_cites_a_source() -> None:
    """cards.json and beyond.json hold clinical claims (escalations, gap, evidence, NASS, Medicare): each one
    carries a source with a citation and a status, like the criteria packs and code lists."""
    statuses = {"seen", "secondary", "unconfirmed", "design-choice"}
    text, beyond = TOPIC.text, TOPIC.beyond
    claims = [*text["escalations"].values(), *text["treatment_gaps"].values()]
    claims += [e for topic in text["evidence"].values() for e in topic.values()]
    claims += [*beyond["nass"]["rules"], beyond["coverage"]]
    assert len(claims) >= 12
    for claim in claims:
        assert claim["source"]["citation"], claim.get("summary") or claim["text"][:60]
        assert claim["status"] in statuses, claim.get("summary") or claim["text"][:60]
