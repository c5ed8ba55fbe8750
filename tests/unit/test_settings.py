"""Settings come from CDS_* environment variables, a settings file adds to them, the environment wins."""

import json
from pathlib import Path

import pytest

from cds_service.settings import SETTINGS, SettingsError, load_settings


def test_defaults_need_no_configuration(tmp_path: Path) -> None:
    settings = load_settings({})
    assert settings.criteria == ""  # every topic at its newest pack
    assert settings.fhir_allowed_prefixes == ("http://127.0.0.1", "http://localhost", "http://[::1]")
    assert settings.authentication_configured is False
    assert settings.store_url.startswith("sqlite:///") and settings.store_url.endswith("/cds.db")
    assert settings.max_body_bytes == 10_000_000


def test_environment_wins_over_settings_file(tmp_path: Path) -> None:
    file = tmp_path / "settings.json"
    file.write_text(json.dumps({"CDS_CRITERIA": "acr-vcf-2018", "CDS_FHIR_TIMEOUT": 1.5}))
    settings = load_settings({"CDS_SETTINGS_FILE": str(file), "CDS_FHIR_TIMEOUT": "0.2"})
    assert settings.criteria == "acr-vcf-2018"
    assert settings.fhir_timeout == 0.2


@pytest.mark.parametrize("env, message", [
    ({"CDS_MAX_BODY_BYTES": "ten"}, "CDS_MAX_BODY_BYTES must be int"),
    ({"CDS_MIRROR_SYSTEM_ACTIONS": "maybe"}, "CDS_MIRROR_SYSTEM_ACTIONS must be true or false"),
    ({"CDS_SETTINGS_FILE": "/nonexistent/x.json"}, "not a readable JSON object"),
])
def test_bad_values_stop_start_up_with_the_setting_named(env: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_every_setting_is_prefixed_and_documented() -> None:
    for setting in SETTINGS:
        assert setting.name.startswith("CDS_")
        assert setting.meaning


def test_default_fhir_allowlist_is_loopback_only_without_client_authentication(tmp_path: Path) -> None:
    """Issue 17: with trusted issuers the caller's bearer token must not go to whatever listens on loopback."""
    issuers = tmp_path / "issuers.json"
    issuers.write_text("[]")
    assert load_settings({"CDS_TRUSTED_ISSUERS_FILE": str(issuers)}).fhir_allowed_prefixes == ()
    listed = load_settings({"CDS_TRUSTED_ISSUERS_FILE": str(issuers), "CDS_FHIR_ALLOWLIST": "https://ehr.example.org/R4"})
    assert listed.fhir_allowed_prefixes == ("https://ehr.example.org/R4",)
