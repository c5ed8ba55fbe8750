"""Fact extraction rules: code matching, statuses, negation, thresholds. Expected values are literals."""

from __future__ import annotations

from typing import Any

import pytest
from test_clinical_scenarios import ICD, LOINC, SCT, condition, day, facts_for, pain, patient

from cds_service.clinical.codes import icd_fracture_level, normalise_code, system_name, text_levels
from cds_service.clinical.facts.rules import STATUSES, load_fact_rules
from cds_service.datafiles import check_provenance

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"


def cond(rid: str, system: str, code: str, days_ago: int = 10, status: str = "active",
         verification: str | None = None) -> dict[str, Any]:
    resource = {"resourceType": "Condition", "id": rid, "clinicalStatus": {"coding": [{"code": status}]},
                "code": {"coding": [{"system": system, "code": code}]}, "onsetDateTime": day(days_ago)}
    if verification:
        resource["verificationStatus"] = {"coding": [{"code": verification}]}
    return resource


def text_cond(rid: str, text: str, days_ago: int = 10) -> dict[str, Any]:
    return condition(rid, ("", None, text), "text", days_ago)


@pytest.mark.parametrize("uri", ["http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10",
                                 "urn:oid:2.16.840.1.113883.6.90"])
def test_icd10cm_system_aliases(uri: str) -> None:
    assert system_name(uri) == "icd10cm"
    assert facts_for(patient(cond("fx", uri, "M80.08XS"))).value("fracture") is True


def test_snomed_oid_alias_and_dotless_icd() -> None:
    assert system_name("urn:oid:2.16.840.1.113883.6.96") == "snomed"
    assert normalise_code("icd10cm", "m8008xa") == "M80.08XA"


def test_code_needs_matching_system() -> None:
    assert facts_for(patient(cond("fx", SCT, "M80.08XA"))).value("fracture") is False  # ICD code, SNOMED system


@pytest.mark.parametrize(("code", "level"), [("S22.080A", "T11-T12"), ("S22.050A", "T5-T6"),
                                             ("S32.010A", "L1"), ("S32.059D", "L5"), ("M80.08XA", None)])
def test_fracture_level_from_icd(code: str, level: str | None) -> None:
    assert icd_fracture_level(code) == level


def test_text_levels() -> None:
    assert text_levels("wedge fracture of T12 and L-1, T12 again") == ("T12", "L1")
    # MRI sequence names are not vertebral levels (review finding: they made one fracture "multiple")
    assert text_levels("T1 hypointense, T2/STIR hyperintense signal at T12; T1-weighted and T2W images") == ("T12",)


def test_seventh_character_a_is_not_new() -> None:
    facts = facts_for(patient(cond("fx", ICD, "M80.08XA", days_ago=200)))
    assert facts.value("new_fracture") is False
    assert facts.value("acuity") == "chronic"


@pytest.mark.parametrize(("days_ago", "acuity"), [(89, "acute"), (90, "subacute"), (180, "subacute"),
                                                  (181, "chronic")])
def test_acuity_bounds(days_ago: int, acuity: str) -> None:
    assert facts_for(patient(cond("fx", ICD, "M80.08XA", days_ago))).value("acuity") == acuity


@pytest.mark.parametrize(("status", "verification"), [("resolved", None), ("inactive", None),
                                                      ("active", "refuted"), ("active", "entered-in-error")])
def test_fracture_not_current(status: str, verification: str | None) -> None:
    facts = facts_for(patient(cond("fx", ICD, "M80.08XA", status=status, verification=verification)))
    assert facts.value("fracture") is False  # the problem list was read: no current fracture


def test_new_fracture_false_after_mri_work_up() -> None:
    report = {"resourceType": "DiagnosticReport", "id": "mri", "status": "final",
              "code": {"coding": [{"system": LOINC, "code": "36532-0"}]}, "effectiveDateTime": day(3)}
    facts = facts_for(patient(cond("fx", ICD, "M80.08XA", days_ago=10), report))
    assert facts.value("new_fracture") is False
    assert facts.value("marrow_edema") is False  # spine MRI on record that does not mention edema


