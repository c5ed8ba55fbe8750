"""Criteria packs: literal contents of both ACR packs, provenance on every row, and bad packs stopping start-up."""

from __future__ import annotations

import copy

import pytest

from cds_service.clinical.packs import InvalidPack, UnknownPack, available_packs, build_pack, load_pack
from cds_service.datafiles import read_json


def _raw(name: str) -> dict:
    return read_json(f"clinical/topics/vcf/{name}.json")


def test_available_packs_are_the_shipped_acr_packs():
    assert available_packs() == ("acr-acute-spinal-trauma-2024", "acr-cervical-pain-2024",
                                 "acr-inflammatory-back-pain-2021", "acr-low-back-pain-2021", "acr-myelopathy-2020",
                                 "acr-spine-infection-2021", "acr-thoracic-back-pain-2024", "acr-vcf-2018",
                                 "acr-vcf-2022")


def test_unknown_pack_names_the_valid_ones():
    with pytest.raises(UnknownPack) as info:
        load_pack("acr-vcf-2013")
    assert ", ".join(available_packs()) in str(info.value)
    with pytest.raises(UnknownPack):
        load_pack("../orders")


def test_loading_is_cached():
    assert load_pack("acr-vcf-2022") is load_pack("acr-vcf-2022")


def test_2022_pack_metadata():
    pack = load_pack("acr-vcf-2022")
    assert pack.id == "acr-vcf-2022" and pack.topic == "acr-vcf-2022"
    assert pack.url == "https://acsearch.acr.org/docs/70545/Narrative/"
    assert "Khan MA" in pack.citation and "doi:10.1016/j.jacr.2023.02.015" in pack.citation
    assert "American College of Radiology" in pack.licence
    assert list(pack.variants) == ["v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9"]
    assert [v.kind for v in pack.variants.values()] == ["imaging"] * 4 + ["treatment"] * 5
    assert [len(v.rows) for v in pack.variants.values()] == [10, 11, 10, 11, 5, 6, 6, 6, 6]


def test_2022_exact_titles():
    variants = load_pack("acr-vcf-2022").variants
    assert variants["v1"].title == ("New symptomatic vertebral compression fracture (VCF) identified on radiographs. "
                                    "No known malignancy. Next imaging study.")
    assert variants["v3"].title == "New back pain. Previously treated VCF or multiple VCFs. Initial Imaging."
    assert variants["v8"].title == ("Benign VCF with worsening pain, deformity, or pulmonary dysfunction. "
                                    "Initial treatment.")
    assert variants["v9"].number == 9


def test_2022_row_fields():
    v2 = load_pack("acr-vcf-2022").variants["v2"]
    row = v2.rows["mri-spine-with-contrast"]
    assert (row.category, row.score, row.disagreement, row.strength_of_evidence) == (
        "may-be-appropriate", 5, True, "Expert Opinion")
    assert row.name == "MRI spine area of interest with IV contrast" and row.radiation_level == "O 0 mSv"
    pet = v2.rows["fdg-pet-ct-skull-base-to-mid-thigh"]
    assert (pet.score, pet.radiation_level, pet.kind) == (6, "☢☢☢☢ 10-30 mSv", "imaging")
    assert "SUV" in pet.comment
    assert pet.source["url"].endswith("/ACR_data/ACR_Rec.xlsx")
    una = v2.rows["ct-spine-with-contrast"]
    assert una.source["url"].endswith("/ACR_data/ACR_NotRec.xlsx")


def test_2022_medical_management_is_context_only():
    v5 = load_pack("acr-vcf-2022").variants["v5"]
    mm = v5.rows["medical-management"]
    assert (mm.name, mm.category, mm.score, mm.orderable, mm.kind) == (
        "Medical management only", "usually-appropriate", 9, False, "treatment")
    assert v5.rows["vertebral-augmentation"].orderable is True
    assert v5.rows["vertebral-augmentation"].radiation_level is None


def test_2022_comments_are_attached_where_the_source_has_them():
    variants = load_pack("acr-vcf-2022").variants
    assert "3 months" in variants["v6"].rows["vertebral-augmentation"].comment
    assert "SINS" in variants["v9"].rows["surgical-consultation"].comment
    assert variants["v8"].rows["vertebral-augmentation"].comment is None
    assert variants["v1"].rows["mri-spine-without-contrast"].comment is None


