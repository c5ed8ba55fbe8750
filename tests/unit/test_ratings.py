"""Ratings: the seed case, one literal row per variant of both packs, no-criteria-apply, no-variant, alternatives."""

from __future__ import annotations

import pytest

from cds_service.clinical.orders import DraftOrder
from cds_service.clinical.packs import load_pack
from cds_service.clinical.ratings import rate_order
from cds_service.clinical.variants import VariantMatch

IMAGING = {"mri-spine-without-contrast", "mri-spine-with-contrast", "mri-spine-without-and-with-contrast",
           "ct-spine-without-contrast", "ct-spine-with-contrast", "ct-spine-without-and-with-contrast",
           "ct-myelography-spine", "radiography-spine", "bone-scan-whole-body", "spect-spine",
           "fdg-pet-ct-skull-base-to-mid-thigh", "dxa", "dxa-vfa", "image-guided-biopsy-spine"}


def _order(procedure: str) -> DraftOrder:
    return DraftOrder(reference="ServiceRequest/a", resource={"resourceType": "ServiceRequest", "id": "a"},
                      procedure=procedure, kind="imaging" if procedure in IMAGING else "treatment",
                      display=procedure, recognised_by="code", matched_code=None, reason_codes=(),
                      requires_fracture_context=False)


def _match(pack: str, variant: str | None) -> VariantMatch:
    return VariantMatch(pack=pack, kind="treatment", variant=variant, title=None,
                        outcome="matched" if variant else "insufficient-data")


def _rate(pack: str, variant: str | None, procedure: str):
    return rate_order(_order(procedure), _match(pack, variant), load_pack(pack))


@pytest.mark.parametrize(("procedure", "category", "score", "soe"), [
    ("vertebral-augmentation", "usually-appropriate", 8, "Strong"),
    ("surgical-consultation", "usually-appropriate", 7, "Expert Consensus"),
    ("medical-management", "may-be-appropriate", 5, "Limited"),
    ("percutaneous-ablation-spine", "usually-not-appropriate", 1, "Limited"),
])
def test_seed_case_benign_vcf_worsening(procedure, category, score, soe):
    rating = _rate("acr-vcf-2022", "v8", procedure)
    assert rating.status == "rated"
    assert rating.category == category and rating.score == score and rating.strength_of_evidence == soe
    assert rating.radiation_level is None


@pytest.mark.parametrize(("variant", "procedure", "category", "score", "rrl"), [
    ("v1", "mri-spine-without-contrast", "usually-appropriate", 9, "O 0 mSv"),
    ("v1", "fdg-pet-ct-skull-base-to-mid-thigh", "usually-not-appropriate", 2, "☢☢☢☢ 10-30 mSv"),
    ("v2", "mri-spine-without-and-with-contrast", "usually-appropriate", 9, "O 0 mSv"),
    ("v2", "ct-myelography-spine", "may-be-appropriate", 4, "Varies"),
    ("v3", "mri-spine-without-and-with-contrast", "may-be-appropriate", 6, "O 0 mSv"),
    ("v4", "ct-spine-without-contrast", "usually-appropriate", 8, "Varies"),
    ("v4", "bone-scan-whole-body", "may-be-appropriate", 5, "☢☢☢ 1-10 mSv"),
    ("v5", "vertebral-augmentation", "usually-not-appropriate", 3, None),
    ("v6", "vertebral-augmentation", "usually-appropriate", 8, None),
    ("v7", "medical-management", "usually-appropriate", 7, None),
    ("v9", "percutaneous-ablation-spine", "usually-appropriate", 7, None),
    ("v9", "systemic-radionuclide-therapy", "may-be-appropriate", 4, None),
])
def test_2022_variants(variant, procedure, category, score, rrl):
    rating = _rate("acr-vcf-2022", variant, procedure)
    assert (rating.status, rating.category, rating.score, rating.radiation_level) == ("rated", category, score, rrl)


