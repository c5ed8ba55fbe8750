"""The CLI as a newcomer meets it: serve's safety rules and start-up errors (one line, exit 2, never a
traceback), help texts, and send-scenario's answers to a wrong or missing argument."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import responses

from cds_service.cli import main
from cds_service.cli.fixtures import list_scenarios
from cds_service.clinical.packs import available_packs
from cds_service.settings import is_loopback
from tests.helpers import REPO, free_port


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.8.9.1", True),
    ("0.0.0.0", False), ("10.0.0.5", False), ("example.org", False), ("127.0.0.1.example.org", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_non_loopback_bind_without_authentication_refuses_to_start(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CDS_TRUSTED_ISSUERS_FILE", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "refusing to listen on 0.0.0.0 without client authentication" in capsys.readouterr().err


def test_bad_setting_stops_start_up(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CDS_FHIR_TIMEOUT", "soon")
    assert main(["serve"]) == 2
    assert "CDS_FHIR_TIMEOUT must be float, got 'soon'" in capsys.readouterr().err


def test_a_call_deadline_within_the_fhir_budget_refuses_to_start(monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CDS_FHIR_BUDGET", "6")  # the README's public-sandbox setting, without its deadline
    assert main(["serve", "--port", "1"]) == 2
    assert "CDS_CALL_DEADLINE (1 s) must be longer than CDS_FHIR_BUDGET (6 s)" in capsys.readouterr().err


def serve_stderr(args: list[str], tmp_path: Path, **env: str) -> tuple[int, list[str]]:
    """``python -m cds_service serve ...`` as a user runs it: exit code and stderr lines."""
    result = subprocess.run([sys.executable, "-m", "cds_service", "serve", *args], cwd=REPO, capture_output=True,
                            text=True, timeout=60,
                            env={**os.environ, "CDS_DATA_DIR": str(tmp_path), "CDS_LOG_LEVEL": "WARNING", **env})
    return result.returncode, result.stderr.splitlines()


def test_a_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, lines = serve_stderr(["--port", str(port)], tmp_path)
    assert code == 2
    assert lines == [f"cds-service: cannot start: cannot listen on 127.0.0.1:{port}: Address already in use"]


@pytest.mark.parametrize("args, env, line", [
    (["--port", "99999"], {}, "cds-service: cannot start: --port must be 1-65535, got 99999"),
    (["--port", "0"], {}, "cds-service: cannot start: --port must be 1-65535, got 0"),
    ([], {"CDS_CRITERIA": "acr-vcf-2031"},
     "cds-service: cannot start: unknown criteria pack 'acr-vcf-2031'; valid packs: "
     + ", ".join(available_packs())),
])
def test_bad_port_or_criteria_is_one_line_and_exit_2(tmp_path: Path, args: list[str], env: dict[str, str],
                                                     line: str) -> None:
    code, lines = serve_stderr([*args, "--port", str(free_port())] if not args else args, tmp_path, **env)
    assert (code, lines) == (2, [line])


def test_serve_help_gives_host_and_port_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--host HOST address to listen on" in text and "(default: 127.0.0.1)" in text
    assert "--port PORT TCP port, 1-65535 (default: 8080)" in text


def test_send_scenario_help_and_list_name_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["send-scenario", "--help"])
    help_text = capsys.readouterr().out
    assert main(["send-scenario", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == list_scenarios()
    assert all(name in help_text for name in list_scenarios())
    assert "seed-worsening-benign-vcf" in help_text and "82-year-old woman" in help_text


def test_send_scenario_needs_a_name_and_a_service_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send-scenario"]) == 2
    assert "needs a scenario NAME and --service-url (--list shows the names)" in capsys.readouterr().err


@responses.activate
def test_send_scenario_to_the_discovery_url_says_the_service_id_is_missing(
        capsys: pytest.CaptureFixture[str]) -> None:
    responses.get("http://127.0.0.1:8080/cds-services",
                  json={"services": [{"id": "spine-order-select"}, {"id": "spine-order-sign"}]})
    assert main(["send-scenario", "seed-worsening-benign-vcf", "--service-url",
                 "http://127.0.0.1:8080/cds-services"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --service-url names the discovery endpoint, not a service: add the service id, e.g. "
        "http://127.0.0.1:8080/cds-services/spine-order-select (it lists: spine-order-select, spine-order-sign)")
    assert [call.request.method for call in responses.calls] == ["GET"]  # nothing was posted


@responses.activate
def test_send_scenario_to_a_url_without_discovery_names_the_expected_shape(
        capsys: pytest.CaptureFixture[str]) -> None:
    responses.get("http://127.0.0.1:8080/other", status=404)
    assert main(["send-scenario", "seed-worsening-benign-vcf", "--service-url",
                 "http://127.0.0.1:8080/other/spine-order-select"]) == 2
    assert "no discovery document at http://127.0.0.1:8080/other (HTTP 404): --service-url must be " \
           ".../cds-services/<service id>" in capsys.readouterr().err
def test_trusted_issuers_without_public_base_url_refuse_to_start(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 17: otherwise the JWT aud is checked against the client's own Host header (forgeable)."""
    monkeypatch.setenv("CDS_TRUSTED_ISSUERS_FILE", "tests/data/issuers/sandbox-dev.json")
    monkeypatch.delenv("CDS_PUBLIC_BASE_URL", raising=False)
    assert main(["serve", "--port", "1"]) == 2
    assert "CDS_PUBLIC_BASE_URL is empty" in capsys.readouterr().err


def test_trust_host_header_lifts_the_public_base_url_rule(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # serve would set it for the whole process
    monkeypatch.setenv("CDS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CDS_TRUSTED_ISSUERS_FILE", "tests/data/issuers/sandbox-dev.json")
    monkeypatch.delenv("CDS_PUBLIC_BASE_URL", raising=False)
    monkeypatch.setenv("CDS_HOOKS_DIR", "/nonexistent-hooks-dir")  # stop start-up at the next step instead
    assert main(["serve", "--port", "1", "--trust-host-header"]) == 2
    err = capsys.readouterr().err
    assert "CDS_PUBLIC_BASE_URL is empty" not in err and "cannot start" in err
