"""Issue 11, clinical precision on realistic records: one scenario (plain FHIR dicts) per bullet of its "Why".

Each scenario runs the request path without HTTP: draft ServiceRequests -> catalogue -> facts -> router ->
variant (with the candidate-agreement rule) -> rating -> cards, and asserts the physician-visible outcome.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cds_service.cards import CardOptions, build_response
from cds_service.cds_hooks.validate import HookRequest
from cds_service.clinical.facts import ClinicalFacts, extract_facts, load_fact_rules
from cds_service.clinical.orders import InvalidCatalogue, build_catalogue, load_order_catalogue, recognise_orders
from cds_service.clinical.ratings import Rating, rate_order
from cds_service.clinical.router import route_order
from cds_service.clinical.topic import topic_for_pack
from cds_service.clinical.variants import classify_variant, settle_for_order
from cds_service.datafiles import read_json
from cds_service.fhir.patient_data import PatientData

NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
CPT_OID = "urn:oid:2.16.840.1.113883.6.12"
RULES = load_fact_rules()
CATALOGUE = load_order_catalogue()
TOPICS = {pack: topic_for_pack(pack) for pack in ("acr-vcf-2022", "acr-vcf-2018")}


def day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).date().isoformat()


def cond(rid: str, code: tuple[str, str] | None = None, text: str | None = None, onset: int | None = None,
         recorded: int | None = None, status: str | None = "active", **extra: Any) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if code:
        concept["coding"] = [{"system": code[0], "code": code[1]}]
    if text:
        concept["text"] = text
    resource: dict[str, Any] = {"resourceType": "Condition", "id": rid, "code": concept, **extra}
    if status:
        resource["clinicalStatus"] = {"coding": [{"code": status}]}
    if onset is not None:
        resource["onsetDateTime"] = day(onset)
    if recorded is not None:
        resource["recordedDate"] = day(recorded)
    return resource


def report(rid: str, conclusion: str, days_ago: int,
           title: str = "MRI lumbar spine without contrast") -> dict[str, Any]:
    return {"resourceType": "DiagnosticReport", "id": rid, "status": "final", "code": {"text": title},
            "conclusion": conclusion, "effectiveDateTime": day(days_ago)}


def pain(rid: str, score: int, days_ago: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "72514-3"}]}, "valueInteger": score,
            "effectiveDateTime": day(days_ago)}


def procedure(rid: str, code: tuple[str, str] | None, days_ago: int, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": code[0], "code": code[1]}]} if code else {}
    if text:
        concept["text"] = text
    return {"resourceType": "Procedure", "id": rid, "status": "completed", "code": concept,
            "performedDateTime": day(days_ago)}


def order(rid: str, system: str, code: str, text: str = "") -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": rid, "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/p"},
            "code": {"coding": [{"system": system, "code": code}], **({"text": text} if text else {})}}


KYPHOPLASTY = order("kypho", CPT, "22513", "Kyphoplasty T12")
MRI = order("mri", CPT, "72148", "MRI lumbar spine without contrast")
BONE_SCAN_WB = order("bs", CPT, "78306", "Bone scan whole body")

OSTEO_T12 = (ICD, "M80.08XA")
OSTEO_T12_FOLLOWUP = (ICD, "M80.08XD")
OSTEOPOROSIS = (ICD, "M81.0")
CAUDA = (ICD, "G83.4")
RETENTION = (ICD, "R33.9")
# The seed 004 picture (T12 VCF from a fall 3 months ago, worse pain, stooped, dyspnea): 2022 treatment v8.
SEED = [cond("fx", OSTEO_T12, onset=92, recorded=92), cond("op", OSTEOPOROSIS, onset=2000),
        cond("ky", (ICD, "M40.204"), onset=14), cond("dy", (ICD, "R06.02"), onset=14),
        pain("p1", 4, 80), pain("p2", 5, 40), pain("p3", 8, 2)]


def data(*resources: dict[str, Any]) -> PatientData:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        grouped.setdefault(resource["resourceType"], []).append(resource)
    return PatientData({k: tuple(v) for k, v in grouped.items()}, {}, ())


def facts_of(*resources: dict[str, Any]) -> ClinicalFacts:
    return extract_facts(data(*resources), (), NOW, RULES)


def answer(resources: list[dict[str, Any]], *drafts: dict[str, Any],
           pack: str = "acr-vcf-2022") -> tuple[list[Rating], dict[str, Any]]:
    """The request path without HTTP for these resources and draft orders: ratings and the hook response."""
    request = HookRequest(service_id="spine-order-sign", hook="order-sign", hook_instance="h", patient_id="p",
                          user_id="Practitioner/dr", encounter_id=None, selections=None, draft_entries=drafts,
                          fhir_server=None, prefetch={})
    recognised = recognise_orders(request, CATALOGUE)
    patient = data(*resources)
    facts = extract_facts(patient, recognised.orders, NOW, RULES)
    topics = [TOPICS[pack]]
    ratings = []
    for draft in recognised.orders:
        route = route_order(draft, facts, topics)
        if route.topic is not None:
            match = settle_for_order(classify_variant(facts, draft.kind, route.topic), draft.procedure, draft.region,
                                     route.topic)
            ratings.append(rate_order(draft, match, route.topic.pack))
    response = build_response(request, patient, facts, ratings, topics, CATALOGUE, CardOptions())
    return ratings, response


def critical(response: dict[str, Any]) -> bool:
    return any(card["indicator"] == "critical" for card in response["cards"])


# --- Why 1: false critical pages -------------------------------------------------------------------------------

NOT_A_RED_FLAG = {
    "anatomy in a routine lumbar MRI": [report("r", "Conus medullaris and cauda equina unremarkable. Mild "
                                                    "degenerative disc disease at L4-L5.", 3)],
    "post-negation in a report": [report("r", "Compression of the cord is not seen. No retropulsion.", 3)],
    "post-negation 'is not identified'": [report("r", "Spinal cord compression is not identified.", 3)],
    "no longer has leg weakness": [cond("n", text="No longer has leg weakness after PT", recorded=5)],
    "weakness resolved": [cond("n", text="Bilateral leg weakness resolved", recorded=5)],
    "an MRI report from years ago": [report("r", "Severe cord compression at T11 from retropulsed fragment.", 1400)],
    "a chronic deficit re-recorded yesterday (coded)": [cond("n", RETENTION, onset=900, recorded=1)],
    "cauda equina syndrome coded years ago, re-recorded": [cond("n", CAUDA, onset=2000, recorded=2)],
    "chronic, unchanged deficit in words": [cond("n", text="Chronic leg weakness, unchanged since 2019", recorded=3)],
    "historical mention": [cond("n", text="History of cord compression in 2018, s/p decompression", recorded=3)],
    "family history": [cond("n", text="Mother had cauda equina syndrome", recorded=3)],
    "hypothetical in an order note": [cond("n", text="Return if leg weakness or urinary retention develops",
                                           recorded=1)],
}
RED_FLAG = {
    "a new deficit (coded)": [cond("n", RETENTION, onset=3, recorded=3)],
    "cauda equina syndrome (coded, recent)": [cond("n", CAUDA, onset=2, recorded=2)],
    "cord compression in a recent report": [report("r", "New severe cord compression at T12.", 2)],
    "cauda equina syndrome in a recent report": [report("r", "Findings consistent with cauda equina syndrome.", 1)],
    "retropulsion with canal compromise": [report("r", "T12 fracture with retropulsion causing moderate canal "
                                                       "compromise.", 4)],
    "progressive deficit re-recorded with an old onset": [cond("n", text="Progressive leg weakness", onset=400,
                                                               recorded=2)],
    "negation scope ends at 'but'": [cond("n", text="No fever but new leg weakness", recorded=1)],
}


@pytest.mark.parametrize("name", list(NOT_A_RED_FLAG))
def test_old_chronic_negated_or_anatomical_findings_never_page(name: str) -> None:
    ratings, response = answer([*SEED, *NOT_A_RED_FLAG[name]], KYPHOPLASTY)
    assert not critical(response), name
    assert ratings[0].variant.variant == "v8" and ratings[0].status == "rated", name  # the valid rating stays


@pytest.mark.parametrize("name", list(RED_FLAG))
def test_new_deficit_cord_compression_or_cauda_equina_syndrome_pages(name: str) -> None:
    _ratings, response = answer([*SEED, *RED_FLAG[name]], KYPHOPLASTY)
    assert critical(response), name


# --- Why 2: one fracture, several entries ------------------------------------------------------------------------

def test_follow_up_entry_recorded_yesterday_is_the_same_fracture() -> None:
    followup = cond("fx2", OSTEO_T12_FOLLOWUP, recorded=1)  # 7th character D, no onset, recorded yesterday
    facts = facts_of(*SEED, followup)
    assert facts.value("fracture_onset") == day(92)
    assert facts.value("new_fracture") is False
    assert facts.value("recent_fracture") is False
    assert facts.value("multiple_fractures") is False
    ratings, response = answer([*SEED, followup], KYPHOPLASTY)
    assert (ratings[0].variant.variant, ratings[0].score) == ("v8", 8)
    assert not any("new fracture" in card["summary"].lower() for card in response["cards"])


def test_imaging_order_is_not_rated_as_a_new_fracture_because_of_a_follow_up_entry() -> None:
    followup = cond("fx2", OSTEO_T12_FOLLOWUP, recorded=1)
    facts = facts_of(cond("fx", OSTEO_T12, onset=95, recorded=95), cond("op", OSTEOPOROSIS, onset=900), followup,
                     pain("p1", 6, 3), pain("p2", 6, 1))
    match = classify_variant(facts, "imaging", TOPICS["acr-vcf-2022"])
    assert match.variant != "v1"


def test_the_same_level_coded_twice_is_one_fracture_two_levels_are_two() -> None:
    same = facts_of(cond("a", (ICD, "S32.010A"), onset=40), cond("b", (ICD, "S32.010D"), onset=40, recorded=3))
    assert same.value("multiple_fractures") is False
    two = facts_of(cond("a", (ICD, "S32.010A"), onset=40), cond("b", (ICD, "S22.080A"), onset=40))
    assert two.value("multiple_fractures") is True


def test_onset_is_the_earliest_credible_onset_of_the_merged_entries() -> None:
    facts = facts_of(cond("a", OSTEO_T12, onset=100, recorded=100), cond("b", (ICD, "M80.08XA"), recorded=20))
    assert facts.value("fracture_onset") == day(100)
    assert facts.value("multiple_fractures") is False


# --- Why 3: two meanings of "new" --------------------------------------------------------------------------------

NEW_AFTER_VP_WITH_MRI = [cond("fx", OSTEO_T12, onset=20, recorded=20), cond("op", OSTEOPOROSIS, onset=900),
                         procedure("vp", (CPT, "22510"), 600), pain("p1", 8, 6), pain("p2", 8, 1),
                         report("mri", "Acute T12 compression fracture with marrow edema. No retropulsion.", 10)]


def test_variant_7_is_reached_after_the_mri() -> None:
    facts = facts_of(*NEW_AFTER_VP_WITH_MRI)
    assert (facts.value("new_fracture"), facts.value("recent_fracture")) == (False, True)
    ratings, _ = answer(NEW_AFTER_VP_WITH_MRI, KYPHOPLASTY)
    assert ratings[0].variant.variant == "v7"


def test_variant_7_after_mri_snomed_coded() -> None:
    resources = [cond("fx", (SCT, "311891006"), onset=25), cond("op", (SCT, "64859006"), onset=900),
                 procedure("kp", (SCT, "392010000"), 500), pain("p1", 7, 4), pain("p2", 7, 1),
                 report("mri", "T12 fracture with bone marrow edema.", 8)]
    assert classify_variant(facts_of(*resources), "treatment", TOPICS["acr-vcf-2022"]).variant == "v7"


# --- Why 4: variant 3 reachable without an active fracture --------------------------------------------------------

V3_RESOLVED = [cond("fx", OSTEO_T12, onset=800, status="resolved"), cond("bp", (ICD, "M54.50"), onset=5),
               pain("p1", 7, 3)]
V3_PROCEDURE_ONLY = [procedure("kp", None, 1200, text="Kyphoplasty L1"), pain("p1", 6, 10), pain("p2", 7, 1)]
V3_REPORT_TEXT = [report("xr", "Old healed L1 compression fracture with cement augmentation at L1. No acute "
                                "fracture.", 30, "Radiograph lumbar spine"), pain("p1", 6, 2)]


@pytest.mark.parametrize("resources", [V3_RESOLVED, V3_PROCEDURE_ONLY, V3_REPORT_TEXT],
                         ids=["resolved-condition", "procedure-only", "report-text"])
def test_variant_3_from_prior_vcf_history_and_new_back_pain(resources: list[dict[str, Any]]) -> None:
    facts = facts_of(*resources)
    assert facts.value("fracture") is not True and facts.value("prior_vcf_history") is True
    ratings, _ = answer(resources, MRI)
    assert ratings and ratings[0].variant.variant == "v3"


def test_a_whole_body_study_is_not_dropped_with_prior_vcf_history() -> None:
    ratings, _ = answer(V3_RESOLVED, BONE_SCAN_WB)
    assert ratings and ratings[0].variant.variant == "v3"


# --- Why 5: one unknown fact blocks every later variant ----------------------------------------------------------

def test_augmentation_is_rated_when_every_possible_variant_rates_it_the_same() -> None:
    # An undated fracture entry: whether it is recent (v7) or newly identified (v8 excludes those) is unknown,
    # but the MRI confirms v6 and augmentation is rated 8 in v6, v7 and v8.
    resources = [cond("fx", OSTEO_T12), cond("op", OSTEOPOROSIS, onset=900), cond("ky", (ICD, "M40.204"), onset=10),
                 procedure("vp", (CPT, "22510"), 700), pain("p1", 7, 5), pain("p2", 7, 1),
                 report("mri", "T12 compression fracture with bone marrow edema.", 3)]
    match = classify_variant(facts_of(*resources), "treatment", TOPICS["acr-vcf-2022"])
    assert (match.outcome, match.blocked, match.next_fit) == ("insufficient-data", ("v7", "v8"), "v6")
    ratings, response = answer(resources, KYPHOPLASTY)
    assert (ratings[0].status, ratings[0].score, ratings[0].variant.variant) == ("rated", 8, "v6")
    assert any("7, 8, 6" in c.get("detail", "") for c in response["cards"])  # the possible variants are named


def test_agreement_rule_rates_only_when_the_possible_variants_agree() -> None:
    topic = TOPICS["acr-vcf-2022"]
    from cds_service.clinical.variants import VariantMatch

    open_match = VariantMatch("acr-vcf-2022", "treatment", None, None, "insufficient-data", missing=("marrow_edema",),
                              blocked=("v7", "v8"), next_fit="v6", compare=True)
    agreed = settle_for_order(open_match, "vertebral-augmentation", "thoracic", topic)
    assert (agreed.outcome, agreed.variant, agreed.possible) == ("matched", "v6", ("v7", "v8", "v6"))
    assert {topic.pack.variants[v].rows["vertebral-augmentation"].score for v in ("v6", "v7", "v8")} == {8}
    # medical management is rated differently across these variants: undecided, never a rating
    assert settle_for_order(open_match, "medical-management", None, topic).outcome == "undecided"
    # a single open variant and none confirmed after it: nothing to rate under
    none_confirmed = VariantMatch("acr-vcf-2022", "treatment", None, None, "insufficient-data", blocked=("v7",),
                                  compare=True)
    assert settle_for_order(none_confirmed, "vertebral-augmentation", "thoracic", topic) is none_confirmed


# --- Why 6: symptoms ------------------------------------------------------------------------------------------------

def test_latest_pain_score_of_zero_outranks_older_back_pain_text() -> None:
    facts = facts_of(cond("bp", text="Back pain", onset=60, recorded=60), pain("p1", 0, 2))
    assert facts.value("symptomatic") is False


def test_back_pain_written_after_the_last_score_counts() -> None:
    facts = facts_of(pain("p1", 0, 20), cond("bp", text="New back pain after lifting", recorded=2))
    assert facts.value("symptomatic") is True


def test_resolved_after_a_symptom_negates_it() -> None:
    assert facts_of(cond("bp", text="Back pain resolved", recorded=5)).value("symptomatic") is not True


# --- Why 7: order catalogue ---------------------------------------------------------------------------------------

def recognised(draft: dict[str, Any]) -> str | None:
    request = HookRequest(service_id="spine-order-sign", hook="order-sign", hook_instance="h", patient_id="p",
                          user_id="Practitioner/dr", encounter_id=None, selections=None, draft_entries=(draft,),
                          fhir_server=None, prefetch={})
    orders = recognise_orders(request, CATALOGUE).orders
    return orders[0].procedure if orders else None


@pytest.mark.parametrize(("system", "code"), [(CPT, "78300"), (CPT, "78305"), (CPT, "78315"), (LOINC, "25031-6"),
                                              (LOINC, "39883-4")])
def test_limited_bone_scans_are_not_the_whole_body_row(system: str, code: str) -> None:
    assert recognised(order("bs", system, code)) == "bone-scan-limited"
    ratings, _ = answer(SEED, order("bs", system, code))
    assert not ratings  # no ACR row rates a limited bone scan: no rating is borrowed from the whole-body row


def test_the_whole_body_bone_scan_is_still_rated() -> None:
    assert recognised(BONE_SCAN_WB) == "bone-scan-whole-body"


@pytest.mark.parametrize("code", ["78811", "78812", "78813", "78814", "78816"])
def test_pet_codes_of_another_extent_are_not_the_fdg_pet_ct_row(code: str) -> None:
    assert recognised(order("pet", CPT, code)) == "pet-other-extent"
    assert recognised(order("pet", CPT, "78815")) == "fdg-pet-ct-skull-base-to-mid-thigh"


def test_pet_text_naming_another_tracer_is_not_the_fdg_row() -> None:
    draft = {**order("pet", CPT, "0"), "code": {"text": "PSMA PET/CT"}}
    ratings, _ = answer(SEED, draft)
    assert not ratings or ratings[0].order.procedure != "fdg-pet-ct-skull-base-to-mid-thigh"


@pytest.mark.parametrize("text", ["PSMA PET/CT skull base to mid-thigh", "Ga-68 DOTATATE PET/CT",
                                  "NaF PET/CT bone", "Fluciclovine (Axumin) PET/CT"])
def test_a_coded_pet_naming_another_tracer_is_not_the_fdg_row(text: str) -> None:
    """CPT 78815 codes the extent, not the tracer: the order's own words decide that it is not FDG."""
    draft = order("pet", CPT, "78815", text)
    assert recognised(draft) == "pet-other-tracer"
    ratings, _ = answer(SEED, draft)
    assert not ratings  # no ACR spine row rates a PSMA, dotatate, fluoride or fluciclovine PET


