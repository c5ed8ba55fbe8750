"""The serve command's safety rules, checked without starting a server."""

from pathlib import Path

import pytest

from cds_service.cli import main
from cds_service.settings import is_loopback


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
