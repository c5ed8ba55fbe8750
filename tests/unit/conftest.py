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


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The unit suite starts no database server: PostgreSQL tests belong in tests/integration/."""
    pytest.fail("unit tests run on SQLite; move a test that needs PostgreSQL to tests/integration/")
