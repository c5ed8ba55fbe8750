"""Variant decision rules on hand-built facts: order, precedence, conflicts, gates, insufficient data."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.clinical.facts import ClinicalFacts, Fact
from cds_service.clinical.variants import classify_variant, load_variant_rules

RULES = load_variant_rules()
BENIGN_BASE: dict[str, Any] = {
    "fracture": True, "high_energy_trauma": False, "malignancy": "none", "neuro_red_flag": False,
    "etiology": "osteoporotic", "prior_augmentation_or_surgery": False, "multiple_fractures": False,
    "deformity": False, "pulmonary_dysfunction": False, "contraindications": (),
}


def facts(conflicts: tuple[str, ...] = (), **values: Any) -> ClinicalFacts:
    merged = {**BENIGN_BASE, **values}
    present = {k: Fact(k, v, ("Condition/x",), "coded") for k, v in merged.items() if v is not None}
    return ClinicalFacts(present, tuple(k for k, v in merged.items() if v is None), conflicts)


def test_titles_carried_in_rules() -> None:
    assert RULES.packs["acr-vcf-2022"].variants["v6"].title == (
        "Symptomatic osteoporotic VCF with bone marrow edema or intravertebral cleft. Initial treatment.")
    assert RULES.packs["acr-vcf-2018"].variants["v8"].title == "Pathologic spinal fracture with neurologic deficits."
    assert sorted(RULES.packs["acr-vcf-2022"].variants) == [f"v{i}" for i in range(1, 10)]
    assert sorted(RULES.packs["acr-vcf-2018"].variants) == [f"v{i}" for i in range(1, 9)]


def test_decision_orders_are_pinned() -> None:
    assert RULES.packs["acr-vcf-2022"].order == {"imaging": ("v2", "v4", "v1", "v3"),
                                                 "treatment": ("v9", "v7", "v8", "v6", "v5")}
    assert RULES.packs["acr-vcf-2018"].order == {"imaging": ("v4", "v1"),
                                                 "treatment": ("v8", "v7", "v6", "v5", "v3", "v1", "v2")}
    assert RULES.benign_etiologies == ("osteoporotic", "traumatic", "unknown")


@pytest.mark.parametrize("malignancy", ["active", "history", "suspected"])
def test_2022_malignancy_first_in_imaging(malignancy: str) -> None:
    match = classify_variant(facts(malignancy=malignancy, new_fracture=True, symptomatic=True,
                                   multiple_fractures=True), "imaging", "acr-vcf-2022", RULES)
    assert match.variant == "v2"
    assert match.conflict == ("v3 also fits; v2 takes precedence: malignancy is decided first: a new "
                              "symptomatic VCF with a cancer history needs the malignancy work-up")


def test_2018_suspected_malignancy_is_not_known_malignancy() -> None:
    match = classify_variant(facts(malignancy="suspected", new_fracture=True, symptomatic=True), "imaging",
                             "acr-vcf-2018", RULES)
    assert match.variant is None


def test_v8_over_v6_is_documented_precedence() -> None:
    match = classify_variant(facts(new_fracture=False, symptomatic=True, pain_trend="worsening",
                                   marrow_edema=True), "treatment", "acr-vcf-2022", RULES)
    assert match.variant == "v8"
    assert match.conflict is not None and match.conflict.startswith("v6 also fits; v8 takes precedence")
    assert match.decided_by == ("new_fracture", "etiology", "malignancy", "neuro_red_flag", "pain_trend")


def test_v7_over_v6_for_new_fracture_after_vertebroplasty() -> None:
    match = classify_variant(facts(new_fracture=True, symptomatic=True, marrow_edema=True,
                                   prior_augmentation_or_surgery=True), "treatment", "acr-vcf-2022", RULES)
    assert (match.variant, match.conflict is not None) == ("v7", True)


def test_red_flag_excludes_benign_treatment_variants() -> None:
    match = classify_variant(facts(neuro_red_flag=True, new_fracture=False, symptomatic=True,
                                   pain_trend="worsening"), "treatment", "acr-vcf-2022", RULES)
    assert match.variant is None
    assert "red flag" in match.explanation


def test_pathologic_is_never_benign() -> None:
    match = classify_variant(facts(etiology="pathologic", malignancy="active", new_fracture=False,
                                   symptomatic=True, deformity=True), "treatment", "acr-vcf-2022", RULES)
    assert match.variant == "v9"


def test_unknown_fact_blocks_later_variants() -> None:
    match = classify_variant(facts(new_fracture=True, symptomatic=True, marrow_edema=None),
                             "treatment", "acr-vcf-2022", RULES)
    assert (match.variant, match.missing) == (None, ("marrow_edema",))
    assert match.explanation.startswith("Insufficient data")


def test_conflicting_etiology_counts_as_unknown() -> None:
    match = classify_variant(facts(conflicts=("etiology",), etiology=None, new_fracture=False,
                                   symptomatic=True, pain_trend="worsening"), "treatment", "acr-vcf-2022", RULES)
    assert match.variant is None
    assert "etiology" in match.missing


def test_gates() -> None:
    unknown = classify_variant(facts(fracture=None), "imaging", "acr-vcf-2022", RULES)
    assert (unknown.variant, unknown.missing) == (None, ("fracture",))
    assert unknown.explanation.startswith("Insufficient data:")  # never "out of scope" when data may be missing
    no_fracture = classify_variant(facts(fracture=False), "imaging", "acr-vcf-2022", RULES)
    assert (no_fracture.variant, no_fracture.missing) == (None, ())
    assert no_fracture.explanation.startswith("Out of scope: no current vertebral compression fracture")
    trauma = classify_variant(facts(high_energy_trauma=True, new_fracture=True, symptomatic=True), "imaging",
                              "acr-vcf-2022", RULES)
    assert trauma.explanation == "Out of scope: high-energy trauma is not covered by these criteria."
    unknown_pack = classify_variant(facts(), "imaging", "acr-vcf-1999", RULES)
    assert unknown_pack.explanation == "No decision rules for criteria pack 'acr-vcf-1999'."


def test_2018_contraindication_selects_v3_over_v2() -> None:
    match = classify_variant(facts(symptomatic=True, marrow_edema=True, new_fracture=False,
                                   contraindications=("pregnancy",)), "treatment", "acr-vcf-2018", RULES)
    assert match.variant == "v3"
    assert match.conflict == ("v2 also fits; v3 takes precedence: a contraindication to augmentation is the "
                              "more specific osteoporotic scenario")


def test_2018_neuro_deficit_first_for_pathologic() -> None:
    match = classify_variant(facts(etiology="pathologic", malignancy="active", neuro_red_flag=True,
                                   deformity=True, symptomatic=True), "treatment", "acr-vcf-2018", RULES)
    assert match.variant == "v8"
    assert match.conflict is not None and match.conflict.startswith("v7 also fits; v8 takes precedence")
