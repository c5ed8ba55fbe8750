"""Parallelism and the time budget against a REAL loopback HTTP server that delays, trickles or hangs.

``responses`` cannot show either property: it never opens a socket. Here every query crosses a TCP
connection to a ``ThreadingHTTPServer`` on 127.0.0.1, so the thread pool, the per-request timeout, the
chunked body reads and the wall-clock deadline are all exercised for real.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cds_service.cds_hooks.errors import DataUnavailable
from cds_service.cds_hooks.hook_definitions import HookDefinition, load_hook_definitions
from cds_service.fhir.client import UNREACHABLE
from cds_service.settings import PROJECT_ROOT
from tests.helpers import make_fetcher, timed_gather

pytestmark = pytest.mark.slow

MARGIN = 0.15  # thread scheduling and JSON work on a loaded 2-core CI machine
HANG_LIMIT = 30.0  # a hanging handler gives up after this long even if the test forgot to stop it


class MisbehavingFhir(BaseHTTPRequestHandler):
    """``/{mode}/fhir/{Type}[/{id}]``.

    Modes: ``fast``, ``delay<ms>``, ``trickle`` (1 byte / 20 ms), ``chunked`` (1-byte chunks), ``hang``,
    ``stall`` (half the body, then silence), ``cut`` (half the body, then hang up), ``pages<ms>`` (endless
    next links, each page delayed).
    """

    stop: threading.Event  # set on the server class by the fixture

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the default handler writes every request to stderr."""

    def handle(self) -> None:
        """The client hanging up mid-body is what the tests provoke: not an error worth a traceback."""
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        mode, _, rest = url.path.strip("/").partition("/fhir/")
        kind, _, rid = rest.partition("/")
        query = parse_qs(url.query)
        if mode.startswith(("delay", "pages")):
            self.stop.wait(int(mode[5:]) / 1000)
        if mode == "hang":
            self.stop.wait(HANG_LIMIT)
            return
        body = json.dumps(self._resource(kind, rid, query, mode)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        if mode == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for byte in body:
                if self.stop.wait(0.02):
                    return
                self.wfile.write(b"1\r\n" + bytes([byte]) + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode in {"stall", "cut"}:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if mode == "stall":
                self.stop.wait(HANG_LIMIT)
            return
        if mode == "trickle":
            for byte in body:
                if self.stop.wait(0.02):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            return
        self.wfile.write(body)

    def _resource(self, kind: str, rid: str, query: dict[str, list[str]], mode: str) -> dict[str, Any]:
        if rid:
            return {"resourceType": kind, "id": rid}
        patient = query.get("patient", ["p"])[0]
        page = int(query.get("page", ["1"])[0])
        resource = {"resourceType": kind, "id": f"{kind}-{page}", "subject": {"reference": f"Patient/{patient}"}}
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": resource}]}
        if mode.startswith("pages"):  # an endless, loop-free chain of next links
            base = f"http://127.0.0.1:{self.server.server_address[1]}/{mode}/fhir/{kind}"
            bundle["link"] = [{"relation": "next", "url": f"{base}?patient={patient}&page={page + 1}"}]
        return bundle


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: ten parallel connects would overflow it and the kernel would
    # retry the eleventh SYN a second later, which measures the test server, not the fetcher.
    request_queue_size = 128


@pytest.fixture(scope="module")
def slow_server() -> Iterator[str]:
    """Root URL of the misbehaving server; it stops (and releases hanging handlers) at module end."""
    stop = threading.Event()
    handler = type("Handler", (MisbehavingFhir,), {"stop": stop})
    server = _Server(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    stop.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def definition() -> HookDefinition:
    return load_hook_definitions(PROJECT_ROOT / "hooks")["spine-order-sign"]


def test_queries_run_in_parallel(slow_server: str) -> None:
    fetcher, _ = make_fetcher(fhir_timeout=2.0)
    queries = {f"q{i}": f"Observation?patient=pt-1&n={i}" for i in range(8)}
    started = time.monotonic()
    results = fetcher.fetch_all(f"{slow_server}/delay200/fhir", None, queries, 3.0)
    elapsed = time.monotonic() - started
    fetcher.close()
    serial = sum(r.elapsed_s for r in results.values())
    print(f"\n8 queries x 200 ms: wall {elapsed:.3f} s, sum of request times {serial:.3f} s")
    assert all(r.ok for r in results.values())
    assert 0.2 <= elapsed < 4 * 0.2  # about one delay, far from eight (generous: a busy 2-core machine)
    assert serial >= 8 * 0.2


def test_gather_fetches_every_key_in_parallel(slow_server: str, definition: HookDefinition) -> None:
    data, elapsed = timed_gather(f"{slow_server}/delay200/fhir", definition, fhir_timeout=1.0, fhir_budget=2.0)
    print(f"\ngather, {len(definition.prefetch)} keys x 200 ms: wall {elapsed:.3f} s")
    assert set(data.origin.values()) == {"fetched"} and data.missing == ()
    assert [c["id"] for c in data.of_type("Condition")] == ["Condition-1"]
    assert elapsed < 4 * 0.2  # about one delay, far from one per key (generous: a busy 2-core machine)


@pytest.mark.parametrize("mode", ["trickle", "chunked", "hang", "stall"])
def test_per_request_timeout_stops_slow_servers(slow_server: str, definition: HookDefinition, mode: str) -> None:
    error, elapsed = timed_gather(f"{slow_server}/{mode}/fhir", definition)  # defaults: 0.4 s each, 0.8 s in all
    print(f"\n{mode}, timeout 0.4 s: gather gave up after {elapsed:.3f} s")
    assert isinstance(error, DataUnavailable)
    assert "patient: timed out after 0.4 s" in error.message
    assert elapsed < 0.4 + MARGIN


@pytest.mark.parametrize("mode", ["trickle", "chunked", "hang", "stall"])
def test_budget_caps_the_call_even_with_a_long_timeout(slow_server: str, definition: HookDefinition,
                                                       mode: str) -> None:
    error, elapsed = timed_gather(f"{slow_server}/{mode}/fhir", definition, fhir_timeout=10.0, fhir_budget=0.6)
    print(f"\n{mode}, timeout 10 s, budget 0.6 s: gather gave up after {elapsed:.3f} s")
    assert isinstance(error, DataUnavailable) and "budget" in error.message
    assert elapsed < 0.6 + MARGIN


def test_endless_paging_stops_at_the_budget(slow_server: str, definition: HookDefinition) -> None:
    data, elapsed = timed_gather(f"{slow_server}/pages150/fhir", definition, fhir_timeout=1.0, fhir_budget=0.7,
                                 fhir_max_pages=100)
    print(f"\nendless paging, 150 ms a page, budget 0.7 s: {elapsed:.3f} s")
    assert elapsed < 0.7 + MARGIN
    assert data.origin["conditions"] == "fetched" and len(data.of_type("Condition")) >= 3
    assert "incomplete" in {m.key: m.reason for m in data.missing}["conditions"]


def test_truncated_body_is_a_connection_error(slow_server: str, definition: HookDefinition) -> None:
    error, elapsed = timed_gather(f"{slow_server}/cut/fhir", definition)
    assert isinstance(error, DataUnavailable) and UNREACHABLE in error.message
    assert elapsed < 0.4 + MARGIN


def test_some_keys_hang_others_arrive(slow_server: str, definition: HookDefinition) -> None:
    fast = {"patient": {"resourceType": "Patient", "id": "pt-1"}}
    data, elapsed = timed_gather(f"{slow_server}/hang/fhir", definition, prefetch=fast)
    assert elapsed < 0.4 + MARGIN
    assert data.origin["patient"] == "prefetch" and data.origin["conditions"] == "missing"
    assert {m.reason for m in data.missing} == {"timed out after 0.4 s"}
    assert len(data.missing) == len(definition.prefetch) - 1
