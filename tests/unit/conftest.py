"""Fixtures shared by the unit tests of the FHIR transport and data-gathering steps."""

from collections.abc import Iterator

import pytest

from cds_service.fhir.client import FhirFetcher
from cds_service.settings import Settings, load_settings


@pytest.fixture
def fhir_settings() -> Settings:
    return load_settings({})


@pytest.fixture
def fetcher(fhir_settings: Settings) -> Iterator[FhirFetcher]:
    fetcher = FhirFetcher(fhir_settings)
    yield fetcher
    fetcher.close()
