"""Clinical test scenarios under ``fhir_fixtures/``: materialise them, build hook calls, load them into FHIR.

Each scenario is two files: ``<name>.json``, a FHIR R4 transaction Bundle (PUT with fixed ids, so loading
twice is idempotent), and ``<name>.scenario.json``, its description, draft orders and anchor date. Dates in
both are written relative to the anchor; ``materialise`` moves every date by ``today - anchor`` so that a
"fracture 90 days ago" stays 90 days old whenever the tests or demo run (docs/fixtures.md).
The pure helpers build plain dicts; ``load_into`` is the only function here that does I/O over HTTP.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import requests

from ..cds_hooks.hook_definitions import HookDefinition, load_hook_definitions
from ..settings import PROJECT_ROOT, load_settings

FIXTURES_DIR = PROJECT_ROOT / "fhir_fixtures"
HOOKS = ("order-select", "order-sign")
# FHIR date, dateTime and instant with a full date; the time part is kept as written.
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$")
# Search parameters of the hook templates -> the R4 elements they read.
_TOKEN_ELEMENTS = {"code": "code", "category": "category", "status": "status", "clinical-status": "clinicalStatus"}
_SORT_ELEMENTS = {"date": ("effectiveDateTime", "effectivePeriod", "performedDateTime", "performedPeriod",
                           "recordedDate"),
                  "authoredon": ("authoredOn",), "started": ("started",), "issued": ("issued",)}


class FixtureError(ValueError):
    """A scenario is unknown or its files are inconsistent."""


class FixtureLoadError(RuntimeError):
    """A FHIR server refused a scenario; the message carries its OperationOutcome text."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    illustrates: str
    expected_outcome: str  # informative only: what the service should say, in words
    anchor_date: date
    today: date
    patient_id: str
    user_id: str  # "Practitioner/..." as sent in context.userId
    bundle: Mapping[str, Any]  # transaction Bundle, dates shifted
    draft_orders: tuple[Mapping[str, Any], ...]  # ServiceRequests, dates shifted
    selections: tuple[str, ...]  # "ServiceRequest/<id>" chosen on order-select

    @property
    def resources(self) -> list[Mapping[str, Any]]:
        return [entry["resource"] for entry in self.bundle["entry"]]

    @property
    def patient(self) -> Mapping[str, Any]:
        return next(r for r in self.resources if r["resourceType"] == "Patient")


@dataclass(frozen=True)
class LoadedScenario:
    name: str
    patient_id: str
    statuses: tuple[str, ...]  # transaction-response entry statuses, e.g. "201 Created", "200 OK"


def list_scenarios(directory: Path = FIXTURES_DIR) -> list[str]:
    """Names of every scenario that has both its Bundle and its scenario file."""
    names = sorted(p.name.removesuffix(".scenario.json") for p in directory.glob("*.scenario.json"))
    return [n for n in names if (directory / f"{n}.json").is_file()]


