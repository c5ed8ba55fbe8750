"""Scenarios for the myelopathy, spine infection, inflammatory back pain and cervical pain topics (issue 14).

Each picture is plain FHIR; the whole path runs for real: facts -> router (all built topics in their rank) ->
variant -> rating, for at least three procedures per variant. The expected scores are the ACR ratings as the
reference notes give them (shared/reference/acr-spine-topics.md sections 3a, 5a, 6a). A procedure a variant
does not rate is "no criteria apply", never a borrowed rating.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cds_service.clinical.facts import ClinicalFacts, extract_facts, load_fact_rules
from cds_service.clinical.orders import DraftOrder
from cds_service.clinical.ratings import rate_order
from cds_service.clinical.router import route_order
from cds_service.clinical.topic import load_topics
from cds_service.clinical.variants import classify_variant
from cds_service.fhir.patient_data import PatientData

NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
RULES = load_fact_rules()
TOPICS = load_topics("")


def day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).date().isoformat()


def condition(rid: str, icd: str | None, text: str, verification: str = "confirmed") -> dict[str, Any]:
    code: dict[str, Any] = {"text": text}
    if icd:
        code["coding"] = [{"system": ICD, "code": icd, "display": text}]
    return {"resourceType": "Condition", "id": rid, "clinicalStatus": {"coding": [{"code": "active"}]},
            "verificationStatus": {"coding": [{"code": verification}]}, "code": code,
            "onsetDateTime": day(10), "recordedDate": day(10)}


def report(rid: str, system: str, code: str, name: str, conclusion: str, days_ago: int = 5) -> dict[str, Any]:
    return {"resourceType": "DiagnosticReport", "id": rid, "status": "final",
            "code": {"coding": [{"system": system, "code": code}], "text": name}, "conclusion": conclusion,
            "effectiveDateTime": day(days_ago)}


def procedure(rid: str, cpt: str, text: str, days_ago: int | None) -> dict[str, Any]:
    resource = {"resourceType": "Procedure", "id": rid, "status": "completed",
                "code": {"coding": [{"system": CPT, "code": cpt}], "text": text}}
    if days_ago is not None:
        resource["performedDateTime"] = day(days_ago)
    return resource


def patient(*resources: dict[str, Any]) -> PatientData:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        grouped.setdefault(resource["resourceType"], []).append(resource)
    return PatientData({k: tuple(v) for k, v in grouped.items()}, {}, ())


def adult(*resources: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The resources with a 52-year-old Patient (the cervical pain criteria are for adults)."""
    return ({"resourceType": "Patient", "id": "p1", "birthDate": "1974-03-02"}, *resources)


def order(procedure_key: str, region: str | None) -> DraftOrder:
    return DraftOrder(reference=f"ServiceRequest/{procedure_key}", resource={}, procedure=procedure_key,
                      kind="imaging", display=procedure_key, recognised_by="code", matched_code=None,
                      reason_codes=(), requires_fracture_context=False, region=region)


def facts_of(data: PatientData) -> ClinicalFacts:
    return extract_facts(data, (), NOW, RULES)


def answer(data: PatientData, procedure_key: str, region: str | None) -> tuple[str | None, str | None, Any]:
    """(topic, variant or outcome, score or rating status) for one order of this patient."""
    facts = facts_of(data)
    draft = order(procedure_key, region)
    route = route_order(draft, facts, TOPICS)
    if route.topic is None:
        return None, None, None
    match = classify_variant(facts, "imaging", route.topic, draft)
    rating = rate_order(draft, match, route.topic.pack)
    return route.topic.id, match.variant or match.outcome, rating.score if rating.status == "rated" else rating.status


MYELOPATHY_ACUTE = condition("m1", "G95.9", "Acute myelopathy")
MYELOPATHY_CHRONIC = condition("m2", "M47.12", "Cervical spondylotic myelopathy, slowly progressive")
DISCITIS = condition("i1", "M46.46", "Discitis, lumbar region", verification="provisional")
DIABETES = condition("d1", "E11.9", "Type 2 diabetes mellitus")
CAUDA = condition("n1", "G83.4", "Cauda equina syndrome")
SACRAL_ULCER = condition("w1", "L89.153", "Pressure ulcer of sacral region, stage 3")
EPIDURAL = procedure("p1", "62323", "Lumbar epidural steroid injection", 20)
XR_DISCITIS = report("x1", CPT, "72100", "XR lumbar spine", "Endplate erosion at L3-L4, concerning for discitis.")
IBP = condition("b1", None, "Inflammatory back pain")
AS_KNOWN = condition("b2", "M45.9", "Ankylosing spondylitis")
ANKYLOSIS = condition("b3", None, "Ankylosed spine")
FRACTURE_SUSPECTED = condition("b4", None, "Suspected vertebral fracture after a fall", verification="provisional")
SI_XR_NEGATIVE = report("s1", LOINC, "24900-3", "XR sacroiliac joints", "No sacroiliitis.", 40)
SI_MRI_NEGATIVE = report("s2", LOINC, "36376-2", "MRI sacroiliac joints", "No sacroiliitis. No bone marrow edema.", 10)

