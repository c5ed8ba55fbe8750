"""What several test files share, in one importable place (``conftest.py`` holds only fixtures, and is never
imported as a module): paths to the shared material, a free port, the sandbox's signed token, a fresh
PostgreSQL database, a live ``cds-service serve`` and a tiny loopback JSON server."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jwt
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from cds_service.cds_hooks.errors import DataUnavailable
from cds_service.cds_hooks.hook_definitions import HookDefinition
from cds_service.cds_hooks.validate import HookRequest
from cds_service.fhir.client import FhirFetcher
from cds_service.fhir.gather import gather_fhir_data
from cds_service.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
EXTERNAL = SHARED / "external"
SANDBOX_ISSUERS = REPO / "tests" / "data" / "issuers" / "sandbox-dev.json"
SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"


def free_port() -> int:
    """A loopback port nobody listens on right now (bound, noted, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def external_files(role: str) -> list[str]:
    """Names of the files in shared/external/ whose manifest role is ``role`` (request, response, ...)."""
    manifest = json.loads((EXTERNAL / "manifest.json").read_text())
    return sorted(name for name, meta in manifest["files"].items() if meta.get("role") == role)


def load_external(name: str) -> Any:
    return json.loads((EXTERNAL / name).read_text())


@cache
def sandbox_key() -> Any:
    """The CDS Hooks sandbox's published ES384 test key (shared/external/sandbox-private-key.pem)."""
    return serialization.load_pem_private_key((EXTERNAL / "sandbox-private-key.pem").read_bytes(), None)


def sandbox_token(aud: Any, **claims: Any) -> str:
    """What the CDS Hooks sandbox sends: ES384, kid + jku + typ headers, exp = iat + 300, a fresh jti.
    A claim given as None is left out (to test a missing one)."""
    now = int(time.time())
    payload = {"iss": SANDBOX_ISS, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4()), **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, sandbox_key(), algorithm="ES384",
                      headers={"kid": SANDBOX_KID, "jku": SANDBOX_JKU, "typ": "JWT"})


def new_database(server_url: str) -> str:
    """A fresh database on the server, so every test starts from an empty schema."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def make_fetcher(**changes: Any) -> tuple[FhirFetcher, Settings]:
    settings = load_settings({}, **changes)
    return FhirFetcher(settings), settings


def order_sign_request(fhir_server: str, prefetch: dict[str, Any] | None = None) -> HookRequest:
    return HookRequest(service_id="spine-order-sign", hook="order-sign", hook_instance="i", patient_id="pt-1",
                       user_id="Practitioner/u", encounter_id=None, selections=None, draft_entries=(),
                       fhir_server=fhir_server, prefetch=prefetch or {})


def timed_gather(fhir_server: str, definition: HookDefinition, prefetch: dict[str, Any] | None = None,
                 **changes: Any) -> tuple[Any, float]:
    """gather_fhir_data's result (or the DataUnavailable it raised) and its wall time, with the real fetcher
    and the settings changed by ``changes`` (fhir_timeout, fhir_budget, ...)."""
    fetcher, settings = make_fetcher(**changes)
    started = time.monotonic()
    try:
        result: Any = gather_fhir_data(order_sign_request(fhir_server, prefetch), definition, fetcher,
                                       settings.fhir_budget)
    except DataUnavailable as exc:
        result = exc
    elapsed = time.monotonic() - started
    fetcher.close()
    return result, elapsed


class LiveService:
    """``cds-service serve`` in a subprocess: the real CLI, the real gunicorn, a free loopback port.

    ``wait=False`` returns at once (several replicas can then start together); call ``wait_ready``. Its
    stderr goes to a temporary file, never an unread pipe: a full pipe would block the workers' logging.
    ``port`` may be chosen by the caller when a setting must name it (``CDS_PUBLIC_BASE_URL`` for JWT ``aud``);
    ``env`` is kept so a test can read the service's own settings (e.g. its store URL)."""

    def __init__(self, env: Mapping[str, str], workers: int = 2, *, wait: bool = True,
                 port: int | None = None) -> None:
        self.env = dict(env)
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cds_service", "serve", "--port", str(self.port), "--workers", str(workers)],
            cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=self.stderr)
        if wait:
            self.wait_ready()

    def wait_ready(self, limit_s: float = 30.0) -> None:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.log()}")
            try:  # the front accepts before the workers have loaded; on a busy machine that takes seconds
                if requests.get(f"{self.base_url}/healthz", timeout=2).ok:
                    return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"service did not answer /healthz within {limit_s:g} s")

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self) -> str:
        """Everything the service wrote to stderr so far."""
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


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
