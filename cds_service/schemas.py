"""JSON Schema files kept in ``schemas/``, compiled once (start-up) and reused for every request."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError


@cache
def validator(name: str) -> Draft202012Validator:
    text = resources.files("cds_service").joinpath("schemas", f"{name}.schema.json").read_text()
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def first_error(name: str, instance: Any, prefix: str = "") -> str | None:
    """The most useful schema violation as 'path: message', or None when the instance is valid."""
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: (len(e.absolute_path), e.message))
    if not errors:
        return None
    return describe(errors[0], prefix)


def describe(error: ValidationError, prefix: str = "") -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    where = ".".join(p for p in (prefix, path) if p) or "(body)"
    message = error.message
    if len(message) > 300:  # a schema echoing a huge instance would bloat the answer
        message = message[:300] + "..."
    return f"{where}: {message}"