NECK_ACUTE = condition("c1", "M54.2", "Acute neck pain")
NECK_CHRONIC = condition("c2", "M54.2", "Chronic neck pain")
RADICULOPATHY = condition("c3", "M54.12", "Cervical radiculopathy, C6")
ACDF = procedure("c4", "22551", "Anterior cervical discectomy and fusion C5-C6", 700)
BREAST_CANCER = condition("c5", "C50.911", "Metastatic breast cancer")
HEADACHE = condition("c6", None, "Suspected cervicogenic headache")

# (picture, region, topic, variant, {procedure: ACR score or rating status})
SCENARIOS = {
    "myelopathy v1: acute onset": ((MYELOPATHY_ACUTE,), "cervical", "myelopathy", "v1", {
        "mri-spine-without-contrast": 9, "mri-spine-without-and-with-contrast": 8, "ct-myelography-spine": 6,
        "radiography-spine": 3}),
    "myelopathy v2: chronic or progressive": ((MYELOPATHY_CHRONIC,), "thoracic", "myelopathy", "v2", {
        "mri-spine-without-contrast": 8, "mri-spine-without-and-with-contrast": 8, "ct-spine-without-contrast": 6,
        "ct-spine-without-and-with-contrast": 2}),
    "infection v1: suspected discitis with diabetes": ((DISCITIS, DIABETES), "lumbar", "spine-infection", "v1", {
        "mri-spine-without-and-with-contrast": 9, "mri-spine-without-contrast": 7, "ct-spine-with-contrast": 6,
        "radiography-spine": 5, "mri-spine-with-contrast": 1}),
    "infection v2: after an epidural injection": ((DISCITIS, EPIDURAL), "lumbar", "spine-infection", "v2", {
        "mri-spine-without-and-with-contrast": 9, "ct-spine-with-contrast": 6, "radiography-spine": 5,
        "mri-spine-with-contrast": 2}),
    "infection v3: cauda equina syndrome": ((DISCITIS, EPIDURAL, CAUDA), "lumbar", "spine-infection", "v3", {
        "mri-spine-without-and-with-contrast": 9, "ct-spine-with-contrast": 5, "radiography-spine": 3,
        "mri-spine-with-contrast": 2}),
    "infection v4: sacral pressure ulcer": ((DISCITIS, SACRAL_ULCER), "lumbar", "spine-infection", "v4", {
        "mri-spine-without-and-with-contrast": 9, "mri-spine-without-contrast": 7, "ct-spine-with-contrast": 6,
        "ct-spine-without-and-with-contrast": 2}),
    "infection v5: radiograph suggests discitis": ((DISCITIS, XR_DISCITIS), "lumbar", "spine-infection", "v5", {
        "mri-spine-without-and-with-contrast": 9, "mri-spine-without-contrast": 7, "mri-spine-with-contrast": 1,
        "radiography-spine": "no-criteria-apply"}),
    "ibp v1: inflammatory back pain, no imaging yet": ((IBP,), "sacroiliac", "inflammatory-back-pain", "v1", {
        "radiography-sacroiliac-joints": 9, "mri-sacroiliac-joints-without-and-with-contrast": 2,
        "ct-sacroiliac-joints-with-contrast": 1}),
    "ibp v2: after negative radiographs": ((IBP, SI_XR_NEGATIVE), "sacroiliac", "inflammatory-back-pain", "v2", {
        "mri-sacroiliac-joints-without-and-with-contrast": 9, "ct-sacroiliac-joints-with-contrast": 1,
        "ct-sacroiliac-joints-without-and-with-contrast": 1, "radiography-sacroiliac-joints": "no-criteria-apply"}),
    "ibp v3: radiographs and SI MRI negative": ((IBP, SI_XR_NEGATIVE, SI_MRI_NEGATIVE), "lumbar",
                                                "inflammatory-back-pain", "v3", {
        "mri-spine-without-contrast": 9, "radiography-spine": 9, "ct-spine-without-contrast": 7,
        "ct-spine-with-contrast": 1}),
    "ibp v4: known ankylosing spondylitis": ((AS_KNOWN,), "sacroiliac", "inflammatory-back-pain", "v4", {
        "radiography-sacroiliac-joints": 7, "mri-sacroiliac-joints-without-and-with-contrast": 5,
        "ct-sacroiliac-joints-with-contrast": 1}),
    "ibp v5: ankylosed spine, suspected fracture": ((AS_KNOWN, ANKYLOSIS, FRACTURE_SUSPECTED), "thoracic",
                                                    "inflammatory-back-pain", "v5", {
        "ct-spine-without-contrast": 9, "mri-spine-without-contrast": 8, "radiography-spine": 8,
        "ct-spine-with-contrast": 1}),
    "cervical v1: acute neck pain": (adult(NECK_ACUTE), "cervical", "cervical-pain", "v1", {
        "radiography-spine": 5, "mri-spine-without-contrast": 1, "ct-spine-without-contrast": 1,
        "radiography-spine-flexion-extension": 1}),
    "cervical v2: acute neck pain with radiculopathy": (adult(NECK_ACUTE, RADICULOPATHY), "cervical", "cervical-pain",
                                                         "v2", {
        "mri-spine-without-contrast": 6, "radiography-spine": 5, "ct-myelography-spine": 1,
        "discography-spine": "no-criteria-apply"}),
    "cervical v3: after ACDF": (adult(NECK_ACUTE, ACDF), "cervical", "cervical-pain", "v3", {
        "ct-spine-without-contrast": 7, "mri-spine-without-contrast": 7, "radiography-spine-flexion-extension": 7,
        "ct-myelography-spine": 5, "mri-spine-with-contrast": 1}),
    "cervical v5: cancer": (adult(NECK_ACUTE, BREAST_CANCER), "cervical", "cervical-pain", "v5", {
        "mri-spine-without-and-with-contrast": 9, "mri-spine-without-contrast": 6, "ct-spine-with-contrast": 5,
        "radiography-spine": 1}),
    "cervical v6: cervicogenic headache": (adult(HEADACHE), "cervical", "cervical-pain", "v6", {
        "mri-spine-without-contrast": 5, "ct-spine-without-contrast": 1, "radiography-spine": 1}),
    "cervical v7: chronic neck pain": (adult(NECK_CHRONIC), "cervical", "cervical-pain", "v7", {
        "mri-spine-without-contrast": 5, "radiography-spine": 5, "ct-spine-without-contrast": 1,
        "ct-myelography-spine": 1}),
    "cervical v8: chronic neck pain with radiculopathy": (adult(NECK_CHRONIC, RADICULOPATHY), "cervical",
                                                          "cervical-pain", "v8", {
        "mri-spine-without-contrast": 7, "ct-spine-without-contrast": 5, "radiography-spine": 5,
        "mri-spine-without-and-with-contrast": 1}),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_reaches_its_variant_with_the_reference_ratings(name: str) -> None:
    resources, region, topic, variant, ratings = SCENARIOS[name]
    data = patient(*resources)
    assert len(ratings) >= 3
    for procedure_key, expected in ratings.items():
        assert answer(data, procedure_key, region) == (topic, variant, expected), procedure_key


def test_every_variant_of_the_new_topics_has_a_scenario() -> None:
    reached = {(topic, variant) for _, _, topic, variant, _ in SCENARIOS.values()} | {("cervical-pain", "v4")}
    built = {(t.id, v) for t in TOPICS if t.id not in ("vcf", "spinal-trauma", "low-back-pain", "thoracic-back-pain")
             for v in t.pack.variants}  # VCF, trauma and the back-pain topics have their own scenario tests
    assert reached == built


def test_cervical_v4_infection_is_reached_when_the_infection_topic_is_not_active() -> None:
    """With every topic active, a suspected infection goes to its own criteria (rank 4) first."""
    data = patient(*adult(NECK_ACUTE, DISCITIS))
    assert answer(data, "mri-spine-without-and-with-contrast", "cervical") == ("spine-infection", "v1", 9)
    [cervical] = load_topics("acr-cervical-pain-2024")
    draft = order("mri-spine-without-and-with-contrast", "cervical")
    match = classify_variant(facts_of(data), "imaging", cervical)
    assert match.variant == "v4"
    rated = {p: rate_order(order(p, "cervical"), match, cervical.pack).score
             for p in ("mri-spine-without-and-with-contrast", "mri-spine-without-contrast", "ct-spine-with-contrast")}
    assert (rate_order(draft, match, cervical.pack).score, rated) == (9, {
        "mri-spine-without-and-with-contrast": 9, "mri-spine-without-contrast": 6, "ct-spine-with-contrast": 5})


@pytest.mark.parametrize(("resources", "outcome", "missing"), [
    ((NECK_ACUTE,), "insufficient-data", ()),  # no birth date: the age is unknown, never assumed adult
    (adult(condition("c7", "M54.2", "Neck pain")), "insufficient-data", ("neck_pain_course",)),
])
def test_cervical_pain_without_age_or_course_is_insufficient_data(resources: tuple[dict[str, Any], ...],
                                                                   outcome: str, missing: tuple[str, ...]) -> None:
    [cervical] = load_topics("acr-cervical-pain-2024")
    match = classify_variant(facts_of(patient(*resources)), "imaging", cervical)
    assert match.outcome == outcome
    assert match.missing == (missing or ("age_years",))


def test_a_child_or_a_trauma_patient_is_outside_the_cervical_pain_criteria() -> None:
    child = {"resourceType": "Patient", "id": "p1", "birthDate": "2015-01-01"}
    assert answer(patient(child, NECK_ACUTE), "mri-spine-without-contrast", "cervical") == (
        "cervical-pain", "out-of-scope", "no-variant")


def test_a_cervical_order_for_a_patient_with_a_vertebral_fracture_stays_with_the_vcf_criteria() -> None:
    fracture = condition("f2", "M80.08XA", "Osteoporotic compression fracture of T12")
    assert answer(patient(*adult(NECK_ACUTE, fracture)), "mri-spine-without-contrast", "cervical")[0] == "vcf"


def test_a_myelopathy_whose_course_is_not_recorded_is_insufficient_data_and_the_card_asks_for_it() -> None:
    facts = facts_of(patient(condition("m3", "G95.9", "Myelopathy")))
    topic = next(t for t in TOPICS if t.id == "myelopathy")
    match = classify_variant(facts, "imaging", topic)
    assert (match.outcome, match.missing, match.blocked) == ("insufficient-data", ("myelopathy_course",), ("v1", "v2"))


def test_an_undated_spine_procedure_leaves_the_infection_variant_open() -> None:
    data = patient(DISCITIS, procedure("p2", "62323", "Lumbar epidural steroid injection", None))
    assert answer(data, "mri-spine-without-and-with-contrast", "lumbar") == (
        "spine-infection", "insufficient-data", "no-variant")
    infection = next(t for t in TOPICS if t.id == "spine-infection")
    assert "recent_spinal_intervention" in classify_variant(facts_of(data), "imaging", infection).missing


def test_an_old_spine_procedure_is_not_recent() -> None:
    data = patient(DISCITIS, procedure("p3", "62323", "Lumbar epidural steroid injection", 400))
    assert answer(data, "mri-spine-without-contrast", "lumbar") == ("spine-infection", "v1", 7)


def test_infection_red_flags_are_shown_not_deciding() -> None:
    lab = {"resourceType": "Observation", "id": "crp", "status": "final",
           "code": {"coding": [{"system": LOINC, "code": "1988-5"}]}, "valueQuantity": {"value": 80},
           "interpretation": [{"coding": [{"code": "H"}]}], "effectiveDateTime": day(1)}
    facts = facts_of(patient(DISCITIS, DIABETES, lab))
    assert facts.value("infection_red_flags") == ("diabetes", "abnormal-labs")


@pytest.mark.parametrize(("resources", "expected"), [
    ((DISCITIS, MYELOPATHY_ACUTE), "spine-infection"),  # an infection picture is asked first (its own V3)
    ((MYELOPATHY_ACUTE, IBP), "myelopathy"),  # myelopathy from any region goes to the myelopathy criteria
    ((condition("f1", "M80.08XA", "Osteoporotic compression fracture of T12"),), "vcf"),
    ((), "low-back-pain"),  # nothing of these topics and no fracture: lumbar back pain
])
def test_routing_between_the_spine_topics(resources: tuple[dict[str, Any], ...], expected: str) -> None:
    assert answer(patient(*resources), "mri-spine-without-contrast", "lumbar")[0] == expected


def test_a_sacroiliac_study_without_spondyloarthritis_is_taken_by_no_topic() -> None:
    assert answer(patient(), "radiography-sacroiliac-joints", "sacroiliac") == (None, None, None)

