"""The serve command's safety rules, checked without starting a server."""

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
