"""End-to-end clinical scenarios: FHIR resources -> facts -> ACR variant, for every variant of both packs.

Each picture is rendered three ways: coded with ICD-10-CM, coded with SNOMED CT, and text only. Coded
renderings must give the literal expected variant; the text-only rendering must give the same variant or
no variant ("insufficient data"), never a different one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cds_service.clinical.facts import ClinicalFacts, extract_facts, load_fact_rules
from cds_service.clinical.orders import DraftOrder
from cds_service.clinical.topic import topic_for_pack
from cds_service.clinical.variants import classify_variant
from cds_service.fhir.patient_data import PatientData

NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
FACT_RULES = load_fact_rules()
TOPICS = {pack: topic_for_pack(pack) for pack in ("acr-vcf-2022", "acr-vcf-2018")}

# Findings: (ICD-10-CM code, SNOMED CT code or None, text)
FX_OSTEO = ("M80.08XA", "311891006", "Osteoporotic compression fracture of T12")
FX_PATH = ("M84.58XA", "866087009", "Pathologic compression fracture of L2")
FX_UNSPEC = ("M48.54XA", "42942008", "Compression fracture of T12")
OSTEOPOROSIS = ("M81.0", "64859006", "Osteoporosis")
CANCER = ("C50.911", "363346000", "Metastatic breast cancer")
KYPHOSIS = ("M40.204", "414564002", "Kyphosis, thoracic")
DYSPNEA = ("R06.02", "267036007", "Shortness of breath")
CAUDA = ("G83.4", "192970008", "Cauda equina syndrome")
WEAKNESS = ("R29.898", None, "Leg weakness")  # no ICD-10-CM or verified SNOMED code for leg weakness: the text decides
RETENTION = ("R33.9", "267064002", "Urinary retention")
COAG = ("D68.9", None, "Coagulopathy")
VERTEBROPLASTY = ("22510", "392010000", "Percutaneous vertebroplasty T10")


def day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).date().isoformat()


def condition(rid: str, finding: tuple[str, str | None, str], style: str, days_ago: int,
              status: str = "active") -> dict[str, Any]:
    icd, sct, text = finding
    if style == "icd":
        code: dict[str, Any] = {"coding": [{"system": ICD, "code": icd}]}
    elif style == "snomed" and sct:
        code = {"coding": [{"system": SCT, "code": sct}]}
    else:
        code = {"text": text}
    return {"resourceType": "Condition", "id": rid, "clinicalStatus": {"coding": [{"code": status}]},
            "code": code, "onsetDateTime": day(days_ago), "recordedDate": day(days_ago)}


def pain(rid: str, score: int, days_ago: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "72514-3"}]}, "valueInteger": score,
            "effectiveDateTime": day(days_ago)}


def procedure(rid: str, style: str, days_ago: int) -> dict[str, Any]:
    cpt, sct, text = VERTEBROPLASTY
    code = ({"coding": [{"system": CPT, "code": cpt}]} if style == "icd"
            else {"coding": [{"system": SCT, "code": sct}]} if style == "snomed" else {"text": text})
    return {"resourceType": "Procedure", "id": rid, "status": "completed", "code": code,
            "performedDateTime": day(days_ago)}


def mri_report(rid: str, conclusion: str, days_ago: int) -> dict[str, Any]:
    return {"resourceType": "DiagnosticReport", "id": rid, "status": "final",
            "code": {"text": "MRI thoracic spine without contrast"}, "conclusion": conclusion,
            "effectiveDateTime": day(days_ago)}


def patient(*resources: dict[str, Any]) -> PatientData:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        grouped.setdefault(resource["resourceType"], []).append(resource)
    return PatientData({k: tuple(v) for k, v in grouped.items()}, {}, ())


def build(picture: dict[str, Any], style: str) -> PatientData:
    """Render an abstract clinical picture into FHIR resources in one coding style."""
    resources: list[dict[str, Any]] = []
    for i, (finding, days_ago, *status) in enumerate(picture.get("conditions", ())):
        resources.append(condition(f"c{i}", finding, style, days_ago, *status))
    if style == "text":
        resources.extend(condition(f"t{i}", ("", None, text), "text", 1)
                         for i, text in enumerate(picture.get("symptom_text", ())))
    else:
        resources.extend(pain(f"p{i}", score, days_ago) for i, (score, days_ago) in enumerate(picture.get("pain", ())))
    if "vertebroplasty" in picture:
        resources.append(procedure("vp", style, picture["vertebroplasty"]))
    if "mri" in picture:
        resources.append(mri_report("mri", *picture["mri"]))
    resources.extend(picture.get("extra", ()))
    return patient(*resources)


def facts_for(data: PatientData, orders: tuple[DraftOrder, ...] = ()) -> ClinicalFacts:
    return extract_facts(data, orders, NOW, FACT_RULES)


SEED = {  # 82-year-old woman, osteoporosis, T12 VCF from a fall 3 months ago, worse pain, stooped, dyspnea
    "conditions": [(FX_OSTEO, 92), (OSTEOPOROSIS, 2000), (KYPHOSIS, 14), (DYSPNEA, 14)],
    "pain": [(4, 80), (5, 40), (8, 2)],
    "symptom_text": ["Worsening mechanical back pain after a fall"],
    "extra": [{"resourceType": "MedicationStatement", "id": "apap", "status": "active",
               "medicationCodeableConcept": {"text": "Acetaminophen 500 mg tablet"}},
              {"resourceType": "Procedure", "id": "brace", "status": "completed",
               "code": {"text": "Thoracolumbar brace fitting"}, "performedDateTime": day(88)}],
}
NEW_SYMPTOMATIC = {"conditions": [(FX_OSTEO, 6), (OSTEOPOROSIS, 900)], "pain": [(7, 5), (7, 1)],
                   "symptom_text": ["Acute back pain"]}
NEW_WITH_CANCER = {"conditions": [(FX_UNSPEC, 6), (CANCER, 300)], "pain": [(6, 5), (7, 1)],
                   "symptom_text": ["Back pain"]}
PRIOR_VP_NEW_PAIN = {"conditions": [(FX_OSTEO, 200)], "vertebroplasty": 400, "pain": [(6, 3), (6, 1)],
                     "symptom_text": ["New back pain"]}
ASYMPTOMATIC_CANCER = {"conditions": [(FX_UNSPEC, 6), (CANCER, 300)], "pain": [(0, 2)],
                       "symptom_text": ["Asymptomatic, found incidentally on chest radiograph"]}
ASYMPTOMATIC_OSTEO = {"conditions": [(FX_OSTEO, 6), (OSTEOPOROSIS, 900)], "pain": [(0, 2)],
                      "symptom_text": ["Asymptomatic, found incidentally on chest radiograph"]}
EDEMA_OSTEO = {"conditions": [(FX_OSTEO, 12), (OSTEOPOROSIS, 900)], "pain": [(7, 10), (7, 1)],
               "symptom_text": ["Back pain"],
               "mri": ("Acute T12 compression fracture with bone marrow edema. No retropulsion.", 5)}
NEW_AFTER_VP = {"conditions": [(FX_OSTEO, 8), (OSTEOPOROSIS, 900)], "vertebroplasty": 400,
                "pain": [(8, 6), (8, 1)], "symptom_text": ["Back pain"]}
PATH_PAINFUL = {"conditions": [(FX_PATH, 20), (CANCER, 300)], "pain": [(6, 15), (6, 1)],
                "symptom_text": ["Mechanical back pain"]}
PATH_WORSENING = {"conditions": [(FX_PATH, 20), (CANCER, 300)], "pain": [(4, 15), (8, 1)],
                  "symptom_text": ["Worsening back pain"]}
PATH_ASYMPTOMATIC = {"conditions": [(FX_PATH, 20), (CANCER, 300)], "pain": [(0, 1)],
                     "symptom_text": ["Asymptomatic"]}
PATH_KYPHOSIS = {"conditions": [(FX_PATH, 20), (CANCER, 300), (KYPHOSIS, 10)], "pain": [(6, 15), (6, 1)],
                 "symptom_text": ["Back pain"]}
PATH_CAUDA = {"conditions": [(FX_PATH, 20), (CANCER, 300), (CAUDA, 2)], "pain": [(6, 15), (6, 1)],
              "symptom_text": ["Back pain"]}
EDEMA_COAGULOPATHY = {**EDEMA_OSTEO, "conditions": [(FX_OSTEO, 12), (OSTEOPOROSIS, 900), (COAG, 700)]}

CASES = [
    ("acr-vcf-2022", "imaging", NEW_SYMPTOMATIC, "v1"),
    ("acr-vcf-2022", "imaging", NEW_WITH_CANCER, "v2"),
    ("acr-vcf-2022", "imaging", PRIOR_VP_NEW_PAIN, "v3"),
    ("acr-vcf-2022", "imaging", ASYMPTOMATIC_CANCER, "v4"),
    ("acr-vcf-2022", "treatment", ASYMPTOMATIC_OSTEO, "v5"),
    ("acr-vcf-2022", "treatment", EDEMA_OSTEO, "v6"),
    ("acr-vcf-2022", "treatment", NEW_AFTER_VP, "v7"),
    ("acr-vcf-2022", "treatment", SEED, "v8"),
    ("acr-vcf-2022", "treatment", PATH_PAINFUL, "v9"),
    ("acr-vcf-2018", "imaging", NEW_SYMPTOMATIC, "v1"),
    ("acr-vcf-2018", "treatment", NEW_SYMPTOMATIC, "v1"),
    ("acr-vcf-2018", "treatment", SEED, "v2"),
    ("acr-vcf-2018", "treatment", EDEMA_COAGULOPATHY, "v3"),
    ("acr-vcf-2018", "imaging", NEW_WITH_CANCER, "v4"),
    ("acr-vcf-2018", "treatment", PATH_ASYMPTOMATIC, "v5"),
    ("acr-vcf-2018", "treatment", PATH_WORSENING, "v6"),
    ("acr-vcf-2018", "treatment", PATH_KYPHOSIS, "v7"),
    ("acr-vcf-2018", "treatment", PATH_CAUDA, "v8"),
]
IDS = [f"{pack}-{kind}-{expected}" for pack, kind, _, expected in CASES]


@pytest.mark.parametrize(("pack", "kind", "picture", "expected"), CASES, ids=IDS)
@pytest.mark.parametrize("style", ["icd", "snomed"])
def test_coded_picture_maps_to_variant(pack: str, kind: str, picture: dict[str, Any], expected: str,
                                       style: str) -> None:
    match = classify_variant(facts_for(build(picture, style)), kind, TOPICS[pack])
    assert match.variant == expected, match


@pytest.mark.parametrize(("pack", "kind", "picture", "expected"), CASES, ids=IDS)
def test_text_only_picture_never_gives_another_variant(pack: str, kind: str, picture: dict[str, Any],
                                                       expected: str) -> None:
    facts = facts_for(build(picture, "text"))
    match = classify_variant(facts, kind, TOPICS[pack])
    assert match.variant in (expected, None), match
    if match.variant is None:
        assert match.outcome in ("insufficient-data", "no-variant", "out-of-scope")


def test_every_variant_of_both_packs_has_a_scenario() -> None:
    covered = {(pack, expected) for pack, _, _, expected in CASES}
    assert covered == {("acr-vcf-2022", f"v{i}") for i in range(1, 10)} | {
        ("acr-vcf-2018", f"v{i}") for i in range(1, 9)}


def test_seed_case_maps_to_2022_v8_on_worsening_pain_deformity_and_dyspnea() -> None:
    facts = facts_for(build(SEED, "icd"))
    assert facts.value("fracture_onset") == "2026-03-01"
    assert facts.value("acuity") == "subacute"
    assert facts.value("new_fracture") is False
    assert facts.value("etiology") == "osteoporotic"
    assert facts.value("pain_trend") == "worsening"
    assert facts.value("pain_latest") == 8
    assert facts.value("deformity") is True
    assert facts.value("pulmonary_dysfunction") is True
    assert facts.value("failed_conservative_care") is True
    assert facts.value("neuro_red_flag") is False
    match = classify_variant(facts, "treatment", TOPICS["acr-vcf-2022"])
    assert match.variant == "v8"
    assert match.title == "Benign VCF with worsening pain, deformity, or pulmonary dysfunction. Initial treatment."
    assert {"pain_trend", "deformity", "pulmonary_dysfunction"} <= set(match.decided_by)
    assert match.also_fits is None


def test_seed_case_text_only_still_v8() -> None:
    facts = facts_for(build(SEED, "text"))
    assert facts.facts["pain_trend"].confidence == "text"
    assert classify_variant(facts, "treatment", TOPICS["acr-vcf-2022"]).variant == "v8"


def test_seed_case_with_new_leg_weakness_and_urinary_retention_raises_red_flag() -> None:
    picture = {**SEED, "conditions": [*SEED["conditions"], (WEAKNESS, 3), (RETENTION, 2)]}
    facts = facts_for(build(picture, "icd"))
    assert facts.value("neuro_red_flag") is True
    # the coded urinary retention decides it (R29.898 for the weakness is too unspecific to count on its own)
    assert facts.facts["neuro_red_flag"].sources == ("Condition/c5",)
    match = classify_variant(facts, "treatment", TOPICS["acr-vcf-2022"])
    assert match.variant is None
    assert (match.outcome, match.reason) == ("no-variant", "neuro-red-flag")


def test_seed_case_with_marrow_edema_stays_v8_and_names_v6_as_conflict() -> None:
    picture = {**SEED, "mri": ("T12 fracture with intravertebral cleft and marrow edema.", 20)}
    match = classify_variant(facts_for(build(picture, "icd")), "treatment", TOPICS["acr-vcf-2022"])
    assert match.variant == "v8"
    assert match.also_fits is not None and match.also_fits[0] == "v6"


def test_vcf_reason_on_the_order_alone_is_a_new_fracture() -> None:
    order = DraftOrder(reference="ServiceRequest/mri1", resource={}, procedure="mri-spine-without-contrast",
                       kind="imaging", display="MRI thoracic spine", recognised_by="code", matched_code=None,
                       reason_codes=({"system": SCT, "code": "42942008"},), requires_fracture_context=False)
    facts = facts_for(patient(pain("p1", 6, 3), pain("p2", 7, 1)), (order,))
    assert facts.facts["fracture"].sources == ("ServiceRequest/mri1 (reasonCode)",)
    assert facts.value("new_fracture") is True
    assert classify_variant(facts, "imaging", TOPICS["acr-vcf-2022"]).variant == "v1"


def test_high_energy_trauma_is_out_of_scope() -> None:
    data = patient(condition("fx", ("S32.010A", None, ""), "icd", 5),
                   condition("mvc", ("V43.52XA", None, ""), "icd", 5), pain("p1", 8, 1))
    facts = facts_for(data)
    assert facts.value("high_energy_trauma") is True
    match = classify_variant(facts, "imaging", TOPICS["acr-vcf-2022"])
    assert match.variant is None
    assert (match.outcome, match.reason) == ("out-of-scope", "high-energy-trauma")


def test_an_old_car_accident_does_not_make_a_new_fracture_high_energy() -> None:
    data = patient(condition("fx", ("S32.010A", None, ""), "icd", 5),
                   condition("mvc", ("V43.52XS", None, ""), "icd", 2000), pain("p1", 8, 1))
    assert facts_for(data).value("high_energy_trauma") is not True


def test_no_fracture_on_a_problem_list_that_was_read_is_out_of_scope() -> None:
    match = classify_variant(facts_for(patient(pain("p1", 5, 1))), "imaging", TOPICS["acr-vcf-2022"])
    assert (match.variant, match.outcome, match.reason) == (None, "out-of-scope", "no-current-fracture")


def test_no_fracture_is_unknown_when_the_problem_list_could_not_be_read() -> None:
    data = patient(pain("p1", 5, 1))
    data = PatientData(data.resources, {"conditions": "missing"}, data.missing)
    facts = facts_for(data)
    assert "fracture" not in facts.facts and facts.unchecked["fracture"].keys == ("conditions",)
    match = classify_variant(facts, "imaging", TOPICS["acr-vcf-2022"])
    # a prior VCF history is read from the problem list too, so it is unknown as well
    assert (match.outcome, match.reason, match.missing) == ("insufficient-data", "fracture-unknown",
                                                            ("fracture", "prior_vcf_history"))
