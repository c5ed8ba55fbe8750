"""Topic packs of batch 14 (cervical pain, myelopathy, acute spinal trauma, spine infection, inflammatory back pain).

The expected numbers below are typed in from the reference notes (shared/reference/acr-spine-topics.md sections 2c,
3a, 4a, 5a, 6a), not read back from the packs, so a slip in a data file fails here. The packs are checked against
the pack schema (clinical/schemas/pack.schema.json) and through the loader's build_pack, so the
loader's consistency rules (ids, numbers, score bands, one row per procedure) hold for them as well.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from cds_service.clinical import packs as criteria

TOPICS = Path(__file__).resolve().parents[2] / "cds_service" / "clinical" / "topics"
SCHEMA_FILE = TOPICS.parent / "schemas" / "pack.schema.json"
S1 = "https://github.com/charlieliu9999/acrac-web/blob/34cfc0f55fbf0dc03939de9de18ef792db1972a9/ACR_data/"

PACKS = {  # pack id -> (folder, version, rows per variant as the reference counts them)
    "acr-cervical-pain-2024": ("cervical-pain", "2024 Update", [16, 15, 16, 19, 20, 15, 16, 16]),
    "acr-myelopathy-2020": ("myelopathy", "Revised 2020", [13, 13]),
    "acr-acute-spinal-trauma-2024": ("spinal-trauma", "2024 Update", [13, 13, 13, 5, 9, 8, 9]),
    "acr-spine-infection-2021": ("spine-infection", "New 2021", [11, 11, 11, 11, 7]),
    "acr-inflammatory-back-pain-2021": ("inflammatory-back-pain", "2021 Update", [17, 15, 9, 17, 9]),
}
UA, MBA, UNA = "usually-appropriate", "may-be-appropriate", "usually-not-appropriate"
NO_REGION = "no-region"  # the row has no region field (myelopathy: every row is "spine area of interest")

# (pack, variant, procedure, region) -> (category, score, disagreement), from the reference tables
SPOT = {
    ("acr-cervical-pain-2024", "v1", "radiography-spine", "cervical"): (MBA, 5, False),
    ("acr-cervical-pain-2024", "v1", "cta-neck", "neck"): (UNA, 1, False),
    ("acr-cervical-pain-2024", "v2", "mri-spine-without-contrast", "cervical"): (MBA, 6, False),
    ("acr-cervical-pain-2024", "v2", "radiography-spine", "cervical"): (MBA, 5, False),
    ("acr-cervical-pain-2024", "v3", "radiography-spine-flexion-extension", "cervical"): (UA, 7, False),
    ("acr-cervical-pain-2024", "v3", "ct-myelography-spine", "cervical"): (MBA, 5, False),
    ("acr-cervical-pain-2024", "v4", "mri-spine-without-and-with-contrast", "cervical"): (UA, 9, False),
    ("acr-cervical-pain-2024", "v4", "radiography-spine-flexion-extension", "cervical"): (UNA, 3, False),
    ("acr-cervical-pain-2024", "v4", "gallium-scan-whole-body", "whole-body"): (UNA, 2, False),
    ("acr-cervical-pain-2024", "v5", "fdg-pet-ct-whole-body", "whole-body"): (MBA, 5, False),
    ("acr-cervical-pain-2024", "v5", "fluoride-pet-ct-whole-body", "whole-body"): (UNA, 1, False),
    ("acr-cervical-pain-2024", "v6", "mri-spine-without-contrast", "cervical"): (MBA, 5, True),
    ("acr-cervical-pain-2024", "v6", "mri-spine-without-and-with-contrast", "cervical"): (UNA, 1, False),
    ("acr-cervical-pain-2024", "v7", "mri-spine-without-contrast", "cervical"): (MBA, 5, False),
    ("acr-cervical-pain-2024", "v7", "radiography-spine", "cervical"): (MBA, 5, False),
    ("acr-cervical-pain-2024", "v8", "mri-spine-without-contrast", "cervical"): (UA, 7, False),
    ("acr-cervical-pain-2024", "v8", "radiography-spine", "cervical"): (MBA, 5, True),
    ("acr-cervical-pain-2024", "v8", "discography-spine", "cervical"): (UNA, 1, False),
    ("acr-myelopathy-2020", "v1", "mri-spine-without-contrast", NO_REGION): (UA, 9, False),
    ("acr-myelopathy-2020", "v1", "mri-spine-without-and-with-contrast", NO_REGION): (UA, 8, False),
    ("acr-myelopathy-2020", "v1", "ct-myelography-spine", NO_REGION): (MBA, 6, False),
    ("acr-myelopathy-2020", "v1", "mra-spine-with-contrast", NO_REGION): (UNA, 3, False),
    ("acr-myelopathy-2020", "v1", "mra-spine-without-contrast", NO_REGION): (UNA, 2, False),
    ("acr-myelopathy-2020", "v2", "mri-spine-without-contrast", NO_REGION): (UA, 8, False),
    ("acr-myelopathy-2020", "v2", "ct-spine-without-contrast", NO_REGION): (MBA, 6, False),
    ("acr-myelopathy-2020", "v2", "ct-spine-without-and-with-contrast", NO_REGION): (UNA, 2, False),
    ("acr-myelopathy-2020", "v2", "arteriography-spine", NO_REGION): (UNA, 1, False),
    ("acr-acute-spinal-trauma-2024", "v1", "ct-spine-without-contrast", "cervical"): (UNA, 1, False),
    ("acr-acute-spinal-trauma-2024", "v1", "radiography-spine", "cervical"): (UNA, 1, False),
    ("acr-acute-spinal-trauma-2024", "v2", "ct-spine-without-contrast", "cervical"): (UA, 9, False),
    ("acr-acute-spinal-trauma-2024", "v2", "radiography-spine", "cervical"): (UNA, 1, False),
    ("acr-acute-spinal-trauma-2024", "v3", "ct-spine-without-contrast", "cervical"): (UA, 8, False),
    ("acr-acute-spinal-trauma-2024", "v3", "radiography-spine", "cervical"): (MBA, 5, True),
    ("acr-acute-spinal-trauma-2024", "v4", "cta-head-and-neck", None): (UA, 9, False),
    ("acr-acute-spinal-trauma-2024", "v4", "mra-neck-without-and-with-contrast", "neck"): (UNA, 1, False),
    ("acr-acute-spinal-trauma-2024", "v5", "mri-spine-without-contrast", None): (UA, 9, False),
    ("acr-acute-spinal-trauma-2024", "v5", "ct-myelography-spine", None): (UNA, 3, False),
    ("acr-acute-spinal-trauma-2024", "v6", "ct-spine-without-contrast", None): (UA, 9, False),
    ("acr-acute-spinal-trauma-2024", "v6", "radiography-spine", None): (UNA, 1, False),
    ("acr-acute-spinal-trauma-2024", "v7", "mri-spine-without-contrast", "cervical"): (MBA, 5, True),
    ("acr-acute-spinal-trauma-2024", "v7", "cta-head-and-neck", None): (UNA, 2, False),
    ("acr-spine-infection-2021", "v1", "mri-spine-without-and-with-contrast", None): (UA, 9, False),
    ("acr-spine-infection-2021", "v1", "ct-spine-with-contrast", None): (MBA, 6, False),
    ("acr-spine-infection-2021", "v1", "bone-scan-3-phase-spine", "whole-spine"): (MBA, 4, False),
    ("acr-spine-infection-2021", "v1", "fdg-pet-ct-whole-body", "whole-body"): (UNA, 3, False),
    ("acr-spine-infection-2021", "v2", "gallium-scan-whole-body", "whole-body"): (MBA, 5, False),
    ("acr-spine-infection-2021", "v2", "mri-spine-with-contrast", None): (UNA, 2, False),
    ("acr-spine-infection-2021", "v3", "radiography-spine", None): (UNA, 3, False),
    ("acr-spine-infection-2021", "v3", "gallium-scan-whole-body", "whole-body"): (UNA, 1, False),
    ("acr-spine-infection-2021", "v4", "ct-spine-with-contrast", None): (MBA, 6, False),
    ("acr-spine-infection-2021", "v4", "wbc-and-sulfur-colloid-scan-spine", "whole-spine"): (UNA, 2, False),
    ("acr-spine-infection-2021", "v5", "fdg-pet-ct-whole-body", "whole-body"): (MBA, 5, False),
    ("acr-spine-infection-2021", "v5", "wbc-and-sulfur-colloid-scan-spine", "whole-spine"): (UNA, 1, False),
    ("acr-inflammatory-back-pain-2021", "v1", "radiography-sacroiliac-joints", "sacroiliac"): (UA, 9, False),
    ("acr-inflammatory-back-pain-2021", "v1", "mri-sacroiliac-joints-without-contrast", "sacroiliac"): (UNA, 3, False),
    ("acr-inflammatory-back-pain-2021", "v2", "mri-sacroiliac-joints-without-contrast", "sacroiliac"): (UA, 9, False),
    ("acr-inflammatory-back-pain-2021", "v2", "ct-sacroiliac-joints-without-contrast", "sacroiliac"): (MBA, 5, False),
    ("acr-inflammatory-back-pain-2021", "v2", "ct-sacroiliac-joints-and-spine-with-contrast", None): (UNA, 1, False),
    ("acr-inflammatory-back-pain-2021", "v3", "radiography-spine", None): (UA, 9, False),
    ("acr-inflammatory-back-pain-2021", "v3", "ct-spine-without-contrast", None): (UA, 7, False),
    ("acr-inflammatory-back-pain-2021", "v4", "radiography-sacroiliac-joints", "sacroiliac"): (UA, 7, False),
    ("acr-inflammatory-back-pain-2021", "v4", "mri-sacroiliac-joints-and-spine-without-contrast", None):
        (MBA, 6, False),
    ("acr-inflammatory-back-pain-2021", "v4", "us-sacroiliac-joints", "sacroiliac"): (UNA, 1, False),
    ("acr-inflammatory-back-pain-2021", "v5", "ct-spine-without-contrast", None): (UA, 9, False),
    ("acr-inflammatory-back-pain-2021", "v5", "radiography-spine", None): (UA, 8, False),
}


def _pack(pack_id: str) -> dict[str, Any]:
    folder = PACKS[pack_id][0]
    return json.loads((TOPICS / folder / f"{pack_id}.json").read_text("utf-8"))


def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _region(row: dict[str, Any]) -> str | None:
    return row.get("region", NO_REGION)


def test_pack_schema_has_the_new_fields():
    schema = json.loads(SCHEMA_FILE.read_text("utf-8"))
    assert {"version", "acr_topic_id", "notes"} <= set(schema["properties"])
    assert "region" in schema["$defs"]["row"]["properties"]
    assert "region" not in schema["$defs"]["row"]["required"]


@pytest.mark.parametrize("pack_id", sorted(PACKS))
def test_pack_metadata(pack_id: str):
    pack, (_, version, _) = _pack(pack_id), PACKS[pack_id]
    assert pack["$schema"] == criteria.PACK_SCHEMA_REF
    assert pack["id"] == pack["topic"] == pack_id
    assert pack["version"] == version
    assert pack["url"].startswith("https://acsearch.acr.org/")
    assert pack["notes"], "every pack records the reference's conflicts and choices"
    assert "acr_topic_id" not in pack  # the reference confirms no 2024/2021/2020 topic id for these five


@pytest.mark.parametrize("pack_id", sorted(PACKS))
def test_row_counts_match_the_reference(pack_id: str):
    pack = _pack(pack_id)
    counts = PACKS[pack_id][2]
    assert list(pack["variants"]) == [f"v{n}" for n in range(1, len(counts) + 1)]
    assert [len(v["rows"]) for v in pack["variants"].values()] == counts


@pytest.mark.parametrize("pack_id", sorted(PACKS))
def test_rows_cite_the_export_file_that_holds_them(pack_id: str):
    for variant in _pack(pack_id)["variants"].values():
        assert variant["status"] == "seen" and variant["kind"] == "imaging"
        for row in variant["rows"]:
            expected = S1 + ("ACR_NotRec.xlsx" if row["category"] == UNA else "ACR_Rec.xlsx")
            assert row["source"]["url"] == expected
            assert row["status"] == "seen" and row["orderable"] is True and row["kind"] == "imaging"
            assert row["comment"] is None  # the reference names no row for the comments it quotes


def test_spot_checks_against_the_reference():
    found = {}
    for pack_id in PACKS:
        for vid, variant in _pack(pack_id)["variants"].items():
            for row in variant["rows"]:
                found[(pack_id, vid, row["procedure"], _region(row))] = (
                    row["category"], row["score"], row["disagreement"])
    assert {key: found.get(key) for key in SPOT} == SPOT
    for pack_id, (_, _, counts) in PACKS.items():  # at least two spot checks in every variant
        for n in range(1, len(counts) + 1):
            assert sum(1 for key in SPOT if key[:2] == (pack_id, f"v{n}")) >= 2, (pack_id, n)


def test_exact_titles_and_names():
    cervical = _pack("acr-cervical-pain-2024")["variants"]
    assert cervical["v1"]["title"] == ("Adult. Acute or increasing cervical pain without radiculopathy. "
                                       "No trauma or \u201cred flags.\u201d Initial imaging.")
    trauma = _pack("acr-acute-spinal-trauma-2024")["variants"]
    assert trauma["v1"]["title"] == (
        "Age greater than or equal to 16 years and less than 65 years. Acute cervical spine blunt trauma; imaging not "
        "indicated by CCR or NEXUS clinical criteria. Low-risk criteria. Initial imaging.")
    myelopathy = _pack("acr-myelopathy-2020")["variants"]
    assert myelopathy["v2"]["title"] == "Chronic or progressive myelopathy. Initial imaging."
    names = {row["procedure"]: row["name"] for row in cervical["v3"]["rows"]}
    assert names["radiography-spine-flexion-extension"] == ("Radiography cervical spine flexion extension "
                                                            "lateral views")
    assert names["bone-scan-whole-body-with-spect-spine"] == ("Bone scan whole body with SPECT or SPECT/CT "
                                                              "cervical spine")


def test_duplicates_the_reference_flags_are_listed_once():
    myelo_v1 = [row["procedure"] for row in _pack("acr-myelopathy-2020")["variants"]["v1"]["rows"]]
    assert myelo_v1.count("mra-spine-with-contrast") == myelo_v1.count("mra-spine-without-contrast") == 1
    ibp_v4 = [row["procedure"] for row in _pack("acr-inflammatory-back-pain-2021")["variants"]["v4"]["rows"]]
    assert ibp_v4.count("radiography-sacroiliac-joints") == ibp_v4.count("us-sacroiliac-joints") == 1
    assert "radiography-spine" not in ibp_v4 and "us-spine" not in ibp_v4  # not filled in from the duplicates


@pytest.mark.parametrize("pack_id", sorted(PACKS))
def test_loader_accepts_the_pack(pack_id: str):
    assert pack_id in criteria.available_packs()
    pack = criteria.build_pack(_pack(pack_id), pack_id)
    assert [len(v.rows) for v in pack.variants.values()] == PACKS[pack_id][2]


def test_loader_refuses_a_score_outside_its_band():
    data = _pack("acr-spine-infection-2021")
    data["variants"]["v1"]["rows"][0]["score"] = 5  # MRI without and with contrast is usually appropriate (9)
    with pytest.raises(criteria.InvalidPack, match="outside the usually-appropriate band"):
        criteria.build_pack(data, "acr-spine-infection-2021")


ORDERS = TOPICS.parent / "shared" / "orders.json"
NEW_ORDER_PROCEDURES = {"cta-neck", "mra-neck-with-contrast", "mra-neck-without-contrast",
                        "mra-neck-without-and-with-contrast", "radiography-sacroiliac-joints",
                        "radiography-sacroiliac-joints-and-spine", "radiography-spine-flexion-extension",
                        "radiographic-myelography-spine", "ct-sacroiliac-joints-with-contrast",
                        "ct-sacroiliac-joints-without-and-with-contrast",
                        "mri-sacroiliac-joints-without-and-with-contrast"}


def test_the_catalogue_holds_the_new_studies_once_with_one_preferred_code_per_procedure_and_region():
    catalogue = json.loads(ORDERS.read_text("utf-8"))["codes"]
    assert len({(c["system"], c["code"]) for c in catalogue}) == len(catalogue)
    preferred = [(c["procedure"], c["region"]) for c in catalogue if c["preferred"]]
    assert len(preferred) == len(set(preferred))
    assert NEW_ORDER_PROCEDURES <= {c["procedure"] for c in catalogue}
    rated = {(row["procedure"], _region(row)) for pack_id in PACKS
             for variant in _pack(pack_id)["variants"].values() for row in variant["rows"]}
    assert ("cta-neck", "neck") in rated and ("radiography-sacroiliac-joints", "sacroiliac") in rated
    assert {c["code"]: c["status"] for c in catalogue if c["code"] in ("70547", "70548")} == {
        "70547": "secondary", "70548": "secondary"}
