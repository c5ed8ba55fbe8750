"""Step 4 of the request path: gather the patient data the clinical logic needs.

Input: the ``HookRequest`` (its prefetch and fhirServer/fhirAuthorization), the service definition's
prefetch templates, and a ``FhirFetcher`` (``fhir/client.py``, the only module that talks HTTP to FHIR).
Output: ``PatientData``. CDS Hooks 2.0 prefetch semantics (#prefetch-template): a key sent with a
resource or Bundle is used as is; a key sent as ``null`` means the EHR has no data, so it is not queried;
a missing key is fetched, and so is a value that cannot be what the template asked for: a Bundle holding
only OperationOutcomes (the EHR's own prefetch failed, as Epic reports it), a non-resource such as a
string, or DSTU2 content (the sandbox's default server). Only cheap structural checks are made here
(thousands of resources arrive per call); facts.py reads fields defensively.
Raises ``DataUnavailable`` (412) when none of the required data can be obtained.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from ..cds_hooks.errors import DataUnavailable
from ..cds_hooks.hook_definitions import HookDefinition
from ..cds_hooks.validate import HookRequest
from ..waits import LET_OTHERS_RUN_EVERY, let_others_run
from .client import FetchResult, FhirFetcher, only_failing_outcomes
from .counts import over_count, page_count
from .patient_data import MissingData, Origin, PatientData
from .references import names_patient, other_patient
from .shape import malformed_field

# Resource types that exist only in DSTU2/STU3: their presence means the content is not R4.
_PRE_R4_TYPES = frozenset({"MedicationOrder", "DiagnosticOrder", "ProcedureRequest", "ReferralRequest",
                           "DeviceUseRequest", "Order", "OrderResponse"})
_TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")
_USER_TOKENS = {"userPractitionerId": "Practitioner", "userPractitionerRoleId": "PractitionerRole",
                "userPatientId": "Patient", "userRelatedPersonId": "RelatedPerson"}


def gather_fhir_data(request: HookRequest, definition: HookDefinition, fetcher: FhirFetcher,
                     budget: float) -> PatientData:
    """Prefetch first, then one parallel round of FHIR reads, within ``budget`` seconds, for every key still
    needed."""
    origin: dict[str, Origin] = {}
    found: dict[str, list[dict[str, Any]]] = {}
    missing: list[MissingData] = []
    to_fetch: dict[str, str] = {}  # key -> why the prefetch could not be used
    for key, template in definition.prefetch.items():
        if key not in request.prefetch:
            to_fetch[key] = "not prefetched"
            continue
        value = request.prefetch[key]
        if value is None:
            origin[key] = "none"
            continue
        value, cut = _cut_at_count(value, template)
        problem, kept, notes = _read_answer(value, template, request, "prefetch")
        if problem:
            to_fetch[key] = problem
            continue
        origin[key] = "prefetch"
        found[key] = kept
        missing.extend(MissingData(key, note) for note in (cut, *notes) if note)

    queries, unfillable = _queries(request, definition, to_fetch)
    for key, why in unfillable.items():
        origin[key] = "missing"
        missing.append(MissingData(key, why))
    if queries and not request.fhir_server:
        for key in queries:
            origin[key] = "missing"
            missing.append(MissingData(key, _joined(to_fetch[key], "no fhirServer in the request")))
    elif queries:
        results = fetcher.fetch_all(request.fhir_server or "", request.access_token, queries, budget)
        for key in queries:
            _take(key, results[key], definition, request, to_fetch[key], origin, found, missing)

    _raise_if_required_unavailable(definition, origin, missing)
    return PatientData(resources=_by_type(definition, found), origin=MappingProxyType(origin),
                       missing=tuple(missing))


def _take(key: str, result: FetchResult, definition: HookDefinition, request: HookRequest, prefetch_problem: str,
          origin: dict[str, Origin], found: dict[str, list[dict[str, Any]]], missing: list[MissingData]) -> None:
    """Record one fetch result: resources when usable, otherwise a reason the user can act on."""
    reason, kept, notes = (result.reason, [], []) if not result.ok else _read_answer(
        result.resource, definition.prefetch[key], request, "the FHIR server's answer", warnings_mean_empty=True)
    if reason:
        origin[key] = "missing"
        missing.append(MissingData(key, _joined(prefetch_problem, reason)))
        return
    origin[key] = "fetched"
    found[key] = kept
    missing.extend(MissingData(key, note) for note in notes)
    if not result.complete:
        missing.append(MissingData(key, f"incomplete: {result.reason}"))


def _read_answer(value: Any, template: str, request: HookRequest, source: str, *,
                 warnings_mean_empty: bool = False) -> tuple[str, list[dict[str, Any]], list[str]]:
    """One answer to a template, prefetched or fetched, read the same way: (why it is unusable or "", the
    context patient's resources of the template's type, one note per reason resources were dropped)."""
    problem = _unusable(value, source, warnings_mean_empty=warnings_mean_empty)
    if problem:
        return problem, [], []
    kept, notes = _keep(value, template, request.patient_id)
    if _is_read(template) and not kept:
        return f"{source} does not hold the context patient's resource", [], []
    return "", kept, notes


def _cut_at_count(value: Any, template: str) -> tuple[Any, str]:
    """A prefetch Bundle cut at its template's ``_count``, and a note naming the cut ("" when none was made).

    The template asks the EHR for at most that many; an EHR that sends more would stretch the call."""
    count = _template_count(template)
    entries = value.get("entry") if isinstance(value, dict) and value.get("resourceType") == "Bundle" else None
    if count is None or not isinstance(entries, list) or len(entries) <= count:
        return value, ""
    return {**value, "entry": entries[:count]}, f"prefetch: {over_count(len(entries), count, 'in the Bundle')}"


def _joined(prefetch_problem: str, fetch_problem: str) -> str:
    if prefetch_problem == "not prefetched":
        return fetch_problem
    return f"{prefetch_problem}; {fetch_problem}"


def _unusable(value: Any, source: str, *, warnings_mean_empty: bool = False) -> str:
    """Why a prefetch value (or a fetched answer) cannot stand for the template's answer; "" when it can.

    A prefetch Bundle holding only OperationOutcomes means the EHR's prefetch failed: fetch instead (issue
    rule). From the FHIR server itself, a search answered by warning-only outcomes (Epic's "no results") is
    an empty result, and only error/fatal outcomes mean the data could not be read.
    """
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return f"{source} is not a FHIR resource"
    kind = value["resourceType"]
    if kind == "OperationOutcome":
        return f"{source} is an OperationOutcome (the data could not be read)"
    if kind != "Bundle":
        return f"{source} holds pre-R4 (DSTU2/STU3) content" if _pre_r4(value) else ""
    entry = value.get("entry")
    if entry is not None and not isinstance(entry, list):
        return f"{source} is a Bundle whose entry is not a list"
    resources: list[dict[str, Any]] = [e["resource"] for e in entry or []
                                          if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    only_outcomes = bool(resources) and all(r.get("resourceType") == "OperationOutcome" for r in resources)
    if only_outcomes and (not warnings_mean_empty or only_failing_outcomes(value)):
        return f"{source} is a Bundle holding only an OperationOutcome (the data could not be read)"
    if any(_pre_r4(r) for r in resources):
        return f"{source} holds pre-R4 (DSTU2/STU3) content"
    return ""


def _pre_r4(resource: dict[str, Any]) -> bool:
    """Cheap DSTU2/STU3 tells: a pre-R4 resource type, or a DSTU2 Condition (``patient``, string status)."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        return False
    if kind in _PRE_R4_TYPES:
        return True
    return kind == "Condition" and ("patient" in resource or isinstance(resource.get("clinicalStatus"), str))


_template_count = cache(page_count)  # templates are few (the hook definitions'), calls many


@cache
def _resource_type(template: str) -> str:
    return re.split(r"[/?]", template, maxsplit=1)[0]


def _is_read(template: str) -> bool:
    """``Patient/{{context.patientId}}`` is a read: exactly one resource must answer it."""
    return "?" not in template


def _queries(request: HookRequest, definition: HookDefinition,
             keys: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Fill each template's tokens (URL-encoded); keys whose tokens have no value go to the second dict."""
    queries: dict[str, str] = {}
    unfillable: dict[str, str] = {}
    for key in keys:
        template = definition.prefetch[key]
        values = {name: _token_value(name, request) for name in _TOKEN.findall(template)}
        empty = sorted(name for name, value in values.items() if value is None)
        if empty:
            unfillable[key] = f"the request has no value for {', '.join(empty)}"
            continue
        queries[key] = _filled(template, values)
    return queries, unfillable


def _filled(template: str, values: Mapping[str, str | None]) -> str:
    return _TOKEN.sub(lambda match: values[match.group(1)] or "", template)


def _token_value(name: str, request: HookRequest) -> str | None:
    """A prefetch token's URL-encoded value (CDS Hooks 2.0 #prefetch-tokens), or None when absent."""
    user_type, _, user_id = request.user_id.partition("/")
    if name == "context.userId":  # already Type/id: keep the one slash, encode the parts
        return f"{quote(user_type, safe='')}/{quote(user_id, safe='')}" if user_id else None
    raw = {"context.patientId": request.patient_id, "context.encounterId": request.encounter_id}.get(name)
    if name in _USER_TOKENS:
        raw = user_id if user_type == _USER_TOKENS[name] else None
    if not raw or raw in {".", ".."}:
        return None
    return quote(raw, safe="")


def _keep(value: Mapping[str, Any], template: str, patient_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The resources of the asked-for type that belong to this patient, carry an id and are well formed, plus
    one note per reason for the ones dropped (docs/fhir-data.md, "What is discarded"): another patient's, of
    another type, malformed, without an id, without a subject outside a search for the context patient.

    A read (``Patient/{{context.patientId}}``) may come back without an id (the spec's own example); its
    identity is implied by the request, so it is kept. OperationOutcome entries (search warnings) are not
    counted. A resource with neither ``subject`` nor ``patient`` is taken as the context patient's only when
    the template searched for that patient (``patient=`` / ``subject={{context.patientId}}``).
    """
    resource_type = _resource_type(template)
    if value.get("resourceType") == "Bundle":
        candidates = [e.get("resource") if isinstance(e, dict) else None for e in value.get("entry") or []]
        need_id = True
    else:
        candidates, need_id = [value], False
    scoped = _patient_scoped(template)
    kept: list[dict[str, Any]] = []
    bad_fields: list[str] = []
    dropped: dict[str, int] = {}
    other_types: set[str] = set()
    for position, resource in enumerate(candidates, 1):
        if position % LET_OTHERS_RUN_EVERY == 0:
            let_others_run()
        if not isinstance(resource, dict):
            bad_fields.append("entry.resource")
            continue
        kind = resource.get("resourceType")
        if kind != resource_type:
            if kind != "OperationOutcome":
                dropped["type"] = dropped.get("type", 0) + 1
                other_types.add(kind if isinstance(kind, str) else "(none)")
            continue
        if need_id and not (isinstance(resource.get("id"), str) and resource["id"]):
            dropped["id"] = dropped.get("id", 0) + 1
            continue
        field = malformed_field(resource)
        if field:
            bad_fields.append(field)
            continue
        if other_patient(resource, patient_id):
            dropped["patient"] = dropped.get("patient", 0) + 1
            continue
        if kind != "Patient" and not scoped and not names_patient(resource):
            dropped["subject"] = dropped.get("subject", 0) + 1
            continue
        kept.append(resource)
    notes = []
    if bad_fields:
        fields = ", ".join(sorted(set(bad_fields))[:5])
        notes.append(f"{len(bad_fields)} malformed {resource_type} resource(s) ignored (wrong JSON type in: {fields})")
    if "patient" in dropped:
        notes.append(f"{dropped['patient']} {resource_type} resource(s) for another patient ignored")
    if "type" in dropped:
        notes.append(f"{dropped['type']} resource(s) of another type than {resource_type} ignored "
                     f"({', '.join(sorted(other_types)[:5])})")
    if "id" in dropped:
        notes.append(f"{dropped['id']} {resource_type} resource(s) without an id ignored")
    if "subject" in dropped:
        notes.append(f"{dropped['subject']} {resource_type} resource(s) without a subject ignored "
                     "(the search was not for the context patient)")
    return kept, notes


_PATIENT_SCOPED = re.compile(r"[?&](?:patient|subject)(?::Patient)?=(?:Patient/)?\{\{\s*context\.patientId\s*\}\}")


@cache
def _patient_scoped(template: str) -> bool:
    return bool(_PATIENT_SCOPED.search(template))


def _by_type(definition: HookDefinition,
             found: Mapping[str, list[dict[str, Any]]]) -> Mapping[str, tuple[Mapping[str, Any], ...]]:
    """Resources grouped by type, the first copy of each type/id winning (keys in definition order)."""
    seen: set[tuple[str, str]] = set()
    grouped: dict[str, list[dict[str, Any]]] = {}
    for key in definition.prefetch:
        for resource in found.get(key, ()):
            kind = resource["resourceType"]
            identity = (kind, str(resource.get("id", "")))
            if identity in seen:
                continue
            seen.add(identity)
            grouped.setdefault(kind, []).append(resource)
    return MappingProxyType({kind: tuple(items) for kind, items in grouped.items()})


def _raise_if_required_unavailable(definition: HookDefinition, origin: Mapping[str, Origin],
                                   missing: list[MissingData]) -> None:
    """412 only when every required key is missing; with some data the cards say what is missing."""
    required = definition.required_prefetch
    if not required or any(origin.get(key) != "missing" for key in required):
        return
    reasons = {m.key: m.reason for m in missing}
    detail = "; ".join(f"{key}: {reasons.get(key, 'unavailable')}" for key in required)
    raise DataUnavailable(f"required patient data could not be obtained ({detail})", field="prefetch")
