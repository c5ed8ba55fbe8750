"""Spine-order CDS Hooks service: ``create_app`` wires loaders and the HTTP blueprint, nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import native  # noqa: F401  first: whether the compiled modules or the sources run (build_native.py)

if TYPE_CHECKING:
    from flask import Flask

    from .settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the WSGI app. Start-up stops here with a clear message if any definition or data file is bad.

    Imports stay inside the function so that ``import cds_service.<step>`` (tests, tools) does not load Flask,
    the FHIR models and every data file.
    """
    from flask import Flask

    from . import web
    from .services import build_services
    from .settings import load_settings

    settings = settings or load_settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # keep CDS Hooks member order readable (summary, indicator, ...)
    app.extensions["cds"] = build_services(settings)
    web.register(app)
    return app
