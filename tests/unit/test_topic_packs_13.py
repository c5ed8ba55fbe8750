"""The Low Back Pain and Thoracic Back Pain topic packs hold exactly the rows of the reference notes.

The packs are hand-checked data (shared/reference/acr-spine-topics.md sections 1c and 7a): these tests pin the
row counts and a few exact ratings per variant, so a slip while editing a pack shows up here, and they apply the
rules every pack obeys (schema, one row per procedure and region, scores in their band) are held for all packs
at once in tests/unit/test_criteria.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ROOT / "cds_service" / "clinical" / "topics"
CATALOGUE = ROOT / "cds_service" / "clinical" / "shared" / "orders.json"
# The order codes added for the LBP/TBP rows (code -> procedure key), merged into the catalogue.
ADDED = {"62303": "ct-myelography-spine", "62304": "ct-myelography-spine", "62305": "ct-myelography-spine",
         "62290": "discography-post-discography-ct", "72295": "discography-post-discography-ct",
         "62291": "discography-post-discography-ct", "72285": "discography-post-discography-ct",
         "78831": "spect-spine", "78832": "spect-spine", "24965-6": "ct-myelography-spine",
         "30596-1": "ct-myelography-spine", "24969-8": "radiography-spine", "24970-6": "radiography-spine",
         "24971-4": "radiography-spine", "24983-9": "radiography-spine", "24578-7": "spect-spine"}
PACKS = {
    "acr-low-back-pain-2021": TOPICS / "low-back-pain" / "acr-low-back-pain-2021.json",
    "acr-thoracic-back-pain-2024": TOPICS / "thoracic-back-pain" / "acr-thoracic-back-pain-2024.json",
}
COUNTS = {
    "acr-low-back-pain-2021": {f"v{n}": 11 for n in range(1, 8)},
    "acr-thoracic-back-pain-2024": {"v1": 11, "v2": 11, "v3": 11, "v4": 11, "v5": 11, "v6": 10, "v7": 11},
}
TOTALS = {"acr-low-back-pain-2021": 77, "acr-thoracic-back-pain-2024": 76}
UA, MBA, UNA = "usually-appropriate", "may-be-appropriate", "usually-not-appropriate"
# (pack, variant, procedure, region) -> (category, score, disagreement), straight from the reference tables
SPOT_CHECKS = {
    ("acr-low-back-pain-2021", "v1", "radiography-spine", None): (UNA, 1, False),
    ("acr-low-back-pain-2021", "v1", "fdg-pet-ct-whole-body", "whole-body"): (UNA, 1, False),
    ("acr-low-back-pain-2021", "v2", "mri-spine-without-contrast", None): (UNA, 1, False),
    ("acr-low-back-pain-2021", "v3", "mri-spine-without-contrast", None): (UA, 9, False),
    ("acr-low-back-pain-2021", "v3", "bone-scan-whole-body-spect-spine", "whole-spine"): (MBA, 4, False),
    ("acr-low-back-pain-2021", "v3", "discography-post-discography-ct", None): (UNA, 3, False),
    ("acr-low-back-pain-2021", "v4", "mri-spine-without-and-with-contrast", None): (UA, 7, False),
    ("acr-low-back-pain-2021", "v4", "ct-myelography-spine", None): (MBA, 5, False),
    ("acr-low-back-pain-2021", "v5", "mri-spine-without-and-with-contrast", None): (UA, 9, False),
    ("acr-low-back-pain-2021", "v5", "ct-spine-without-contrast", None): (MBA, 6, False),
    ("acr-low-back-pain-2021", "v6", "ct-spine-without-contrast", None): (UA, 8, False),
    ("acr-low-back-pain-2021", "v6", "bone-scan-whole-body-spect-spine", "whole-spine"): (UNA, 3, False),
    ("acr-low-back-pain-2021", "v7", "radiography-spine", None): (MBA, 5, True),
    ("acr-low-back-pain-2021", "v7", "ct-spine-with-contrast", None): (MBA, 5, False),
    ("acr-thoracic-back-pain-2024", "v1", "radiography-spine", None): (UNA, 1, False),
    ("acr-thoracic-back-pain-2024", "v2", "radiography-spine", None): (MBA, 5, True),
    ("acr-thoracic-back-pain-2024", "v3", "mri-spine-without-contrast", None): (UA, 8, False),
    ("acr-thoracic-back-pain-2024", "v3", "ct-spine-without-contrast", None): (MBA, 5, True),
    ("acr-thoracic-back-pain-2024", "v4", "spect-spine", None): (MBA, 4, False),
    ("acr-thoracic-back-pain-2024", "v4", "radiography-spine", None): (UA, 7, False),
    ("acr-thoracic-back-pain-2024", "v5", "mri-spine-without-and-with-contrast", None): (UA, 9, False),
    ("acr-thoracic-back-pain-2024", "v5", "fdg-pet-ct-skull-base-to-mid-thigh", "whole-body"): (UNA, 1, False),
    ("acr-thoracic-back-pain-2024", "v6", "ct-spine-without-contrast", None): (UA, 7, False),
    ("acr-thoracic-back-pain-2024", "v7", "ct-myelography-spine", None): (MBA, 6, False),
    ("acr-thoracic-back-pain-2024", "v7", "bone-scan-whole-body", "whole-body"): (UNA, 1, False),
}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _rows(pack: dict[str, Any], vid: str) -> dict[tuple[str, str | None], dict[str, Any]]:
    return {(row["procedure"], row.get("region")): row for row in pack["variants"][vid]["rows"]}


@pytest.mark.parametrize("name", sorted(PACKS))
def test_row_counts_per_variant_equal_the_reference(name: str) -> None:
    pack = _load(PACKS[name])
    counts = {vid: len(variant["rows"]) for vid, variant in pack["variants"].items()}
    assert counts == COUNTS[name]
    assert sum(counts.values()) == TOTALS[name]
    assert all(variant["number"] == int(vid[1:]) for vid, variant in pack["variants"].items())


@pytest.mark.parametrize("key", sorted(SPOT_CHECKS, key=str))
def test_spot_check_rows_from_the_reference(key: tuple[str, str, str, str | None]) -> None:
    name, vid, procedure, region = key
    row = _rows(_load(PACKS[name]), vid)[(procedure, region)]
    assert (row["category"], row["score"], row["disagreement"]) == SPOT_CHECKS[key]


def test_every_variant_has_a_spot_check() -> None:
    checked = {(name, vid) for name, vid, _, _ in SPOT_CHECKS}
    assert checked == {(name, vid) for name, counts in COUNTS.items() for vid in counts}


def test_order_additions_are_in_the_catalogue_once_with_their_procedure() -> None:
    catalogue = _load(CATALOGUE)
    keys = [(code["system"], code["code"]) for code in catalogue["codes"]]
    assert len(keys) == len(set(keys))
    procedure = {code["code"]: code["procedure"] for code in catalogue["codes"]}
    assert {code: procedure.get(code) for code in ADDED} == ADDED
