"""Variant decision rules on hand-built facts: order, precedence, conflicts, gates, insufficient data."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.clinical.facts import ClinicalFacts, Fact
from cds_service.clinical.topic import topic_for_pack
from cds_service.clinical.variants import classify_variant

TOPICS = {pack: topic_for_pack(pack) for pack in ("acr-vcf-2022", "acr-vcf-2018")}
BENIGN_BASE: dict[str, Any] = {
    "fracture": True, "high_energy_trauma": False, "malignancy": "none", "neuro_red_flag": False,
    "etiology": "osteoporotic", "prior_augmentation_or_surgery": False, "multiple_fractures": False,
    "deformity": False, "pulmonary_dysfunction": False, "contraindications": (), "prior_vcf_history": False,
}


def facts(conflicts: tuple[str, ...] = (), **values: Any) -> ClinicalFacts:
    merged = {**BENIGN_BASE, **values}
    present = {k: Fact(k, v, ("Condition/x",), "coded") for k, v in merged.items() if v is not None}
    return ClinicalFacts(present, tuple(k for k, v in merged.items() if v is None), conflicts)


def test_titles_carried_in_rules() -> None:
    assert TOPICS["acr-vcf-2022"].rules.variants["v6"].title == (
        "Symptomatic osteoporotic VCF with bone marrow edema or intravertebral cleft. Initial treatment.")
    assert TOPICS["acr-vcf-2018"].rules.variants["v8"].title == "Pathologic spinal fracture with neurologic deficits."
    assert sorted(TOPICS["acr-vcf-2022"].rules.variants) == [f"v{i}" for i in range(1, 10)]
    assert sorted(TOPICS["acr-vcf-2018"].rules.variants) == [f"v{i}" for i in range(1, 9)]


def test_decision_orders_are_pinned() -> None:
    assert TOPICS["acr-vcf-2022"].rules.order == {"imaging": ("v2", "v4", "v1", "v3"),
                                                 "treatment": ("v9", "v7", "v8", "v6", "v5")}
    assert TOPICS["acr-vcf-2018"].rules.order == {"imaging": ("v4", "v1"),
                                                 "treatment": ("v8", "v7", "v6", "v5", "v3", "v1", "v2")}
    assert TOPICS["acr-vcf-2022"].sets["benign_etiologies"] == ("osteoporotic", "traumatic", "unknown")


@pytest.mark.parametrize("malignancy", ["active", "history", "suspected"])
def test_2022_malignancy_first_in_imaging(malignancy: str) -> None:
    match = classify_variant(facts(malignancy=malignancy, new_fracture=True, symptomatic=True,
                                   multiple_fractures=True), "imaging", TOPICS["acr-vcf-2022"])
    assert match.variant == "v2"
    assert match.also_fits == ("v3", "malignancy is decided first: a new "
                              "symptomatic VCF with a cancer history needs the malignancy work-up")


def test_2018_suspected_malignancy_is_not_known_malignancy() -> None:
    match = classify_variant(facts(malignancy="suspected", new_fracture=True, symptomatic=True), "imaging",
                             TOPICS["acr-vcf-2018"])
    assert match.variant is None


def test_v8_over_v6_is_documented_precedence() -> None:
    match = classify_variant(facts(new_fracture=False, symptomatic=True, pain_trend="worsening",
                                   marrow_edema=True), "treatment", TOPICS["acr-vcf-2022"])
    assert match.variant == "v8"
    assert match.also_fits is not None and match.also_fits[0] == "v6"
    assert match.decided_by == ("new_fracture", "etiology", "malignancy", "neuro_red_flag", "pain_trend")


def test_v7_over_v6_for_recent_fracture_after_vertebroplasty() -> None:
    match = classify_variant(facts(recent_fracture=True, new_fracture=False, symptomatic=True, marrow_edema=True,
                                   prior_augmentation_or_surgery=True), "treatment", TOPICS["acr-vcf-2022"])
    assert (match.variant, match.also_fits is not None) == ("v7", True)


def test_red_flag_excludes_benign_treatment_variants() -> None:
    match = classify_variant(facts(neuro_red_flag=True, new_fracture=False, symptomatic=True,
                                   pain_trend="worsening"), "treatment", TOPICS["acr-vcf-2022"])
    assert match.variant is None
    assert (match.outcome, match.reason) == ("no-variant", "neuro-red-flag")


def test_pathologic_is_never_benign() -> None:
    match = classify_variant(facts(etiology="pathologic", malignancy="active", new_fracture=False,
                                   symptomatic=True, deformity=True), "treatment", TOPICS["acr-vcf-2022"])
    assert match.variant == "v9"


def test_unknown_fact_blocks_later_variants() -> None:
    match = classify_variant(facts(new_fracture=True, symptomatic=True, marrow_edema=None),
                             "treatment", TOPICS["acr-vcf-2022"])
    assert (match.variant, match.missing) == (None, ("marrow_edema",))
    assert match.outcome == "insufficient-data" and match.blocked


def test_conflicting_etiology_counts_as_unknown() -> None:
    match = classify_variant(facts(conflicts=("etiology",), etiology=None, new_fracture=False,
                                   symptomatic=True, pain_trend="worsening"), "treatment", TOPICS["acr-vcf-2022"])
    assert match.variant is None
    assert "etiology" in match.missing


def test_gates() -> None:
    unknown = classify_variant(facts(fracture=None), "imaging", TOPICS["acr-vcf-2022"])
    assert (unknown.variant, unknown.missing) == (None, ("fracture",))
    assert (unknown.outcome, unknown.reason) == ("insufficient-data", "fracture-unknown")
    # never "out of scope" when data may be missing
    no_fracture = classify_variant(facts(fracture=False), "imaging", TOPICS["acr-vcf-2022"])
    assert (no_fracture.variant, no_fracture.missing) == (None, ())
    assert (no_fracture.outcome, no_fracture.reason) == ("out-of-scope", "no-current-fracture")
    trauma = classify_variant(facts(high_energy_trauma=True, new_fracture=True, symptomatic=True), "imaging",
                              TOPICS["acr-vcf-2022"])
    assert (trauma.outcome, trauma.reason) == ("out-of-scope", "high-energy-trauma")


def test_2018_contraindication_selects_v3_over_v2() -> None:
    match = classify_variant(facts(symptomatic=True, marrow_edema=True, new_fracture=False,
                                   contraindications=("pregnancy",)), "treatment", TOPICS["acr-vcf-2018"])
    assert match.variant == "v3"
    assert match.also_fits == ("v2", "a contraindication to augmentation is the "
                              "more specific osteoporotic scenario")


def test_2018_neuro_deficit_first_for_pathologic() -> None:
    match = classify_variant(facts(etiology="pathologic", malignancy="active", neuro_red_flag=True,
                                   deformity=True, symptomatic=True), "treatment", TOPICS["acr-vcf-2018"])
    assert match.variant == "v8"
    assert match.also_fits is not None and match.also_fits[0] == "v7"
