"""README.md documents every setting, service and criteria pack (datasette's docs-move-with-code rule), and its
examples work."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cds_service.clinical.packs import available_packs
from cds_service.ops.store import feedback
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


def test_one_benchmark_run_is_quoted_in_one_place_and_the_readme_links_to_it() -> None:
    performance = (REPO / "docs" / "performance-deployment.md").read_text()
    assert performance.count("### Latest result") == 1
    assert "(docs/performance-deployment.md#latest-result)" in README
    assert not re.search(r"^\|.*\breq/s\b.*\|$", README, re.M)  # no results table of its own in the README


def test_the_readme_quotes_the_same_run_as_the_latest_result() -> None:
    """Issue 16: README and docs once quoted different "latest" runs; date, time and commit must be the same."""
    performance = (REPO / "docs" / "performance-deployment.md").read_text()
    stamp = r"(\d{4}-\d\d-\d\d \d\d:\d\d) UTC, commit ([0-9a-f]{7})"
    docs = re.search(r"^### Latest result\n\n" + stamp, performance, re.M)
    readme = re.search(r"^Latest full run: " + stamp, README, re.M)
    assert docs and readme, "the latest run's date, time and commit are not where this test reads them"
    assert readme.groups() == docs.groups()


def test_the_readme_epic_feedback_example_is_accepted_with_its_coded_reason(client: Any, app: Any) -> None:
    block = re.search(r"```json\n(\s*\{\"feedback\".*?)```", README, re.S)
    assert block, "README lost its Epic feedback example"
    body = json.loads(block.group(1))
    assert isinstance(body["feedback"][0]["overrideReasons"], dict)  # Epic's shape: plural name, one object
    answer = client.post("/cds-services/spine-order-select/feedback", json=body)
    assert answer.status_code == 200 and answer.json["stored"] == 1
    assert answer.json["unknownCards"] == ["123456"]  # never issued here: stored, and the answer says so
    with app.extensions["cds"].store.engine.connect() as conn:
        (row,) = conn.execute(sa.select(feedback)).mappings().all()
    assert (row["override_code"], row["card_uuid"]) == ("patient-specific", "123456")
    assert "free text" not in json.dumps(dict(row), default=str)
