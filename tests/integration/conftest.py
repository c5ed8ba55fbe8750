"""A real FHIR R4 server for integration tests: sekmet-fhir from ``.venv-fhir`` on a free loopback port
(tests/fhir_server/loopback.py, which ``make fhir-server`` uses too), empty at the start of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fhir_server.loopback import ServerFailed, start, stop
from tests.helpers import free_port


@pytest.fixture(scope="session")
def fhir_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running, empty sekmet-fhir; stopped when the session ends."""
    try:
        process, base_url = start(tmp_path_factory.mktemp("sekmet"), free_port())
    except ServerFailed as exc:
        pytest.fail(f"{exc} (`make test` creates .venv-fhir with sekmet-fhir)")
    try:
        yield base_url
    finally:
        stop(process)
