"""``cds-service serve`` says "serving on ..." only once it is listening: a script (or a person) that waits for
that line can connect at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, free_port

pytestmark = pytest.mark.slow


def test_serving_on_is_printed_after_the_port_is_bound(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", "1"],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "CDS_DATA_DIR": str(tmp_path), "CDS_LOG_LEVEL": "WARNING"})
    try:
        assert process.stderr is not None
        seen = []
        for line in process.stderr:  # blocks until the line arrives; the process ending ends the loop
            seen.append(line.rstrip())
            if "serving on" in line:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pass  # connected: the port was listening when the line was printed
                break
        assert seen[-1] == f"cds-service: serving on http://127.0.0.1:{port}/cds-services", seen
    finally:
        process.terminate()
        process.wait(timeout=15)
        if process.stderr:
            process.stderr.close()
