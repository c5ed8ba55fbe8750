"""The benchmark's floor: a Flask app that answers any JSON POST with ``{"cards": []}``, nothing else.

Served by the real ``cds-service serve`` command (same gunicorn worker class, threads, timeouts, logging)
with only ``create_app`` swapped for this app, so the difference to the real service is exactly the work
the service does per request, not a different server configuration.

    python bench/baseline_app.py --port 8099 --workers 2
"""

from __future__ import annotations

import sys
from typing import Any

from flask import Flask, jsonify, request


class _NoServices:
    """Stands in for ``Services`` where ``cds-service serve`` reaches it (it closes the fail-fast app's
    services before forking): the baseline holds no fetcher, store or pool, so there is nothing to close."""

    def close(self) -> None:
        return None


def create_baseline_app(settings: Any = None) -> Flask:
    app = Flask("baseline")
    app.extensions["cds"] = _NoServices()

    @app.post("/cds-services/<service_id>")
    def call(service_id: str) -> Any:
        request.get_json(force=True)  # parse the body, as the service must
        return jsonify({"cards": []})

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"status": "ok"})

    return app


def main(argv: list[str]) -> int:
    import cds_service
    from cds_service import cli

    cds_service.create_app = create_baseline_app  # cmd_serve imports it from the package at call time
    return cli.main(["serve", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
