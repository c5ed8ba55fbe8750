"""Snapshot every answer the service gives to the requests we know, to compare two versions of the code.

Used around refactors that must not change behaviour: run it before and after, then ``--compare``.
Covers every fixture scenario x both hooks x (full prefetch | no prefetch, fetched from an in-process
loopback FHIR stand-in serving the same scenario), and every request file of ``../shared/external``.
hookInstance and "today" are fixed, so card uuids and dates are the same in both runs. Each answer is kept
as [status, parsed body, sha256 of the body's bytes], so a change of bytes alone (member order, spacing)
shows too.

    .venv/bin/python bench/response_snapshot.py /tmp/before.json
    .venv/bin/python bench/response_snapshot.py /tmp/after.json --compare /tmp/before.json
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import sys
import tempfile
import threading
import uuid
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cds_service import create_app  # noqa: E402
from cds_service.cli.fixtures import hook_request, list_scenarios, materialise, search  # noqa: E402
from cds_service.settings import load_settings  # noqa: E402

TODAY = date(2026, 12, 1)
EXTERNAL = REPO.parent / "shared" / "external"
SERVICES = {"order-select": "spine-order-select", "order-sign": "spine-order-sign"}


class _FhirStandIn:
    """Answers FHIR searches for one scenario from memory (``cli.fixtures.search``)."""

    def __init__(self) -> None:
        self.scenario: Any = None
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = unquote(self.path.split("/fhir/", 1)[1])
                scenario = outer.scenario
                if query.startswith("Patient/"):
                    body = next(r for r in scenario.resources if r["resourceType"] == "Patient")
                else:
                    body = search(scenario.resources, query, scenario.patient_id)
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"


def snapshot() -> dict[str, Any]:
    fhir = _FhirStandIn()
    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings({"CDS_FHIR_ALLOWLIST": fhir.base, "CDS_FHIR_TIMEOUT": "5", "CDS_FHIR_BUDGET": "10",
                                  "CDS_CALL_DEADLINE": "30"},
                                 data_dir=data_dir)  # generous: a busy machine must not change answers
        client = create_app(settings).test_client()
        out: dict[str, Any] = {}
        for name in list_scenarios():
            scenario = materialise(name, TODAY)
            fhir.scenario = scenario
            for hook, service in SERVICES.items():
                for with_prefetch in (True, False):
                    body = hook_request(scenario, hook, with_prefetch=with_prefetch,
                                        fhir_server=None if with_prefetch else fhir.base)
                    body["hookInstance"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"snapshot/{name}/{hook}"))
                    answer = client.post(f"/cds-services/{service}", json=body)
                    out[f"{name} {hook} {'prefetch' if with_prefetch else 'fetched'}"] = _kept(answer)
        manifest = json.loads((EXTERNAL / "manifest.json").read_text())
        for file, meta in sorted(manifest["files"].items()):
            if meta.get("role") != "request":
                continue
            body = json.loads((EXTERNAL / file).read_text())
            hook = body.get("hook") if isinstance(body, dict) else None
            answer = client.post(f"/cds-services/{SERVICES.get(hook, 'spine-order-select')}", json=body)
            out[f"external {file}"] = _kept(answer)
    return out


def _kept(answer: Any) -> list[Any]:
    return [answer.status_code, answer.get_json(), hashlib.sha256(answer.get_data()).hexdigest()]


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """One line per changed answer: its key, and the first differing path."""
    changes = []
    for key in sorted(set(before) | set(after)):
        path = _first_difference(before.get(key), after.get(key), "")
        if path is not None:
            changes.append(f"{key}: {path or '(whole)'}")
    return changes


def _first_difference(a: Any, b: Any, path: str) -> str | None:
    if type(a) is not type(b):
        return path
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            found = _first_difference(a.get(k), b.get(k), f"{path}.{k}")
            if found is not None:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}[len {len(a)} -> {len(b)}]"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _first_difference(x, y, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    return None if a == b else f"{path}: {str(a)[:120]!r} -> {str(b)[:120]!r}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--compare", type=Path, help="an earlier snapshot to compare with")
    args = parser.parse_args()
    current = snapshot()
    args.output.write_text(json.dumps(current, indent=1, sort_keys=True))
    print(f"{len(current)} answers written to {args.output}")
    if args.compare:
        changes = compare(json.loads(args.compare.read_text()), current)
        print("\n".join(changes) or "no answer changed")
        print(f"{len(changes)} of {len(current)} answers changed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
