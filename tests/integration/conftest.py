"""A real FHIR R4 server for integration tests: sekmet-fhir from ``.venv-fhir`` on a free loopback port.

See shared/reference/fhir-test-server.md. The server runs with its hospital simulator off (it would
otherwise rewrite MedicationRequests two seconds after they are stored), strict inbound validation (test
data must be valid R4), and its SQLite store in a temporary directory, so every session starts empty.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import REPO, free_port

FHIR_VENV = REPO / ".venv-fhir"
START_LIMIT_S = 30.0


def _sekmet_settings(directory: Path, port: int) -> Path:
    """settings.yaml for sekmet (JSON is valid YAML, so no YAML library is needed here)."""
    settings = {
        "base_url": f"http://127.0.0.1:{port}/fhir",  # absolute Location / fullUrl / next links use it
        "host": "127.0.0.1",
        "port": port,
        "data_dir": str(directory / "data"),
        "own_private_key_path": str(directory / "keys" / "sekmet_private.pem"),
        "simulator": {"enabled": False},
        "log_inbound": False,
        "validation": {"inbound": "strict"},
    }
    path = directory / "settings.yaml"
    path.write_text(json.dumps(settings, indent=2))
    return path


@pytest.fixture(scope="session")
def fhir_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running, empty sekmet-fhir; stopped when the session ends."""
    uvicorn = FHIR_VENV / "bin" / "uvicorn"
    if not uvicorn.exists():
        pytest.fail(f"{uvicorn} is missing: run `make test` (it creates .venv-fhir with sekmet-fhir)")
    directory = tmp_path_factory.mktemp("sekmet")
    port = free_port()
    log = (directory / "sekmet.log").open("wb")
    process = subprocess.Popen(
        [str(uvicorn), "sekmet.main:app_factory", "--factory", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=directory, env={**os.environ, "SEKMET_CONFIG": str(_sekmet_settings(directory, port))},
        stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/fhir"
    try:
        _wait_for_metadata(process, base_url, directory / "sekmet.log")
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_for_metadata(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sekmet-fhir exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            if requests.get(f"{base_url}/metadata", timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail(f"sekmet-fhir did not answer {base_url}/metadata within {START_LIMIT_S:g} s")
