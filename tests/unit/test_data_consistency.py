"""The data files agree with each other: variant ids and titles, procedure keys, pack names."""


import pytest

from cds_service.cli.fixtures import default_definition
from cds_service.clinical.facts import PRODUCERS, load_fact_rules
from cds_service.clinical.orders import load_order_catalogue
from cds_service.clinical.packs import available_packs, load_pack
from cds_service.clinical.topic import load_topics, topic_for_pack
from cds_service.datafiles import read_json

RULES = read_json("clinical/topics/vcf/rules.json")


@pytest.mark.parametrize("pack_id", ["acr-vcf-2022", "acr-vcf-2018"])
def test_decision_rules_cover_exactly_the_pack_variants_with_the_same_titles(pack_id: str) -> None:
    pack = load_pack(pack_id)
    rules = topic_for_pack(pack_id).rules
    titles = {vid: rule.title for vid, rule in rules.variants.items()}  # read from the pack, not repeated
    assert set(titles) == set(pack.variants)
    for variant_id, variant in pack.variants.items():
        assert titles[variant_id] == variant.title
    ordered = {v for ids in RULES["packs"][pack_id]["order"].values() for v in ids}
    assert ordered == set(pack.variants)


def test_rules_exist_for_every_available_pack() -> None:
    topics = load_topics("")  # every topic at its newest pack, in router order
    assert [t.pack.id for t in topics] == ["acr-acute-spinal-trauma-2024", "acr-spine-infection-2021",
                                           "acr-myelopathy-2020", "acr-inflammatory-back-pain-2021",
                                           "acr-cervical-pain-2024", "acr-vcf-2022", "acr-low-back-pain-2021",
                                           "acr-thoracic-back-pain-2024"]
    assert set(available_packs()) == {t.pack.id for t in topics} | {"acr-vcf-2018"}
    assert set(RULES["packs"]) == {"acr-vcf-2022", "acr-vcf-2018"}


# Rated by the packs but with no sourced order code or text rule yet (docs/criteria-and-orders.md, open gaps;
# docs/topics-14-notes.md "Order-code gaps" for the spine topics' studies).
NOT_YET_ORDERABLE = {
    "systemic-radionuclide-therapy",
    "arteriography-cervicocerebral", "arteriography-spine", "bone-scan-3-phase-spine",
    "bone-scan-whole-body-with-spect-spine", "ct-sacroiliac-joints-and-spine-with-contrast",
    "ct-sacroiliac-joints-and-spine-without-and-with-contrast", "ct-sacroiliac-joints-and-spine-without-contrast",
    "ct-sacroiliac-joints-without-contrast", "cta-head-and-neck", "cta-spine", "discography-spine",
    "fdg-pet-ct-whole-body", "bone-scan-whole-body-spect-spine", "fdg-pet-mri-skull-base-to-mid-thigh",
    "fdg-pet-mri-whole-body",
    "fluoride-pet-ct-skull-base-to-mid-thigh", "fluoride-pet-ct-whole-body", "gallium-scan-whole-body",
    "mra-spine-with-contrast", "mra-spine-without-and-with-contrast", "mra-spine-without-contrast",
    "mri-sacroiliac-joints-and-spine-without-and-with-contrast", "mri-sacroiliac-joints-and-spine-without-contrast",
    "mri-sacroiliac-joints-without-contrast", "spect-sacroiliac-joints", "spect-sacroiliac-joints-and-spine",
    "us-sacroiliac-joints", "us-sacroiliac-joints-and-spine", "us-spine", "wbc-and-sulfur-colloid-scan-spine",
    "wbc-scan-whole-body",
}


def test_every_orderable_procedure_in_the_packs_can_be_recognised_from_an_order() -> None:
    catalogue = load_order_catalogue()
    catalogue_procedures = {entry.procedure for entry in catalogue.codes.values()}
    catalogue_procedures |= {rule.procedure for rule in catalogue.text_rules} | NOT_YET_ORDERABLE
    for pack_id in available_packs():
        for variant in load_pack(pack_id).variants.values():
            for procedure, row in variant.rows.items():
                if row.orderable:
                    assert procedure in catalogue_procedures, (pack_id, variant.id, procedure)


# Every kind of data file the service ships, and the JSON Schema it is checked against at start-up.
SCHEMA_OF = {
    "clinical/topics/*/topic.json": "clinical/schemas/topic.schema.json",
    "clinical/topics/*/rules.json": "clinical/schemas/rules.schema.json",
    "clinical/topics/*/cards.json": "clinical/schemas/topic-cards.schema.json",
    "clinical/topics/*/beyond.json": "clinical/schemas/beyond.schema.json",
    "clinical/topics/*/acr-*.json": "clinical/schemas/pack.schema.json",
    "clinical/shared/orders.json": "clinical/schemas/orders.schema.json",
    "clinical/shared/codes.json": "clinical/schemas/codes.schema.json",
    "clinical/shared/thresholds.json": "clinical/schemas/thresholds.schema.json",
    "clinical/shared/fact_sources.json": "clinical/schemas/fact-sources.schema.json",
    "clinical/shared/context.json": "clinical/schemas/context.schema.json",
    "cards/text.json": "clinical/schemas/card-text.schema.json",
    "cds_hooks/openapi.json": None,  # checked against the OpenAPI 3.0 spec in test_openapi.py
}


def test_every_shipped_data_file_has_one_schema_and_passes_it() -> None:
    from fnmatch import fnmatch
    from pathlib import Path

    from cds_service.datafiles import first_violation, schema_validator

    root = Path(__file__).resolve().parents[2] / "cds_service"
    files = [p.relative_to(root).as_posix() for p in root.rglob("*.json")
             if "schemas" not in p.relative_to(root).parts]
    assert files
    for name in files:
        kinds = [schema for pattern, schema in SCHEMA_OF.items() if fnmatch(name, pattern)]
        assert len(kinds) == 1, f"{name}: {len(kinds)} schemas claim it"
        if kinds[0]:
            assert first_violation(schema_validator(kinds[0]), read_json(name)) is None, name


def test_every_fact_a_rule_produces_lists_the_prefetch_keys_it_is_read_from() -> None:
    """Without its keys a fact's 'nothing found' would be stated as 'no' when its data could not be read
    (``facts/unchecked.py``); every listed key is one the hooks prefetch."""
    sources = load_fact_rules().fact_sources
    assert sorted({n for p in PRODUCERS for n in p.names} - set(sources)) == []
    keys = set(default_definition("order-select").prefetch)
    assert {k for s in sources.values() for k in s.keys} <= keys
