"""README.md documents every setting, service and criteria pack (datasette's docs-move-with-code rule)."""

import json
from pathlib import Path

import pytest

from cds_service.clinical.packs import available_packs
from cds_service.settings import SETTINGS

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


@pytest.mark.parametrize("name", [s.name for s in SETTINGS])
def test_every_setting_is_in_the_readme_table(name: str) -> None:
    assert f"| `{name}` |" in README


@pytest.mark.parametrize("path", sorted((REPO / "hooks").glob("*.json")), ids=lambda p: p.name)
def test_every_service_is_in_the_readme(path: Path) -> None:
    assert f"`{json.loads(path.read_text())['id']}`" in README


@pytest.mark.parametrize("pack", available_packs())
def test_every_criteria_pack_is_in_the_readme(pack: str) -> None:
    assert f"`{pack}`" in README


def test_packs_are_found_on_disk() -> None:
    assert "acr-vcf-2022" in available_packs()  # the parametrisation above is not empty by accident


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == "make test"
    assert "make test" in README
