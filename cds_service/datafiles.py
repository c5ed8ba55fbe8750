"""One convention for every data file the service ships: read JSON from the package, check it against its
JSON Schema, compile each schema once (start-up) and reuse it for every request.

Paths are relative to the package (``clinical/topics/vcf/rules.json``, ``cds_hooks/schemas/...``) and read
with ``importlib.resources``, so the data travels inside the wheel like ``schema.sql`` beside ``db.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

PACKAGE = "cds_service"


def package_path(relative: str) -> Traversable:
    """A file or folder inside the installed package, e.g. ``clinical/topics``."""
    node = resources.files(PACKAGE)
    for part in relative.split("/"):
        node = node.joinpath(part)
    return node


def read_json(relative: str) -> Any:
    """A JSON data file inside the package; a syntax error names the file."""
    text = package_path(relative).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{relative} is not valid JSON: {exc}") from exc


def read_checked(relative: str, schema: str) -> Any:
    """A data file that must pass the JSON Schema at ``schema``; a violation names the file and the field."""
    data = read_json(relative)
    problem = first_violation(schema_validator(schema), data)
    if problem:
        raise ValueError(f"{relative} is invalid: {problem}")
    return data


@cache
def schema_validator(relative: str) -> Draft202012Validator:
    """The compiled JSON Schema at ``relative`` (checked to be a valid schema itself)."""
    schema = read_json(relative)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validator(name: str) -> Draft202012Validator:
    """A protocol schema under ``cds_hooks/schemas/`` by name, e.g. ``hook-request``."""
    return schema_validator(f"cds_hooks/schemas/{name}.schema.json")


def first_error(name: str, instance: Any, prefix: str = "") -> str | None:
    """The most useful violation of protocol schema ``name`` as 'path: message', or None when valid."""
    passes = quick_check(f"cds_hooks/schemas/{name}.schema.json")
    if passes is not None and passes(instance):
        return None
    return first_violation(validator(name), instance, prefix)


Check = Callable[[Any], bool]
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description"})
_TYPES: Mapping[str, Check] = {
    "object": lambda value: isinstance(value, dict), "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str), "boolean": lambda value: isinstance(value, bool),
    "integer": lambda value: not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, float) and value.is_integer())),
}


@cache
def quick_check(relative: str) -> Check | None:
    """A yes/no reading of the schema at ``relative``, for the hook request's envelope and context on every call:
    jsonschema takes ~0.05 ms there to find nothing. Only the keywords below are understood, with jsonschema's
    meaning (Draft 2020-12); a schema using any other gets None and is always left to jsonschema. Only a yes is
    used: on a no, jsonschema runs and names the violation."""
    return _compiled(read_json(relative))


def _compiled(schema: Any) -> Check | None:
    if not isinstance(schema, dict):
        return None
    checks = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        check = _KEYWORDS[keyword](value, schema) if keyword in _KEYWORDS else None
        if check is None:
            return None
        checks.append(check)
    return lambda instance: all(check(instance) for check in checks)


def _properties(value: Mapping[str, Any], _schema: Any) -> Check | None:
    members = {name: _compiled(sub) for name, sub in value.items()}
    if any(check is None for check in members.values()):
        return None
    return lambda instance: not isinstance(instance, dict) or all(
        check(instance[name]) for name, check in members.items() if name in instance)  # type: ignore[misc]


def _items(value: Any, schema: Mapping[str, Any]) -> Check | None:
    each = None if "prefixItems" in schema else _compiled(value)
    if each is None:
        return None
    return lambda instance: not isinstance(instance, list) or all(map(each, instance))


def _pattern(value: str, _schema: Any) -> Check:
    search = re.compile(value).search
    return lambda instance: not isinstance(instance, str) or search(instance) is not None


def _type(value: Any, _schema: Any) -> Check | None:
    return _TYPES.get(value) if isinstance(value, str) else None


def _required(value: list[str], _schema: Any) -> Check:
    return lambda instance: not isinstance(instance, dict) or all(name in instance for name in value)


def _dependent_required(value: Mapping[str, list[str]], _schema: Any) -> Check:
    return lambda instance: not isinstance(instance, dict) or all(
        needed in instance for name, needs in value.items() if name in instance for needed in needs)


def _min_items(value: int, _schema: Any) -> Check:
    return lambda instance: not isinstance(instance, list) or len(instance) >= value


def _min_length(value: int, _schema: Any) -> Check:
    return lambda instance: not isinstance(instance, str) or len(instance) >= value


def _max_length(value: int, _schema: Any) -> Check:
    return lambda instance: not isinstance(instance, str) or len(instance) <= value


def _const(value: Any, _schema: Any) -> Check | None:
    if not isinstance(value, str):
        return None
    return lambda instance: isinstance(instance, str) and instance == value


# One function per keyword, each returning a check of one level (the compiled build takes no lambda in a lambda).
_KEYWORDS: Mapping[str, Callable[[Any, Any], Check | None]] = {
    "type": _type, "required": _required, "dependentRequired": _dependent_required, "properties": _properties,
    "items": _items, "minItems": _min_items, "minLength": _min_length, "maxLength": _max_length,
    "pattern": _pattern, "const": _const,
}


def first_violation(checker: Draft202012Validator, instance: Any, prefix: str = "") -> str | None:
    errors = sorted(checker.iter_errors(instance), key=lambda e: (len(e.absolute_path), e.message))
    return describe(errors[0], prefix) if errors else None


def describe(error: ValidationError, prefix: str = "") -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    where = ".".join(p for p in (prefix, path) if p) or "(body)"
    message = error.message
    if len(message) > 300:  # a schema echoing a huge instance would bloat the answer
        message = message[:300] + "..."
    return f"{where}: {message}"


def check_provenance(node: Any, source_keys: set[str], where: str, statuses: frozenset[str]) -> None:
    """Every object that carries a ``source`` key must name a known source and a known status."""
    if isinstance(node, Mapping):
        if "source" in node and isinstance(node["source"], str):
            if node["source"] not in source_keys:
                raise ValueError(f"{where}: unknown source {node['source']!r}")
            if node.get("status") not in statuses:
                raise ValueError(f"{where}: entry with source {node['source']!r} has no valid status")
        for key, child in node.items():
            if key != "sources":
                check_provenance(child, source_keys, where, statuses)
    elif isinstance(node, list):
        for child in node:
            check_provenance(child, source_keys, where, statuses)
