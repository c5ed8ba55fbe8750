"""The loopback FHIR R4 test server (sekmet-fhir from ``.venv-fhir``): started by the integration tests on a
free port, and by ``make fhir-server`` on 127.0.0.1:8090 with every scenario loaded, for the README's CLI
examples. See shared/reference/fhir-test-server.md.

sekmet runs with its hospital simulator off (it would otherwise rewrite MedicationRequests two seconds after
they are stored), strict inbound validation (test data must be valid R4) and its SQLite store in the
directory given, emptied at every start so the data are exactly the fixtures.

Run as a script (``make fhir-server``)::

    .venv/bin/python tests/fhir_server/loopback.py [--port 8090] [--data-dir .fhir-server]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
UVICORN = REPO / ".venv-fhir" / "bin" / "uvicorn"
START_LIMIT_S = 30.0


class ServerFailed(RuntimeError):
    """sekmet-fhir is missing, exited, or did not answer in time; the message says which, with its log."""


def write_settings(directory: Path, port: int) -> Path:
    """settings.yaml for sekmet (JSON is valid YAML, so no YAML library is needed here)."""
    settings = {
        "base_url": f"http://127.0.0.1:{port}/fhir",  # absolute Location / fullUrl / next links use it
        "host": "127.0.0.1",
        "port": port,
        "data_dir": str(directory / "data"),
        "own_private_key_path": str(directory / "keys" / "sekmet_private.pem"),
        "simulator": {"enabled": False},
        "log_inbound": False,
        "validation": {"inbound": "strict"},
    }
    path = directory / "settings.yaml"
    path.write_text(json.dumps(settings, indent=2))
    return path


def start(directory: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """Start sekmet-fhir with an empty store under ``directory``; return the process and its base URL once it
    answers ``/metadata``. Its output goes to ``directory/sekmet.log``."""
    if not UVICORN.exists():
        raise ServerFailed(f"{UVICORN} is missing: run `make .venv-fhir/.installed` (installs sekmet-fhir)")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(directory / "data", ignore_errors=True)
    log_path = directory / "sekmet.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(UVICORN), "sekmet.main:app_factory", "--factory", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning", "--no-access-log"],
            cwd=directory, env={**os.environ, "SEKMET_CONFIG": str(write_settings(directory, port))},
            stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/fhir"
    try:
        wait_for_metadata(process, base_url, log_path)
    except ServerFailed:
        stop(process)
        raise
    return process, base_url


def wait_for_metadata(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"sekmet-fhir exited with {process.returncode}:\n"
                               f"{log_path.read_text(errors='replace')}")
        try:
            if requests.get(f"{base_url}/metadata", timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise ServerFailed(f"sekmet-fhir did not answer {base_url}/metadata within {START_LIMIT_S:g} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str] | None = None) -> int:
    """Start the server, load every scenario with ``cds-service load-fixtures``, serve until Ctrl-C."""
    from cds_service.cli import bind_problem

    parser = argparse.ArgumentParser(description="Loopback FHIR R4 test server with the clinical scenarios loaded.")
    parser.add_argument("--port", type=int, default=8090, help="TCP port on 127.0.0.1 (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=REPO / ".fhir-server",
                        help="sekmet's settings, log and SQLite store; emptied at start (default: .fhir-server)")
    args = parser.parse_args(argv)
    problem = bind_problem("127.0.0.1", args.port)
    if problem:
        print(f"fhir-server: cannot start: {problem}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a plain `kill` stops sekmet too (finally below)
    try:
        process, base_url = start(args.data_dir.resolve(), args.port)
    except ServerFailed as exc:
        print(f"fhir-server: {exc}", file=sys.stderr)
        return 1
    try:
        loaded = subprocess.run([sys.executable, "-m", "cds_service", "load-fixtures", "--fhir-server", base_url],
                                cwd=REPO, check=False)
        if loaded.returncode != 0:
            return loaded.returncode
        print(f"fhir-server: FHIR R4 test server on {base_url} with every scenario loaded; Ctrl-C stops it "
              f"(log: {args.data_dir / 'sekmet.log'})", flush=True)
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(process)


if __name__ == "__main__":
    sys.exit(main())