def shift_dates(value: Any, days: int) -> Any:
    """A deep copy with every full FHIR date/dateTime/instant string moved by ``days``.

    Matching on the value, not the element name, catches every date type in every resource
    (periods, abatement, dispense windows...) without a list of paths to keep up to date.
    """
    if isinstance(value, dict):
        return {k: shift_dates(v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [shift_dates(v, days) for v in value]
    if isinstance(value, str):
        match = _DATE.match(value)
        if match:
            moved = date.fromisoformat(match.group(1)) + timedelta(days=days)
            return moved.isoformat() + (match.group(2) or "")
    return value


def materialise(name: str, today: date, directory: Path = FIXTURES_DIR) -> Scenario:
    """Read a scenario and move its dates so that the anchor date becomes ``today``."""
    if name not in list_scenarios(directory):
        raise FixtureError(f"unknown scenario {name!r}; known: {', '.join(list_scenarios(directory))}")
    meta = json.loads((directory / f"{name}.scenario.json").read_text())
    bundle = json.loads((directory / f"{name}.json").read_text())
    anchor = date.fromisoformat(meta["anchor_date"])
    days = (today - anchor).days
    scenario = Scenario(
        name=name, description=meta["description"], illustrates=meta["illustrates"],
        expected_outcome=meta["expected_outcome"], anchor_date=anchor, today=today,
        patient_id=meta["patient_id"], user_id=meta["user_id"], bundle=shift_dates(bundle, days),
        draft_orders=tuple(shift_dates(meta["draft_orders"], days)), selections=tuple(meta["selections"]),
    )
    _check_consistent(scenario)
    return scenario


def _check_consistent(scenario: Scenario) -> None:
    """Catch hand-edit mistakes early: patient id, draft subjects and selections must agree."""
    if scenario.patient["id"] != scenario.patient_id:
        raise FixtureError(f"{scenario.name}: Bundle Patient is not {scenario.patient_id!r}")
    draft_refs = {f"ServiceRequest/{d['id']}" for d in scenario.draft_orders}
    for draft in scenario.draft_orders:
        if draft["subject"]["reference"] != f"Patient/{scenario.patient_id}":
            raise FixtureError(f"{scenario.name}: draft {draft['id']} is not about the scenario patient")
    if not scenario.selections or not set(scenario.selections) <= draft_refs:
        raise FixtureError(f"{scenario.name}: selections must name draft orders")


def _tokens(value: Any) -> set[tuple[str, str]]:
    """(system, code) pairs of a code, a Coding, a CodeableConcept or a list of them."""
    if isinstance(value, str):
        return {("", value)}
    if isinstance(value, list):
        return set().union(*(_tokens(v) for v in value)) if value else set()
    if isinstance(value, dict):
        codings = value.get("coding", [value] if "code" in value else [])
        return {(c.get("system", ""), c.get("code", "")) for c in codings}
    return set()


def _token_matches(resource: Mapping[str, Any], element: str, wanted: str) -> bool:
    """FHIR token search: comma means OR; ``system|code`` or a bare ``code``."""
    have = _tokens(resource.get(element))
    for option in wanted.split(","):
        system, bar, code = option.rpartition("|")
        if any(c == code and (not bar or s == system) for s, c in have):
            return True
    return False


def _sort_value(resource: Mapping[str, Any], parameter: str) -> str:
    for element in _SORT_ELEMENTS.get(parameter, ()):
        value = resource.get(element)
        if isinstance(value, dict):  # a Period
            value = value.get("start")
        if value:
            return value
    return ""


def search(resources: Iterable[Mapping[str, Any]], query: str, patient_id: str) -> dict[str, Any]:
    """Run a prefetch search such as ``Observation?patient=x&code=...&_sort=-date&_count=50`` in memory.

    Only what the hook templates use: the resource type, ``patient``, token parameters (``code``,
    ``category``, ``status``, ``clinical-status``), ``_sort`` and ``_count``; other parameters are ignored,
    as lenient servers do. Good enough to stand in for the EHR in tests and demos.
    """
    path, _, params = query.partition("?")
    resource_type = path.strip("/")
    matches = [r for r in resources if r["resourceType"] == resource_type and _about_patient(r, patient_id)]
    sort, count = "", None
    for name, value in parse_qsl(params, keep_blank_values=True):
        if name in _TOKEN_ELEMENTS:
            element = _TOKEN_ELEMENTS[name]
            if name == "code" and resource_type == "MedicationRequest":
                element = "medicationCodeableConcept"
            matches = [r for r in matches if _token_matches(r, element, value)]
        elif name == "_sort":
            sort = value
        elif name == "_count":
            count = int(value)
    for key in reversed([k for k in sort.split(",") if k]):
        matches.sort(key=lambda r, k=key: _sort_value(r, k.lstrip("-")), reverse=key.startswith("-"))
    bundle = searchset(matches[:count])
    bundle["total"] = len(matches)
    return bundle


def _about_patient(resource: Mapping[str, Any], patient_id: str) -> bool:
    reference = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    return reference == f"Patient/{patient_id}"


def searchset(resources: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A searchset Bundle as a FHIR server would return it (first page, every entry a match)."""
    entries = [{"resource": copy.deepcopy(dict(r)), "search": {"mode": "match"}} for r in resources]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def prefetch_for(scenario: Scenario, definition: HookDefinition) -> dict[str, Any]:
    """What an EHR would prefetch for each template of ``definition``: a read gives the resource,
    a search gives the searchset Bundle that ``search`` computes from the scenario's resources."""
    prefetch: dict[str, Any] = {}
    for key, template in definition.prefetch.items():
        query = template.replace("{{context.patientId}}", scenario.patient_id)
        path = query.partition("?")[0].strip("/")
        if "/" in path:
            resource_type, _, resource_id = path.partition("/")
            found = [r for r in scenario.resources
                     if r["resourceType"] == resource_type and r["id"] == resource_id]
            prefetch[key] = copy.deepcopy(dict(found[0])) if found else None
        else:
            prefetch[key] = search(scenario.resources, query, scenario.patient_id)
    return prefetch


def default_definition(hook: str) -> HookDefinition:
    """The service definition in the configured hooks directory that answers ``hook``."""
    for definition in load_hook_definitions(load_settings().hooks_dir).values():
        if definition.hook == hook:
            return definition
    raise FixtureError(f"no service definition answers {hook!r}")


def hook_request(scenario: Scenario, hook: str, *, with_prefetch: bool, fhir_server: str | None,
                 definition: HookDefinition | None = None) -> dict[str, Any]:
    """A complete CDS Hooks 2.0 request body for ``hook``, shaped like a real order-entry client's.

    ``draftOrders`` is a ``collection`` Bundle of the scenario's draft ServiceRequests; order-select adds
    ``selections``. Without prefetch the service must query ``fhir_server`` itself.
    """
    if hook not in HOOKS:
        raise FixtureError(f"hook must be one of {HOOKS}, not {hook!r}")
    context: dict[str, Any] = {"userId": scenario.user_id, "patientId": scenario.patient_id}
    if hook == "order-select":
        context["selections"] = list(scenario.selections)
    context["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                              "entry": [{"resource": copy.deepcopy(dict(d))} for d in scenario.draft_orders]}
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4())}
    if fhir_server:
        body["fhirServer"] = fhir_server
    body["context"] = context
    if with_prefetch:
        body["prefetch"] = prefetch_for(scenario, definition or default_definition(hook))
    return body


def _outcome_text(response: requests.Response) -> str:
    """The OperationOutcome issues of an error response, or its raw text when it has none."""
    try:
        outcome = response.json()
    except ValueError:
        return response.text[:500]
    issues = outcome.get("issue", []) if isinstance(outcome, dict) else []
    texts = [i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code", "") for i in issues]
    return "; ".join(t for t in texts if t) or response.text[:500]


def load_into(base_url: str, names: Iterable[str], *, today: date | None = None,
              session: requests.Session | None = None, timeout: float = 30.0) -> list[LoadedScenario]:
    """POST each scenario's transaction Bundle to ``base_url``; stop at the first refusal.

    Dates are shifted to ``today`` (default: the real today) so the server holds current-looking data.
    """
    http = session or requests.Session()
    when = today or date.today()
    loaded: list[LoadedScenario] = []
    for name in names:
        scenario = materialise(name, when)
        try:
            response = http.post(base_url.rstrip("/"), json=scenario.bundle, timeout=timeout,
                                 headers={"Content-Type": "application/fhir+json",
                                          "Accept": "application/fhir+json"})
        except requests.RequestException as exc:
            raise FixtureLoadError(f"{name}: cannot reach {base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise FixtureLoadError(f"{name}: {base_url} answered {response.status_code}: {_outcome_text(response)}")
        statuses = tuple(e.get("response", {}).get("status", "") for e in response.json().get("entry", []))
        loaded.append(LoadedScenario(name=name, patient_id=scenario.patient_id, statuses=statuses))
    return loaded
