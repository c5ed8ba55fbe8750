"""``GET /openapi.json``: the OpenAPI 3.0 description of every route, for integrators and API fuzzers.

The document is a file kept in the repository (``openapi.json``, checked against the Flask routes by
tests/unit/test_openapi.py), not generated at run time, so a route change that is not documented fails a
test instead of silently changing the published API. Read once, on first use.
"""

from __future__ import annotations

from functools import cache

from flask import Blueprint, Response

from ..datafiles import package_path

bp = Blueprint("openapi", __name__)


@cache
def document_bytes() -> bytes:
    return package_path("cds_hooks/openapi.json").read_bytes()


@bp.get("/openapi.json")
def openapi() -> Response:
    return Response(document_bytes(), mimetype="application/json")