def test_recent_fracture_without_work_up_is_new() -> None:
    facts = facts_for(patient(cond("fx", ICD, "M80.08XA", days_ago=10)))
    assert facts.value("new_fracture") is True
    assert "marrow_edema" in facts.missing


@pytest.mark.parametrize(("resource", "value"), [
    (cond("c", ICD, "C50.911"), "active"),
    (cond("c", ICD, "C50.911", status="resolved"), "history"),
    (cond("c", ICD, "C50.911", status="remission"), "history"),
    (cond("c", ICD, "C79.51", verification="provisional"), "suspected"),
    (cond("c", ICD, "Z85.3", status="resolved"), "history"),
    (cond("c", ICD, "C44.311"), "none"),
    (cond("c", ICD, "D47.2"), "none"),
    (cond("c", ICD, "Z92.3"), "none"),
    (cond("c", ICD, "C50.911", verification="refuted"), "none"),
    (text_cond("c", "Biopsy negative for malignancy"), "none"),
    (text_cond("c", "Basal cell carcinoma of nose"), "none"),
    (text_cond("c", "History of prostate cancer"), "history"),
    # family history and screening name a cancer but are not one (review finding; was "active")
    ({**cond("c", ICD, "Z80.3"), "code": {"coding": [{"system": ICD, "code": "Z80.3",
                                                      "display": "Family history of malignant neoplasm of breast"}]}},
     "none"),
    ({**cond("c", ICD, "Z12.31"), "code": {"coding": [{"system": ICD, "code": "Z12.31", "display":
                                                       "Encounter for screening mammogram for malignant neoplasm"}]}},
     "none"),
    (text_cond("c", "Family history of colon cancer"), "none"),
])
def test_malignancy(resource: dict[str, Any], value: str) -> None:
    assert facts_for(patient(resource)).value("malignancy") == value


def test_etiology_conflict_without_malignancy() -> None:
    facts = facts_for(patient(cond("a", ICD, "M80.08XA"), cond("b", ICD, "M84.58XA")))
    assert "etiology" in facts.conflicts
    assert "etiology" not in facts.facts


def test_etiology_pathologic_when_malignancy_explains_it() -> None:
    facts = facts_for(patient(cond("a", ICD, "M80.08XA"), cond("b", ICD, "M84.58XA"), cond("c", ICD, "C90.00")))
    assert facts.value("etiology") == "pathologic"
    assert facts.conflicts == ()


def test_traumatic_code_after_low_energy_fall_with_osteoporosis_is_fragility() -> None:
    fx = cond("fx", ICD, "S22.080A")
    fx["note"] = [{"text": "Fell from standing at home"}]
    facts = facts_for(patient(fx, cond("op", ICD, "M81.0", 900)))
    assert facts.value("etiology") == "osteoporotic"
    assert facts.value("fracture_level") == "T11-T12"
    assert facts.facts["fracture_level"].confidence == "coded"


def test_traumatic_code_without_fall_stays_traumatic() -> None:
    facts = facts_for(patient(cond("fx", ICD, "S32.010A"), cond("op", ICD, "M81.0", 900)))
    assert facts.value("etiology") == "traumatic"


def test_unspecified_vcf_with_osteoporosis_presumed_osteoporotic() -> None:
    facts = facts_for(patient(cond("fx", SCT, "42942008"), cond("op", SCT, "64859006", 900)))
    assert facts.value("etiology") == "osteoporotic"


@pytest.mark.parametrize(("scores", "trend"), [
    ([(5, 30), (7, 1)], "worsening"), ([(3, 30), (4, 1)], "worsening"), ([(5, 30), (6, 1)], "stable"),
    ([(8, 30), (5, 1)], "improving"), ([(2, 200), (8, 1)], None), ([(8, 1)], None),
    # eased, then came back worse (seed 004): against the best earlier score, not the first one
    ([(7, 85), (5, 40), (8, 1)], "worsening"), ([(8, 60), (7, 30), (8, 1)], "stable"),
    ([(5, 60), (8, 30), (6, 1)], "improving"),
    ([(8, 60), (2, 30), (4, 1)], "improving")])  # a rebound below the start is not worsening (review finding)
