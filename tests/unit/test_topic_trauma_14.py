"""Scenarios for the Acute Spinal Trauma topic (2024): every variant reached through the router, with the
reference ratings (shared/reference/acr-spine-topics.md section 4a), and the one unknown fact that decides
between the low-risk and imaging-indicated variants asked for on the card."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.clinical.variants import classify_variant
from tests.unit.test_topic_cards_14 import _hook
from tests.unit.test_topic_cards_14 import client as service_client  # noqa: F401  (the fixture "client")
from tests.unit.test_topic_scenarios_14 import CPT, TOPICS, answer, condition, facts_of, order, patient, report


def aged(years: int, *resources: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    return ({"resourceType": "Patient", "id": "p1", "birthDate": f"{2026 - years}-01-15"}, *resources)


NECK_TRAUMA = condition("t1", None, "Blunt neck trauma after a bicycle fall")
NEXUS_LOW = condition("t2", None, "NEXUS negative")
COLLAR = condition("t3", None, "Remains in cervical collar for neck pain")
ARTERY = condition("t4", None, "Suspected vertebral artery dissection", verification="provisional")
CORD = condition("t5", None, "Central cord syndrome")
MVC = condition("t6", None, "Motor vehicle collision, restrained driver")
OBTUNDED = condition("t7", None, "Obtunded")
CT_NEGATIVE = report("t8", CPT, "72125", "CT cervical spine without contrast", "No acute fracture or malalignment.", 1)

SCENARIOS = {
    "v1: low risk by NEXUS, age 40": (aged(40, NECK_TRAUMA, NEXUS_LOW), "cervical", "v1", {
        "ct-spine-without-contrast": 1, "radiography-spine": 1, "mri-spine-without-contrast": 1}),
    "v2: age 70, imaging indicated": (aged(70, NECK_TRAUMA), "cervical", "v2", {
        "ct-spine-without-contrast": 9, "radiography-spine": 1, "mri-spine-without-contrast": 1}),
    "v3: kept in a collar": (aged(40, NECK_TRAUMA, COLLAR), "cervical", "v3", {
        "ct-spine-without-contrast": 8, "mri-spine-without-contrast": 5, "radiography-spine": 5}),
    "v4: suspected arterial injury": (aged(40, NECK_TRAUMA, ARTERY), "neck", "v4", {
        "cta-head-and-neck": 9, "mra-neck-with-contrast": 1, "mra-neck-without-contrast": 1,
        "arteriography-cervicocerebral": 1}),
    "v5: central cord syndrome": (aged(40, NECK_TRAUMA, CORD), "cervical", "v5", {
        "mri-spine-without-contrast": 9, "ct-myelography-spine": 3, "mri-spine-with-contrast": 1}),
    "v6: lumbar, motor vehicle collision": (aged(40, MVC), "lumbar", "v6", {
        "ct-spine-without-contrast": 9, "mri-spine-without-contrast": 1, "radiography-spine": 1}),
    "v7: obtunded, cervical CT without injury": (aged(40, NECK_TRAUMA, OBTUNDED, CT_NEGATIVE), "cervical", "v7", {
        "mri-spine-without-contrast": 5, "cta-head-and-neck": 2, "ct-myelography-spine": 1}),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_trauma_scenario_reaches_its_variant_with_the_reference_ratings(name: str) -> None:
    resources, region, variant, ratings = SCENARIOS[name]
    data = patient(*resources)
    for procedure_key, expected in ratings.items():
        assert answer(data, procedure_key, region) == ("spinal-trauma", variant, expected), procedure_key


def test_every_trauma_variant_has_a_scenario() -> None:
    trauma = next(t for t in TOPICS if t.id == "spinal-trauma")
    assert {variant for _, _, variant, _ in SCENARIOS.values()} == set(trauma.pack.variants)


def test_without_the_nexus_or_ccr_result_the_low_risk_and_indicated_variants_stay_open() -> None:
    trauma = next(t for t in TOPICS if t.id == "spinal-trauma")
    match = classify_variant(facts_of(patient(*aged(40, NECK_TRAUMA))), "imaging", trauma,
                             order("ct-spine-without-contrast", "cervical"))
    assert (match.outcome, match.blocked, match.missing) == ("insufficient-data", ("v2", "v1"), ("cspine_rule",))


def test_the_trauma_card_asks_for_the_nexus_or_ccr_result(client: Any) -> None:
    response = _hook(client, "72125", NECK_TRAUMA, born="1986-01-15")  # CT cervical spine without contrast
    [card] = [c for c in response["cards"] if "not rated" in c["summary"]]
    assert "document: Canadian C-spine Rule or NEXUS result (imaging indicated, or low risk)" in card["detail"]


def test_a_child_is_outside_the_trauma_criteria() -> None:
    assert answer(patient(*aged(12, NECK_TRAUMA)), "ct-spine-without-contrast", "cervical") == (
        "spinal-trauma", "out-of-scope", "no-variant")


def test_a_fragility_fracture_after_a_fall_from_standing_stays_with_the_vcf_criteria() -> None:
    fracture = condition("f3", "M80.08XA", "Osteoporotic compression fracture of L1 after a fall from standing")
    assert answer(patient(*aged(80, fracture)), "mri-spine-without-contrast", "lumbar")[0] == "vcf"
