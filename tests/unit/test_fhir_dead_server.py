"""A FHIR server that is not there fails the fetch fast: the connection is refused at once, so the hook call
answers long before the per-request timeout. Needs no FHIR server, only a loopback port nobody listens on."""

from __future__ import annotations

from cds_service.cds_hooks.errors import DataUnavailable
from cds_service.cds_hooks.hook_definitions import load_hook_definitions
from cds_service.fhir.client import UNREACHABLE
from cds_service.settings import PROJECT_ROOT
from tests.helpers import free_port, timed_gather

MARGIN = 0.15  # thread scheduling on a loaded 2-core CI machine


def test_dead_server_fails_fast() -> None:
    definition = load_hook_definitions(PROJECT_ROOT / "hooks")["spine-order-sign"]
    error, elapsed = timed_gather(f"http://127.0.0.1:{free_port()}/fhir", definition)
    assert isinstance(error, DataUnavailable) and UNREACHABLE in error.message
    assert elapsed < 0.4 + MARGIN