def test_pain_trend(scores: list[tuple[int, int]], trend: str | None) -> None:
    data = patient(*(pain(f"p{i}", s, d) for i, (s, d) in enumerate(scores)))
    assert facts_for(data).value("pain_trend") == trend


def test_single_score_trend_is_missing_and_latest_known() -> None:
    facts = facts_for(patient(pain("p", 6, 2)))
    assert "pain_trend" in facts.missing
    assert facts.value("pain_latest") == 6
    assert facts.value("symptomatic") is True


@pytest.mark.parametrize(("resource", "value"), [
    (cond("w", ICD, "M62.81", days_ago=10), False),  # new generalized muscle weakness alone pages no one
    (cond("w", ICD, "R53.1", days_ago=3), False),
    (cond("w", ICD, "R32", days_ago=3), False),  # unspecified incontinence, common and chronic in the elderly
    (cond("w", ICD, "R33.9", days_ago=400), False),  # retention long ago: not new
    (text_cond("t", "New numbness in both legs", 2), True),  # seed 004 names numbness
    (text_cond("t", "Saddle anesthesia since yesterday", 1), True),
    (text_cond("t", "Cord compression: none", 1), False),  # negation after the finding
    (text_cond("t", "Urinary retention absent", 1), False),
    (text_cond("t", "No fever but new leg weakness", 1), True),  # "but" ends the negation's scope
    (text_cond("t", "Denies fever, reports urinary retention", 1), True),
    (cond("r", ICD, "R33.9", days_ago=5), True),
    (cond("g", ICD, "G95.20", days_ago=900), False),  # cord compression with a 900-day onset is old: no page (issue 11)
    (cond("g", ICD, "G95.20", days_ago=9), True),
    (cond("rad", ICD, "M54.16", days_ago=5), False),
    (text_cond("t", "Denies leg weakness or incontinence", 2), False),
    (text_cond("t", "New leg weakness since Monday", 2), True),
])
def test_neuro_red_flag(resource: dict[str, Any], value: bool) -> None:
    assert facts_for(patient(resource)).value("neuro_red_flag") is value


@pytest.mark.parametrize(("text", "value"), [
    ("T12 fracture with bone marrow edema", True), ("No marrow edema. Old T12 fracture", False),
    ("Intravertebral cleft at T12", True), ("Without marrow oedema", False)])
def test_marrow_edema_text_with_negation(text: str, value: bool) -> None:
    report = {"resourceType": "DiagnosticReport", "id": "r", "status": "final", "conclusion": text}
    fact = facts_for(patient(report)).facts["marrow_edema"]
    assert (fact.value, fact.confidence, fact.sources) == (value, "text", ("DiagnosticReport/r",))


