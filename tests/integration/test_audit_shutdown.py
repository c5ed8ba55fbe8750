"""A graceful stop loses no audit row: SIGTERM right after a hook call (inside the batch writer's 0.25 s) still
leaves the call's rows in the database (ops/audit.py writes what is pending at exit)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from cds_service.cli.fixtures import hook_request, materialise

pytestmark = pytest.mark.slow


def test_sigterm_right_after_a_call_keeps_its_audit_rows(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", "1"],
                              env={**os.environ, "CDS_DATA_DIR": str(tmp_path)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        body = hook_request(materialise("seed-worsening-benign-vcf", date.today()), "order-select",
                            with_prefetch=True, fhir_server=None)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/cds-services/spine-order-select",
                                         data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        cards = json.loads(urllib.request.urlopen(request, timeout=30).read())["cards"]
        os.killpg(server.pid, signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    database = next(tmp_path.glob("*.db"))
    with sqlite3.connect(database) as conn:
        audited = {row[0] for row in conn.execute("select card_uuid from audit where hook_instance = ?",
                                                  (body["hookInstance"],))}
    assert audited == {card["uuid"] for card in cards}