def test_the_fdg_text_rule_and_the_coded_pet_read_one_named_tracer_set() -> None:
    """One pattern of other tracers serves both (``text_sets``): a text-only PSMA order matches no FDG row either,
    and a catalogue naming a set it does not hold stops at start-up."""
    assert recognised({**order("pet", CPT, "0"), "code": {"text": "PSMA PET/CT skull base to mid-thigh"}}) is None
    data = read_json("clinical/shared/orders.json")
    broken = {**data, "text_sets": {}}
    with pytest.raises(InvalidCatalogue, match="unknown text set 'pet-tracer-other-than-fdg'"):
        build_catalogue(broken, read_json("clinical/schemas/orders.schema.json"))


def test_a_coded_pet_naming_fdg_or_no_tracer_is_the_fdg_row() -> None:
    for text in ("FDG PET/CT skull base to mid-thigh", "PET/CT tumor imaging", ""):
        assert recognised(order("pet", CPT, "78815", text)) == "fdg-pet-ct-skull-base-to-mid-thigh"


def test_referral_to_oncologist_is_not_radiation_oncology() -> None:
    ratings, _ = answer(SEED, order("ref", SCT, "183529009", "Referral to oncologist"))
    assert not ratings or ratings[0].order.procedure != "radiation-oncology-consultation"


def test_cpt_oid_system_is_an_alias() -> None:
    ratings, _ = answer(SEED, order("kypho", CPT_OID, "22513"))
    assert ratings and ratings[0].order.procedure == "vertebral-augmentation"


def test_increasing_height_loss_written_in_a_report_is_deformity() -> None:
    facts = facts_of(report("xr", "Interval loss of vertebral body height at T12, now 40%.", 5, "Radiograph spine"))
    assert facts.value("deformity") is True
    acute = facts_of(report("mri", "Acute L1 compression fracture with marrow edema, 30% height loss.", 5))
    assert acute.value("deformity") is False  # the height loss of the acute fracture itself is not progression


def test_a_fracture_condition_without_clinical_status_counts_unless_abated() -> None:
    open_problem = facts_of(cond("fx", OSTEO_T12, onset=30, status=None))
    assert open_problem.value("fracture") is True
    abated = facts_of(cond("fx", OSTEO_T12, onset=300, status=None, abatementDateTime=day(100)))
    assert abated.value("fracture") is not True and abated.value("prior_vcf_history") is True
