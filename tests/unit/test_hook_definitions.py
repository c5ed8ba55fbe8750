"""hooks/*.json load and validate at start-up; each broken file in tests/data/bad_hooks stops start-up."""

import shutil
from pathlib import Path

import pytest

from cds_service.cds_hooks.hook_definitions import HookDefinitionError, discovery_document, load_hook_definitions

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "data" / "bad_hooks"


def test_shipped_services_load_and_discovery_hides_config() -> None:
    definitions = load_hook_definitions(REPO / "hooks")
    assert set(definitions) == {"spine-order-select", "spine-order-sign"}
    assert definitions["spine-order-select"].hook == "order-select"
    assert definitions["spine-order-sign"].hook == "order-sign"
    document = discovery_document(definitions)
    assert [s["id"] for s in document["services"]] == ["spine-order-select", "spine-order-sign"]
    for service in document["services"]:
        assert set(service) == {"hook", "id", "title", "description", "prefetch"}
        assert "_config" not in str(service)
        for template in service["prefetch"].values():
            assert "sort:desc" not in template and "&status=active" not in template


@pytest.mark.parametrize("name, message", [
    ("missing-description", "'description' is a required property"),
    ("unsupported-hook", "hook"),
    ("invalid-status-search", "prefetch.conditions"),
    ("invalid-sort-syntax", "prefetch.observations"),
    ("required-key-unknown", "required_prefetch names unknown keys ['labs']"),
    ("unknown-member", "Additional properties are not allowed ('extra'"),
    ("not-json", "not valid JSON"),
])
def test_bad_definition_stops_start_up_naming_file_and_field(tmp_path: Path, name: str, message: str) -> None:
    shutil.copy(BAD / f"{name}.json", tmp_path / f"{name}.json")
    with pytest.raises(HookDefinitionError) as error:
        load_hook_definitions(tmp_path)
    assert f"{name}.json" in str(error.value)
    assert message in str(error.value)


def test_empty_folder_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(HookDefinitionError, match="no service definitions"):
        load_hook_definitions(tmp_path)


def test_duplicate_ids_stop_start_up(tmp_path: Path) -> None:
    shutil.copy(REPO / "hooks" / "spine-order-select.json", tmp_path / "a.json")
    shutil.copy(REPO / "hooks" / "spine-order-select.json", tmp_path / "b.json")
    with pytest.raises(HookDefinitionError, match="duplicate service id 'spine-order-select'"):
        load_hook_definitions(tmp_path)