def test_2018_pack_has_categories_only():
    pack = load_pack("acr-vcf-2018")
    assert pack.topic == "acr-vcf-2018" and "Shah LM" in pack.citation
    assert list(pack.variants) == ["v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8"]
    assert [v.kind for v in pack.variants.values()] == [
        "mixed", "treatment", "treatment", "imaging", "treatment", "treatment", "treatment", "treatment"]
    rows = [row for v in pack.variants.values() for row in v.rows.values()]
    assert len(rows) == 48
    assert all(row.score is None and row.strength_of_evidence is None for row in rows)
    assert pack.variants["v3"].title == (
        "Painful osteoporotic compression fracture with edema on MRI. Contraindication to vertebral augmentation "
        "or surgery (eg, fitness, pregnancy, infection, coagulation disorder, etc.).")
    v1 = pack.variants["v1"]
    assert v1.rows["medical-management"].name == "Medical management"
    assert v1.rows["percutaneous-ablation-spine"].name == "Percutaneous thermal ablation"
    assert v1.rows["spect-spine"].radiation_level == "☢☢☢☢"
    assert {v1.rows["vertebral-augmentation"].kind, v1.rows["ct-spine-without-contrast"].kind} == {
        "treatment", "imaging"}
    assert pack.variants["v4"].rows["mri-spine-without-contrast"].disagreement is True
    assert pack.variants["v5"].rows["surgical-consultation"].disagreement is True


@pytest.mark.parametrize("name", ["acr-vcf-2022", "acr-vcf-2018"])
def test_every_row_and_variant_has_a_source_and_status(name):
    for variant in load_pack(name).variants.values():
        assert variant.source["citation"] and variant.source["url"].startswith("https://")
        assert variant.status == "seen"
        for row in variant.rows.values():
            assert row.source["citation"] and row.source["url"].startswith("https://")
            assert row.status in {"seen", "secondary", "unconfirmed"}
            assert row.kind in {"imaging", "treatment"}


def test_seed_rows_cite_the_seed_as_corroboration():
    row = load_pack("acr-vcf-2022").variants["v8"].rows["surgical-consultation"]
    assert "Seed article" in row.source["corroborated_by"]["citation"]


def _broken(path: list, value) -> dict:
    data = copy.deepcopy(_raw("acr-vcf-2022"))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(("path", "value", "message"), [
    (["variants", "v8", "rows", 0, "score"], 10, "variants.v8.rows.0.score: 10 is greater than the maximum of 9"),
    (["variants", "v8", "rows", 0, "score"], 5, "variants.v8.rows.0.score: 5 is outside the usually-appropriate band"),
    (["variants", "v8", "rows", 1, "procedure"], "vertebral-augmentation", "listed twice"),
    (["variants", "v8", "number"], 7, "variants.v8.number: 7 does not match the id"),
    (["variants", "v8", "rows", 0, "category"], "appropriate", "variants.v8.rows.0.category"),
    (["variants", "v8", "rows", 0, "procedure"], "kyphoplasty", "variants.v8.rows.0.procedure"),
    (["id"], "acr-vcf-2021", "does not match the file name"),
])
def test_bad_pack_raises_a_clear_error(path, value, message):
    with pytest.raises(InvalidPack) as info:
        build_pack(_broken(path, value), "acr-vcf-2022")
    assert message in str(info.value)


def test_row_without_source_is_rejected():
    data = copy.deepcopy(_raw("acr-vcf-2018"))
    del data["variants"]["v2"]["rows"][0]["source"]
    with pytest.raises(InvalidPack, match="'source' is a required property"):
        build_pack(data, "acr-vcf-2018")


@pytest.mark.parametrize("pack_id", available_packs())
def test_every_shipped_pack_obeys_the_pack_rules(pack_id: str) -> None:
    """Held once for every pack (VCF and the seven spine topics): the schema, the file name as id and topic,
    one row per procedure and region, scores inside their category band, and every "(Disagreement)" row rated
    5 with expert opinion, as the reference tables give them (acr-spine-topics.md, abbreviations)."""
    from cds_service.clinical.packs import _pack_files
    from cds_service.datafiles import first_violation, schema_validator

    path = _pack_files()[pack_id]
    data = read_json(path)
    assert first_violation(schema_validator("clinical/schemas/pack.schema.json"), data) is None
    assert data["id"] == data["topic"] == path.rsplit("/", 1)[1].removesuffix(".json") == pack_id
    bands = data.get("score_bands", {}).get("bands", {})
    for vid, variant in data["variants"].items():
        keys = [(row["procedure"], row.get("region")) for row in variant["rows"]]
        assert len(keys) == len(set(keys)), vid
        assert variant["number"] == int(vid[1:])
        for row in variant["rows"]:
            if row["score"] is None:
                continue  # the 2018 VCF revision has categories only
            low, high = bands[row["category"]]
            assert low <= row["score"] <= high, (vid, row["procedure"])
            if row["disagreement"]:
                assert (row["category"], row["score"], row["strength_of_evidence"]) == (
                    "may-be-appropriate", 5, "Expert Opinion"), (vid, row["procedure"])
            if pack_id in ("acr-low-back-pain-2021", "acr-thoracic-back-pain-2024"):  # and only they (S1 export)
                assert row["disagreement"] == (row["strength_of_evidence"] == "Expert Opinion"), (vid, row["procedure"])
    assert load_pack(pack_id).variants  # and the loader, which enforces the same rules at start-up, accepts it
