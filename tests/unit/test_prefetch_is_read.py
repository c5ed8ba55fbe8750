"""Fetch only what a rule reads: every prefetch key and every code in hooks/*.json feeds some fact.

A template that asks the EHR for data no rule reads costs the EHR a query on every call and widens what
patient data we hold for nothing. So: each key's resource type is read by the clinical code, and each
``code=`` token of a template is a code of some concept in the clinical code lists.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from cds_service.cds_hooks.hook_definitions import load_hook_definitions
from cds_service.clinical.codes import system_name
from cds_service.datafiles import read_json
from cds_service.settings import PROJECT_ROOT

CLINICAL = Path(__file__).resolve().parents[2] / "cds_service" / "clinical"
DEFINITIONS = load_hook_definitions(PROJECT_ROOT / "hooks")


def _types_read() -> set[str]:
    """Resource types the clinical code asks PatientData or its index for (``data.of_type("Condition")``,
    ``of("Observation")``, ``current("Procedure")``, ``coded("Observation", ...)``, ``candidates("Condition", ..)``)."""
    pattern = re.compile(r"""\b(?:of_type|of|current|coded|candidates)\(\s*["']([A-Za-z]+)["']""")
    return {m for path in CLINICAL.rglob("*.py") for m in pattern.findall(path.read_text(encoding="utf-8"))}


def _codes_read() -> set[tuple[str, str]]:
    """(system name, code) of every code listed under a concept of the shared code lists."""
    concepts = read_json("clinical/shared/codes.json")["concepts"]
    return {(entry["system"], code) for concept in concepts.values() for entry in concept.get("codes", ())
            for code in entry.get("codes", ())}


# The context patient's own record is read by data gathering (it confirms the patient of the call and is a
# required prefetch key), not by a fact rule.
READ_BY_GATHERING = {"Patient"}
TEMPLATES = sorted((service_id, key, template) for service_id, d in DEFINITIONS.items()
                   for key, template in d.prefetch.items())


@pytest.mark.parametrize(("service_id", "key", "template"), TEMPLATES)
def test_every_prefetch_key_is_read_by_a_fact_rule(service_id: str, key: str, template: str) -> None:
    resource_type = urlsplit(template).path.split("/")[0]
    assert resource_type in _types_read() | READ_BY_GATHERING, f"{service_id}.{key}: no rule reads {resource_type}"


@pytest.mark.parametrize(("service_id", "key", "template"), TEMPLATES)
def test_every_code_a_template_asks_for_is_in_a_concept(service_id: str, key: str, template: str) -> None:
    tokens = [t for value in parse_qs(urlsplit(template).query).get("code", []) for t in value.split(",")]
    for token in tokens:
        system, _, code = token.rpartition("|")
        assert (system_name(system), code) in _codes_read(), f"{service_id}.{key}: no concept reads {token}"
