"""A FHIR page larger than the ``_count`` asked for, or a prefetch key with more entries than its template's
``_count``, is cut at that count and the cut is named in the missing-data list: neither can stretch a call."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import responses

from cds_service.cds_hooks.hook_definitions import HookDefinition
from cds_service.fhir.client import FhirFetcher
from cds_service.fhir.counts import page_count
from cds_service.fhir.gather import gather_fhir_data
from cds_service.settings import Settings
from tests.unit.test_fhir_data import BASE, definition, full_prefetch, hook_request, res, searchset  # noqa: F401


def conditions(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [res("Condition", f"c{i}") for i in range(start, start + n)]


@pytest.mark.parametrize(("query", "count"), [("Condition?patient=1&_count=200", 200),
                                              ("Observation?patient=1&_sort=-date", None),
                                              ("http://h/fhir/Observation?_count=50&patient=1", 50),
                                              ("Condition?_count=abc", None)])
def test_page_count_reads_the_count_a_query_asks_for(query: str, count: int | None) -> None:
    assert page_count(query) == count


@responses.activate
def test_a_prefetch_key_over_its_templates_count_is_cut_and_named(
        definition: HookDefinition, fetcher: FhirFetcher, fhir_settings: Settings) -> None:  # noqa: F811
    assert page_count(definition.prefetch["conditions"]) == 200
    prefetch = full_prefetch(definition, conditions=searchset(*conditions(8_000)))
    data = gather_fhir_data(hook_request(prefetch), definition, fetcher, fhir_settings.fhir_budget)
    assert len(responses.calls) == 0
    assert [c["id"] for c in data.of_type("Condition")] == [f"c{i}" for i in range(200)]
    assert data.origin["conditions"] == "prefetch"
    assert [(m.key, m.reason) for m in data.missing] == [
        ("conditions", "prefetch: 8000 entries sent in the Bundle where the query asks for at most 200; "
                       "the first 200 were read")]


@responses.activate
def test_a_prefetch_key_at_its_count_is_whole(definition: HookDefinition, fetcher: FhirFetcher,  # noqa: F811
                                              fhir_settings: Settings) -> None:
    prefetch = full_prefetch(definition, conditions=searchset(*conditions(200)))
    data = gather_fhir_data(hook_request(prefetch), definition, fetcher, fhir_settings.fhir_budget)
    assert len(data.of_type("Condition")) == 200 and data.missing == ()


@responses.activate
@pytest.mark.parametrize("page_with_too_many", [1, 2])
def test_a_fhir_page_over_the_count_is_cut_and_paging_stops(definition: HookDefinition,  # noqa: F811
                                                             fetcher: FhirFetcher, fhir_settings: Settings,
                                                             page_with_too_many: int) -> None:
    """A server that ignores ``_count`` answers with 10,000 entries on a page (first or second): the first 200
    of that page are read, no further page is asked for, and the cut is named."""
    pages = [searchset(*conditions(150)), searchset(*conditions(10_000, 150))] if page_with_too_many == 2 else [
        searchset(*conditions(10_000))]
    for number, page in enumerate(pages, start=1):
        page["link"] = [{"relation": "next", "url": f"{BASE}/Condition?page={number + 1}&_count=200"}]

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        number = int(re.search(r"page=(\d+)", request.url).group(1)) if "page=" in request.url else 1
        return 200, {}, json.dumps(pages[min(number, len(pages)) - 1])

    responses.add_callback(responses.GET, re.compile(re.escape(BASE) + "/Condition.*"), callback=answer)
    prefetch = full_prefetch(definition)
    del prefetch["conditions"]
    data = gather_fhir_data(hook_request(prefetch), definition, fetcher, fhir_settings.fhir_budget)
    assert len(responses.calls) == page_with_too_many
    assert len(data.of_type("Condition")) == (150 + 200 if page_with_too_many == 2 else 200)
    where = "on one page" if page_with_too_many == 1 else "on page 2"
    assert [(m.key, m.reason) for m in data.missing] == [
        ("conditions", f"incomplete: 10000 entries sent {where} where the query asks for at most 200; "
                       "the first 200 were read")]