@pytest.mark.parametrize(("variant", "procedure", "category"), [
    ("v1", "vertebral-augmentation", "may-be-appropriate"),
    ("v1", "fdg-pet-ct-skull-base-to-mid-thigh", "usually-not-appropriate"),
    ("v2", "vertebral-augmentation", "usually-appropriate"),
    ("v3", "surgical-consultation", "may-be-appropriate"),
    ("v4", "image-guided-biopsy-spine", "usually-appropriate"),
    ("v5", "radiation-oncology-consultation", "usually-appropriate"),
    ("v6", "systemic-radionuclide-therapy", "may-be-appropriate"),
    ("v7", "percutaneous-ablation-spine", "may-be-appropriate"),
    ("v8", "surgical-consultation", "usually-appropriate"),
])
def test_2018_variants_have_categories_without_scores(variant, procedure, category):
    rating = _rate("acr-vcf-2018", variant, procedure)
    assert (rating.status, rating.category, rating.score) == ("rated", category, None)


def test_rated_source_names_pack_variant_and_row():
    source = _rate("acr-vcf-2022", "v8", "vertebral-augmentation").source
    assert (source["pack"], source["variant"], source["variant_number"], source["status"]) == (
        "acr-vcf-2022", "v8", 8, "seen")
    assert source["procedure"] == "Percutaneous vertebral augmentation"
    assert source["url"].endswith("/ACR_data/ACR_Rec.xlsx")
    assert "Seed article" in source["corroborated_by"]["citation"]


def test_comment_is_carried():
    comment = _rate("acr-vcf-2022", "v7", "vertebral-augmentation").comment
    assert "1,328 patients" in comment


def test_unrated_procedure_gets_no_criteria_apply():
    rating = _rate("acr-vcf-2022", "v1", "radiography-spine")
    assert (rating.status, rating.category, rating.score, rating.source) == ("no-criteria-apply", None, None, None)
    assert [a["procedure"] for a in rating.alternatives] == ["mri-spine-without-contrast", "ct-spine-without-contrast"]
    assert _rate("acr-vcf-2022", "v8", "dxa").status == "no-criteria-apply"


def test_2018_only_procedure_is_never_borrowed_into_2022():
    # 2018 V1 rates vertebral augmentation (may be appropriate); the 2022 V1 table has no treatment rows.
    assert _rate("acr-vcf-2018", "v1", "vertebral-augmentation").category == "may-be-appropriate"
    rating = _rate("acr-vcf-2022", "v1", "vertebral-augmentation")
    assert (rating.status, rating.category, rating.score) == ("no-criteria-apply", None, None)
    # 2018 V4 rates image-guided biopsy; 2022 V1 does not.
    assert _rate("acr-vcf-2022", "v1", "image-guided-biopsy-spine").status == "no-criteria-apply"


def test_match_from_another_pack_is_refused():
    with pytest.raises(ValueError, match="active pack is 'acr-vcf-2022'"):
        rate_order(_order("vertebral-augmentation"), _match("acr-vcf-2018", "v1"), load_pack("acr-vcf-2022"))


def test_no_variant():
    rating = _rate("acr-vcf-2022", None, "vertebral-augmentation")
    assert (rating.status, rating.category, rating.alternatives) == ("no-variant", None, ())


def test_imaging_alternatives_best_score_first():
    rating = _rate("acr-vcf-2022", "v1", "mri-spine-without-and-with-contrast")
    assert (rating.category, rating.score) == ("usually-not-appropriate", 3)
    assert [(a["procedure"], a["score"]) for a in rating.alternatives] == [
        ("mri-spine-without-contrast", 9), ("ct-spine-without-contrast", 8)]


def test_alternatives_exclude_the_order_itself_and_medical_management():
    rating = _rate("acr-vcf-2022", "v6", "percutaneous-ablation-spine")
    assert [a["procedure"] for a in rating.alternatives] == ["vertebral-augmentation"]
    rating = _rate("acr-vcf-2022", "v9", "vertebral-augmentation")
    assert [(a["procedure"], a["score"]) for a in rating.alternatives] == [
        ("radiation-oncology-consultation", 8), ("surgical-consultation", 8), ("percutaneous-ablation-spine", 7)]


def test_2018_mixed_variant_alternatives_keep_to_the_order_kind():
    imaging = _rate("acr-vcf-2018", "v1", "bone-scan-whole-body")
    assert [a["procedure"] for a in imaging.alternatives] == ["mri-spine-without-contrast", "ct-spine-without-contrast"]
    treatment = _rate("acr-vcf-2018", "v1", "percutaneous-ablation-spine")
    assert treatment.alternatives == ()