def test_flags_from_codes_and_text() -> None:
    facts = facts_for(patient(cond("k", SCT, "203657009"), text_cond("d", "no shortness of breath"),
                              cond("i", ICD, "M46.26"), text_cond("p", "Not pregnant"),
                              {"resourceType": "Procedure", "id": "vp", "status": "completed",
                               "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "22513"}]}},
                              text_cond("rp", "Retropulsed fragment narrowing the canal")))
    assert facts.value("deformity") is True
    assert facts.value("pulmonary_dysfunction") is False
    assert facts.value("contraindications") == ("infection",)
    assert facts.value("prior_augmentation_or_surgery") is True
    assert facts.value("retropulsion") is True


@pytest.mark.parametrize(("value", "osteoporosis"), [(-2.7, True), (-2.5, True), (-2.0, False)])
def test_dxa_t_score(value: float, osteoporosis: bool) -> None:
    obs = {"resourceType": "Observation", "id": "t", "status": "final", "effectiveDateTime": day(100),
           "code": {"coding": [{"system": LOINC, "code": "38267-1"}]}, "valueQuantity": {"value": value}}
    assert facts_for(patient(obs)).value("osteoporosis") is osteoporosis


def med(rid: str, status: str, days_ago: int, code: str | None = None, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": RX, "code": code}]} if code else {"text": text}
    return {"resourceType": "MedicationRequest", "id": rid, "status": status, "authoredOn": day(days_ago),
            "medicationCodeableConcept": concept}


@pytest.mark.parametrize(("resource", "value", "confidence"), [
    (med("m", "completed", 150, code="993452"), True, "coded"),   # denosumab: 6 months + grace
    (med("m", "completed", 250, code="993452"), False, "coded"),
    (med("m", "completed", 300, code="77655"), True, "coded"),    # zoledronic acid: 12 months + grace
    (med("m", "completed", 150, code="904431"), False, "coded"),  # weekly alendronate ended
    (med("m", "active", 400, text="Fosamax 70 mg weekly"), True, "text"),
    (med("m", "entered-in-error", 5, code="993452"), False, "coded"),
    (cond("z", ICD, "Z79.83"), True, "coded"),
])
def test_osteoporosis_therapy(resource: dict[str, Any], value: bool, confidence: str) -> None:
    fact = facts_for(patient(resource)).facts["osteoporosis_therapy"]
    assert (fact.value, fact.confidence) == (value, confidence)


def test_failed_conservative_care_needs_pain_not_improving() -> None:
    brace = {"resourceType": "Procedure", "id": "b", "status": "completed", "code": {"text": "TLSO brace"}}
    worse = facts_for(patient(brace, pain("p1", 4, 20), pain("p2", 7, 1)))
    better = facts_for(patient(brace, pain("p1", 8, 20), pain("p2", 3, 1)))
    assert worse.value("failed_conservative_care") is True
    assert better.value("failed_conservative_care") is False


def test_thresholds_are_pinned() -> None:
    rules = load_fact_rules()
    assert rules.thresholds["acuity"]["acute_below_days"] == 90
    assert rules.thresholds["acuity"]["chronic_above_days"] == 180
    assert rules.thresholds["acuity"]["days_per_month"] == 30
    trend = rules.thresholds["pain_trend"]
    assert (trend["window_days"], trend["min_scores"], trend["change_points"], trend["change_fraction"]) == (
        90, 2, 2, 0.3)
    assert rules.value("neuro_recent_days") == 30
    assert rules.value("new_fracture_days") == 30
    assert rules.value("symptom_window_days") == 90
    assert rules.value("osteoporosis_t_score") == -2.5
    assert rules.value("new_when_reason_only") is True
    assert rules.value("fragility_needs_fall") is True
    assert rules.value("presume_osteoporotic_unspecified") is True
    assert {d.name: d.coverage_days for d in rules.drugs}["denosumab"] == 210
    assert {d.name: d.coverage_days for d in rules.drugs}["zoledronic acid"] == 395
    assert {d.name: d.coverage_days for d in rules.drugs}["alendronate"] == 90


def test_provenance_check_rejects_unknown_source_and_status() -> None:
    with pytest.raises(ValueError, match="unknown source"):
        check_provenance({"x": [{"source": "NOPE", "status": "seen"}]}, {"S1"}, "t", STATUSES)
    with pytest.raises(ValueError, match="no valid status"):
        check_provenance({"x": {"source": "S1", "status": "maybe"}}, {"S1"}, "t", STATUSES)


def test_every_fact_cites_sources_or_is_an_absence() -> None:
    facts = facts_for(patient(cond("fx", ICD, "M80.08XA"), pain("p", 5, 1)))
    assert facts.facts["fracture"].sources == ("Condition/fx",)
    assert facts.facts["symptomatic"].sources == ("Observation/p",)


def test_entered_in_error_t_score_does_not_make_osteoporosis() -> None:
    def t_score(status: str) -> dict[str, Any]:
        return {"resourceType": "Observation", "id": f"dxa-{status}", "status": status,
                "code": {"coding": [{"system": LOINC, "code": "38267-1"}]},
                "valueQuantity": {"value": -3.1}, "effectiveDateTime": day(30)}
    assert facts_for(patient(t_score("final"))).value("osteoporosis") is True
    assert facts_for(patient(t_score("entered-in-error"))).value("osteoporosis") is False


def test_a_pain_score_older_than_the_symptom_window_is_not_the_latest_pain() -> None:
    assert facts_for(patient(pain("p", 8, 10))).value("pain_latest") == 8
    facts = facts_for(patient(pain("p", 8, 400)))  # a year-old score must not feed the NASS / Medicare checks
    assert facts.value("pain_latest") is None
