"""What the scenario files and docs/fixtures.md say a scenario's rating is agrees with what the service
answers: a rating phrase in the prose (``expected_outcome``, the docs' "expected" column) must be one the
service's cards say for that scenario. The prose drifted once (variant 4's MRI without and with contrast is
usually appropriate, 9, in the 2022 table; the files said "may be appropriate")."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from cds_service.cli.fixtures import hook_request, list_scenarios, materialise
from tests.helpers import REPO

PHRASES = ("usually not appropriate", "may be appropriate", "usually appropriate")
FIXTURES_DOC = (REPO / "docs" / "fixtures.md").read_text()


def ratings_in(text: str) -> set[str]:
    """The rating phrases a text uses ("usually not appropriate" is not also "usually appropriate")."""
    found = set()
    for phrase in PHRASES:
        if phrase in text:
            found.add(phrase)
            text = text.replace(phrase, "")
    return found


def doc_expected(name: str) -> str:
    row = re.search(rf"^\| `{re.escape(name)}` \|.*\| ([^|]*) \|$", FIXTURES_DOC, re.M)
    assert row, f"docs/fixtures.md has no row for {name}"
    return row.group(1)


@pytest.mark.parametrize("name", list_scenarios())
def test_the_written_outcome_names_only_ratings_the_service_gives(client: Any, name: str) -> None:
    scenario = materialise(name, date.today())
    said: set[str] = set()
    for hook, service in (("order-select", "spine-order-select"), ("order-sign", "spine-order-sign")):
        response = client.post(f"/cds-services/{service}",
                               json=hook_request(scenario, hook, with_prefetch=True, fhir_server=None))
        assert response.status_code == 200, response.text
        said |= {phrase for card in response.json["cards"] for phrase in ratings_in(card["summary"])}
    assert ratings_in(scenario.expected_outcome) <= said, (scenario.expected_outcome, said)
    assert ratings_in(doc_expected(name)) <= said, (doc_expected(name), said)
