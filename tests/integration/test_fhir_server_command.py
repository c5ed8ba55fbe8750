"""``make fhir-server`` (tests/fhir_server/loopback.py): the loopback FHIR server the README's CLI examples
use starts, holds every scenario, and stops with its sekmet process when it is stopped."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from cds_service.cli.fixtures import list_scenarios
from tests.helpers import REPO, free_port

pytestmark = pytest.mark.slow


def test_fhir_server_starts_with_every_scenario_loaded_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "tests/fhir_server/loopback.py", "--port", str(port),
                                "--data-dir", str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("fhir-server: "):
                break
        base = f"http://127.0.0.1:{port}/fhir"
        assert lines[-1].startswith(f"fhir-server: FHIR R4 test server on {base} with every scenario loaded")
        assert len(lines) == 1 + len(list_scenarios())  # one line per scenario from load-fixtures
        total = requests.get(f"{base}/Patient", params={"_summary": "count"}, timeout=5).json()["total"]
        assert total == len(list_scenarios())
        assert requests.get(f"{base}/Patient/vcf-seed-82f", timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    with pytest.raises(requests.ConnectionError):  # sekmet stopped with it
        requests.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2)


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "tests/fhir_server/loopback.py", "--port", str(port), "--data-dir",
                                 str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"fhir-server: cannot start: cannot listen on 127.0.0.1:{port}: "
                                          "Address already in use"]


def test_the_readme_cli_examples_use_the_make_fhir_server_port() -> None:
    readme = (REPO / "README.md").read_text()
    makefile = (REPO / "Makefile").read_text()
    port = re.search(r"^FHIR_PORT \?= (\d+)$", makefile, re.M)
    assert port and "make fhir-server" in readme
    urls = set(re.findall(r"http://127\.0\.0\.1:(\d+)/fhir", readme))
    assert urls == {port.group(1)}
