"""The OpenAPI 3.0 description of every route (web.py serves it at ``GET /openapi.json``), for integrators.

The document is a file kept in the repository (``openapi.json``, checked against the Flask routes by
tests/unit/test_openapi.py), not generated at run time, so a route change that is not documented fails a
test instead of silently changing the published API. Read once, on first use.
"""

from __future__ import annotations

from functools import cache

from ..datafiles import package_path


@cache
def document_bytes() -> bytes:
    return package_path("cds_hooks/openapi.json").read_bytes()

