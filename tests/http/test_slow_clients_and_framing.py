"""Issue 17 findings 1 and 4 over real sockets against ``cds-service serve`` (loopback only, bounded).

Before: eight slow-header clients held every gunicorn thread, so an ordinary call waited as long as they kept
going; malformed chunked bodies gave a 500 with a traceback in the log, and an oversized chunked body a 400.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import LiveService

pytestmark = pytest.mark.slow
HOOK = "/cds-services/spine-order-select"
MAX_BODY = 2000


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    live = LiveService({"CDS_DATA_DIR": str(tmp_path_factory.mktemp("framing")), "CDS_LOG_LEVEL": "WARNING",
                        "CDS_MAX_BODY_BYTES": str(MAX_BODY)})
    yield live
    live.stop()


def test_slow_and_idle_clients_do_not_delay_an_ordinary_call(service: LiveService) -> None:
    """16 slow-header + 16 slow-body + 16 idle connections held ~3 s; every ordinary call answers within 1 s."""
    stop = threading.Event()
    sockets: list[socket.socket] = []

    def hold(kind: str) -> None:
        sock = socket.create_connection(("127.0.0.1", service.port), timeout=5)
        sockets.append(sock)
        if kind == "header":
            sock.sendall(f"POST {HOOK} HTTP/1.1\r\nHost: x\r\n".encode())
        elif kind == "body":
            sock.sendall(f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         "Content-Length: 1500\r\n\r\n{".encode())
        while not stop.wait(0.5):
            try:
                sock.sendall(b"X-Slow: 1\r\n" if kind == "header" else b" " if kind == "body" else b"")
            except OSError:
                return

    threads = [threading.Thread(target=hold, args=(kind,), daemon=True)
               for kind in ("header", "body", "idle") for _ in range(16)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        slowest = 0.0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            started = time.monotonic()
            assert requests.get(service.url("/healthz"), timeout=5).status_code == 200
            assert requests.get(service.url("/cds-services"), timeout=5).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
        assert slowest < 1.0
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
        for thread in threads:
            thread.join(2)


def raw_exchange(service: LiveService, data: bytes) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < _length(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def _length(received: bytes) -> int:
    for line in received.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def chunked(body: bytes) -> bytes:
    return (f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode() + body


FRAMING = {
    "chunk size zz": (chunked(b"zz\r\n{}\r\n0\r\n\r\n"), 400),
    "chunk size -5": (chunked(b"-5\r\n{}\r\n0\r\n\r\n"), 400),
    "data longer than its size": (chunked(b"2\r\n{}}}}\r\n0\r\n\r\n"), 400),
    "NUL in a chunk extension": (chunked(b"2;ext=\x00\r\n{}\r\n0\r\n\r\n"), 400),
    "chunked body over the limit": (chunked(b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(3))
                                            + b"0\r\n\r\n"), 413),
    "Content-Length over the limit": (f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                      f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode(), 413),
    "Content-Length and Transfer-Encoding": (
        f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{{}}".encode(),
        400),
}


@pytest.mark.parametrize("data, status", FRAMING.values(), ids=FRAMING.keys())
def test_framing_errors_are_operation_outcomes(service: LiveService, data: bytes, status: int) -> None:
    got, outcome = raw_exchange(service, data)
    assert got == status
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["diagnostics"]


def test_a_valid_chunked_body_still_works(service: LiveService) -> None:
    status, outcome = raw_exchange(service, chunked(b"2\r\n{}\r\n0\r\n\r\n"))
    assert status == 400 and "required property" in json.dumps(outcome)  # reached the app: the envelope check


def test_framing_errors_log_one_line_each_without_traceback(tmp_path: Path) -> None:
    live = LiveService({"CDS_DATA_DIR": str(tmp_path), "CDS_LOG_LEVEL": "WARNING",
                        "CDS_MAX_BODY_BYTES": str(MAX_BODY)}, workers=1)
    try:
        for data, _status in FRAMING.values():
            raw_exchange(live, data)
    finally:
        live.process.terminate()
        live.process.wait(timeout=15)
        log = live.log()
        live.stop()
    assert log.count("request rejected before the app") == len(FRAMING)
    assert "Traceback" not in log
