"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The file must pass the Compose specification's JSON schema (shared/reference/compose-spec.schema.json) and
be wired the way the demo needs: the service reaches HAPI by the URL it allowlists, stores feedback in its
own PostgreSQL, starts only after its dependencies are healthy, and a one-shot job loads fhir_fixtures/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft7Validator

from cds_service.cli import build_parser
from cds_service.settings import SETTINGS

REPO = Path(__file__).resolve().parents[2]
COMPOSE_SCHEMA = REPO.parent / "shared" / "reference" / "compose-spec.schema.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def test_compose_file_passes_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    validator = Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text()))
    assert [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)] == []


def test_service_settings_are_known_cds_settings(services: dict[str, Any]) -> None:
    known = {s.name for s in SETTINGS}
    for name in ("cds", "load-fixtures"):
        names = {k for k in services[name].get("environment", {}) if k.startswith("CDS_")}
        assert names <= known, f"{name}: unknown settings {names - known}"


def test_service_calls_hapi_by_the_url_it_allowlists_and_the_fixture_job_loads(services: dict[str, Any]) -> None:
    allowlist = services["cds"]["environment"]["CDS_FHIR_ALLOWLIST"].split(",")
    job = services["load-fixtures"]["command"]
    fhir_server = job[job.index("--fhir-server") + 1]
    assert fhir_server in allowlist
    url = urlsplit(fhir_server)
    assert url.hostname in services and services[url.hostname]["image"].startswith("hapiproject/hapi:")
    assert url.port == 8080 and url.path == "/fhir"  # HAPI's port and base path inside the network
    args = build_parser().parse_args(job[1:])  # the CLI really has this command and these options
    assert job[0] == "cds-service" and args.command == "load-fixtures" and args.fhir_server == fhir_server
    assert services["load-fixtures"]["restart"] == "no"
    assert services["load-fixtures"]["depends_on"]["hapi"]["condition"] == "service_healthy"


def test_hapi_is_r4_with_cors_on_postgresql(services: dict[str, Any]) -> None:
    env = services["hapi"]["environment"]
    assert env["hapi.fhir.fhir_version"] == "R4"
    assert env["hapi.fhir.cors.allowed_origin"] == "*"
    database = re.fullmatch(r"jdbc:postgresql://([^:/]+):5432/(\w+)", env["SPRING_DATASOURCE_URL"])
    assert database, env["SPRING_DATASOURCE_URL"]
    db_env = services[database.group(1)]["environment"]
    assert (db_env["POSTGRES_DB"], db_env["POSTGRES_USER"], db_env["POSTGRES_PASSWORD"]) == (
        database.group(2), env["SPRING_DATASOURCE_USERNAME"], env["SPRING_DATASOURCE_PASSWORD"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services[database.group(1)]["volumes"])


def test_service_database_is_its_own_postgresql(services: dict[str, Any]) -> None:
    url = urlsplit(services["cds"]["environment"]["CDS_DATABASE_URL"])
    assert url.scheme == "postgresql+psycopg"
    db_env = services[url.hostname]["environment"]
    assert (db_env["POSTGRES_DB"], db_env["POSTGRES_USER"], db_env["POSTGRES_PASSWORD"]) == (
        url.path.lstrip("/"), url.username, url.password)
    assert url.hostname != urlsplit(services["hapi"]["environment"]["SPRING_DATASOURCE_URL"][5:]).hostname


def test_every_dependency_waits_for_a_healthcheck(services: dict[str, Any]) -> None:
    edges = [(name, target, spec["condition"]) for name, service in services.items()
             for target, spec in service.get("depends_on", {}).items()]
    assert {(a, b) for a, b, _ in edges} >= {("cds", "cds-db"), ("hapi", "hapi-db"), ("load-fixtures", "hapi")}
    for name, target, condition in edges:
        assert condition == "service_healthy", f"{name} -> {target}"
        assert services[target]["healthcheck"]["test"], f"{target} has no healthcheck"


def test_service_binds_all_interfaces_only_for_the_demo_and_publishes_on_loopback(services: dict[str, Any]) -> None:
    command = services["cds"]["command"]
    assert command[:2] == ["cds-service", "serve"] and "--allow-unauthenticated" in command
    assert command[command.index("--host") + 1] == "0.0.0.0"
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port
    assert "/healthz" in " ".join(services["cds"]["healthcheck"]["test"])


def test_dockerfile_is_slim_non_root_with_a_healthcheck() -> None:
    text = (REPO / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in re.sub(r"\\\n\s*", " ", text).splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    by_name: dict[str, list[str]] = {}
    for name, rest in instructions:
        by_name.setdefault(name.upper(), []).append(rest)
    assert by_name["FROM"] == ["python:3.11-slim"]
    user = by_name["USER"][-1]
    assert user not in {"root", "0"}
    assert "useradd" in " ".join(by_name["RUN"]) and user in " ".join(by_name["RUN"])
    assert "/healthz" in by_name["HEALTHCHECK"][0]
    cmd = json.loads(by_name["CMD"][-1])
    assert cmd[:2] == ["cds-service", "serve"] and "--allow-unauthenticated" in cmd
    assert "# --allow-unauthenticated" in text  # the reason is written next to it


def test_dockerfile_copies_exist_and_are_not_ignored() -> None:
    text = (REPO / "Dockerfile").read_text()
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", ".venv-fhir"} <= ignored
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), source
                assert source.rstrip("/") not in ignored, source


def test_a_buffering_proxy_is_the_only_way_in(services: dict[str, Any]) -> None:
    """Issue 17: slow clients meet nginx (header/body timeouts, request buffering), never the service directly."""
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:") and proxy["ports"] == ["127.0.0.1:8080:8080"]
    assert "ports" not in services["cds"] and proxy["depends_on"]["cds"]["condition"] == "service_healthy"
    [mount] = proxy["volumes"]
    config = (REPO / mount.split(":")[0]).read_text()
    assert "upstream cds" in config and "server cds:8080;" in config
    for directive in ("client_header_timeout", "client_body_timeout", "proxy_request_buffering on",
                      "client_max_body_size", "limit_conn per_client"):
        assert directive in config, directive
    assert services["cds"]["environment"]["CDS_METRICS_BIND"].endswith(":9464")
