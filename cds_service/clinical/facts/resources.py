"""Read what the fact rules need from plain FHIR R4 resource dicts: codings, texts, statuses, dates, evidence.

Records are messy: statuses may be missing, dates may be partial ("2024-03"), and the same finding may be
coded or only written. These helpers turn each resource into uniform ``Evidence`` so the fact rules do
not repeat the per-resource-type details. Nothing here decides a fact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ..code_index import CodeIndex
from ..codes import JOIN, CodedKey, Concept, TextPatterns, TextResult, coded_key
from ..current import Current
from ..prefilter import LiteralScan, ScanMemo

if TYPE_CHECKING:
    from ..orders import DraftOrder

# Resource statuses that mean "this never happened / is not valid": never evidence.
_VOID_STATUS = frozenset({"entered-in-error", "cancelled", "not-done", "draft", "revoked", "unknown"})
_VOID_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_SUSPECTED_VERIFICATION = frozenset({"provisional", "differential", "unconfirmed"})
CURRENT_CLINICAL = frozenset({"active", "recurrence", "relapse"})
ACTIVE_MEDICATION = frozenset({"active", "on-hold", "intended"})  # MedicationRequest/Statement still in force


def as_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    """A resource or element as a dict: parsed JSON as it is, any other Mapping copied. The compiled build reads a
    ``dict`` with dict calls and a ``Mapping`` with a generic method call a read, several times the cost: the
    readers run for every resource of every call take their argument through this."""
    return value if isinstance(value, dict) else dict(value)


def reference(resource: Mapping[str, Any]) -> str:
    record = as_dict(resource)
    return f"{record.get('resourceType', 'Resource')}/{record.get('id', '?')}"


def is_mapping(value: Any) -> bool:
    """``isinstance(value, Mapping)`` with the JSON cases answered first (a dict is one; a missing member, None, and
    a str are not): the ABC check is an interpreted call (``abc.ABCMeta.__instancecheck__``), several times the
    cost, and a typical call asked it about None a hundred times."""
    if type(value) is dict:
        return True
    return value is not None and type(value) is not str and isinstance(value, Mapping)


def dict_or_none(value: Any) -> dict[str, Any] | None:
    """A JSON object as a dict (``as_dict``), or None for anything that is not a mapping."""
    return value if type(value) is dict else dict(value) if is_mapping(value) else None


def status_code(concept: Any) -> str | None:
    """The code of a CodeableConcept status (clinicalStatus, verificationStatus), lower-case."""
    element = dict_or_none(concept)
    if element is None:
        return None
    for coding in element.get("coding") or ():
        item = dict_or_none(coding)
        code = item.get("code") if item is not None else None
        if isinstance(code, str):
            return code.lower()
    return None


def clinical_status(resource: Mapping[str, Any]) -> str | None:
    return status_code(resource.get("clinicalStatus"))


def is_void(resource: Mapping[str, Any]) -> bool:
    """Refuted, entered-in-error, cancelled, not-done: such a resource never counts for anything."""
    record = as_dict(resource)
    if status_code(record.get("verificationStatus")) in _VOID_VERIFICATION:
        return True
    status = record.get("status")
    return isinstance(status, str) and status.lower() in _VOID_STATUS


def is_suspected(resource: Mapping[str, Any]) -> bool:
    return status_code(resource.get("verificationStatus")) in _SUSPECTED_VERIFICATION


def condition_is_current(condition: Mapping[str, Any]) -> bool:
    """Active/recurrence/relapse; a Condition without clinicalStatus is current unless it has an abatement.

    FHIR R4 Condition con-4: an abated condition must be inactive, resolved or remission, so a missing status with
    no abatement is read as active (design choice; many EHR problem lists omit the status of open problems)."""
    status = clinical_status(condition)
    if status is None:
        return not any(key.startswith("abatement") for key in as_dict(condition))
    return status in CURRENT_CLINICAL


def is_current(resource: Mapping[str, Any]) -> bool:
    """A Condition counts as current by ``condition_is_current``; other types are not closed by a status."""
    if as_dict(resource).get("resourceType") == "Condition":
        return condition_is_current(resource)
    return True


def reason_resources(orders: Iterable[DraftOrder]) -> list[tuple[Mapping[str, Any], str]]:
    """Each reasonCode Coding of the draft orders as a stand-in resource, with the reference to cite for it:
    what the ordering clinician states counts as evidence, like a Condition."""
    return [({"resourceType": "ServiceRequest", "code": {"coding": [dict(coding)]}}, f"{order.reference} (reasonCode)")
            for order in orders for coding in order.reason_codes]


def parse_date(value: Any) -> date | None:
    """The calendar date of a FHIR date/dateTime; partial dates take their first day (2024-03 -> 2024-03-01)."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    parts = value[:10].split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else 1
        day = int(parts[2]) if len(parts) > 2 else 1
        return date(year, month, day)
    except ValueError:
        return None


def onset_date(resource: Mapping[str, Any]) -> date | None:
    """When a finding began: onset, else effective/performed/authored time, else when it was recorded."""
    for key in ("onsetDateTime", "effectiveDateTime", "performedDateTime", "occurrenceDateTime", "issued",
                "authoredOn", "started"):
        found = parse_date(resource.get(key))
        if found:
            return found
    for key in ("onsetPeriod", "effectivePeriod", "performedPeriod"):
        period = resource.get(key)
        if isinstance(period, Mapping):
            found = parse_date(period.get("start")) or parse_date(period.get("end"))
            if found:
                return found
    return recorded_date(resource)


def explicit_onset(resource: Mapping[str, Any]) -> date | None:
    """The onset the record states (onsetDateTime, onsetPeriod.start), never a recorded date."""
    period = resource.get("onsetPeriod")
    return parse_date(resource.get("onsetDateTime")) or (
        parse_date(period.get("start")) if isinstance(period, Mapping) else None)


def recorded_date(resource: Mapping[str, Any]) -> date | None:
    return parse_date(resource.get("recordedDate")) or parse_date(resource.get("dateAsserted"))


def days_before(now: datetime, when: date | None) -> int | None:
    return None if when is None else (now.date() - when).days


def _concepts(value: Any) -> Iterator[Mapping[str, Any]]:
    if is_mapping(value):
        yield value
    elif isinstance(value, list):
        yield from (v for v in value if is_mapping(v))


# Where each resource type keeps its coded meaning and its free text.
_CODED_FIELDS = {
    "Condition": ("code",), "Observation": ("code", "valueCodeableConcept"), "Procedure": ("code",),
    "DiagnosticReport": ("code", "conclusionCode"), "ImagingStudy": ("procedureCode",),
    "MedicationRequest": ("medicationCodeableConcept",), "MedicationStatement": ("medicationCodeableConcept",),
    "Medication": ("code",),
}
_TEXT_FIELDS = ("conclusion", "valueString", "description")
_CODE = ("code",)


def _read(resource: Mapping[str, Any]) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The codings of a resource's coded fields, and its free text: CodeableConcept.text, coding displays,
    conclusion, notes (one pass over the coded fields for both). Run once per resource of every call, so
    written without generators, on dicts (``as_dict``)."""
    record = as_dict(resource)
    codings: list[dict[str, Any]] = []
    texts: list[str] = []
    kind = record.get("resourceType")
    for field in _CODED_FIELDS.get(kind, _CODE) if isinstance(kind, str) else _CODE:
        value = record.get(field)
        for concept in (value,) if type(value) is dict else _concepts(value):
            element = as_dict(concept)
            text = element.get("text")
            if isinstance(text, str):
                texts.append(text)
            for coding in element.get("coding") or ():
                if (coded := dict_or_none(coding)) is not None:
                    codings.append(coded)
    for coding in codings:
        display = coding.get("display")
        if isinstance(display, str):
            texts.append(display)
    for name in _TEXT_FIELDS:
        value = record.get(name)
        if isinstance(value, str):
            texts.append(value)
    note = record.get("note")
    if note is not None:
        for item in _concepts(note):
            text = as_dict(item).get("text")
            if isinstance(text, str):
                texts.append(text)
    return codings, tuple(texts)


class ResourceView(NamedTuple):
    """What the fact rules read from one resource, computed once per extraction instead of once per concept.
    A named tuple: built for every resource of every call, and a frozen dataclass costs several times more."""

    resource: Mapping[str, Any]  # held so its id() stays unique while the view is cached
    reference: str
    void: bool
    keys: tuple[CodedKey | None, ...]  # the resource's codings as the code lists compare them (codes.coded_key)
    texts: tuple[str, ...]


def _build_view(resource: Mapping[str, Any]) -> ResourceView:
    resource_codings, resource_texts = _read(resource)
    return ResourceView(resource, reference(resource), is_void(resource),
                        tuple(coded_key(c) for c in resource_codings), resource_texts)


class ExtractionViews:
    """One call's resource views (keyed by id(resource)) and which of their texts are worth a text search.

    The facts of a call are extracted as they are asked for (``facts/demand.py``), so the views live as long as
    the call's facts and are made current (``active``) around each fact rule: nothing is shared between calls
    or threads, and no patient data outlives the request.

    ``screen`` joins the phrases of every concept and drug the extraction searches (``FactRules.text_screen``):
    a text its prefilter rejects is not searched per concept, since no narrower pattern can match it."""

    def __init__(self, screen: TextPatterns, code_index: CodeIndex | None = None,
                 past_deadline: Callable[[], bool] | None = None, literal_scan: LiteralScan | None = None) -> None:
        self.screen = screen
        self.code_index = code_index  # the rules' code lists inverted (``FactRules.code_index``)
        self.scans = ScanMemo(literal_scan) if literal_scan is not None else None  # (``FactRules.literal_scan``)
        self.past_deadline = past_deadline  # the caller's clock, asked while the record is indexed
        self.views: dict[int, ResourceView] = {}
        self.searchable_texts: dict[int, tuple[str, ...]] = {}
        self.occurs: dict[str, bool] = {}  # the screen's verdict per distinct text (``TextPatterns.may_occur``)
        self.memo: dict[Any, Any] = {}  # other per-extraction results (``index.record_index``)

    def active(self) -> Current:
        """A with-block in which this extraction (and its literal scans) is the one the fact rules read."""
        return Current(_EXTRACTION, self, self.scans.active() if self.scans is not None else None)

    def view(self, resource: Mapping[str, Any]) -> ResourceView:
        found = self.views.get(id(resource))
        if found is None:
            found = self.views[id(resource)] = _build_view(resource)
        return found

    def searchable(self, seen: ResourceView) -> tuple[str, ...]:
        """The view's texts in which some fact phrase occurs (asked only when a text search is due)."""
        found = self.searchable_texts.get(id(seen.resource))
        if found is None:
            occurs = self.occurs
            for text in seen.texts:
                if text not in occurs:
                    occurs[text] = self.screen.may_occur(text)
            found = self.searchable_texts[id(seen.resource)] = tuple(t for t in seen.texts if occurs[t])
        return found


# The extraction whose fact rule is running in this context (thread); None outside one.
_EXTRACTION: ContextVar[ExtractionViews | None] = ContextVar("fact_resource_views", default=None)


def active_extraction() -> ExtractionViews | None:
    """The ``ExtractionViews`` whose fact rule is running (None outside one)."""
    return _EXTRACTION.get()


def view(resource: Mapping[str, Any]) -> ResourceView:
    """The resource's view: cached while an ``ExtractionViews`` is active, built afresh outside one."""
    extraction = _EXTRACTION.get()
    return extraction.view(resource) if extraction else _build_view(resource)


def searchable(seen: ResourceView) -> tuple[str, ...]:
    """The texts of a view a phrase search can match: screened while an ``ExtractionViews`` is active, all of
    them outside one."""
    extraction = _EXTRACTION.get()
    return extraction.searchable(seen) if extraction else seen.texts


class Evidence(NamedTuple):
    """One resource that supports (or, when negated, explicitly denies) a concept. A named tuple, like
    ``ResourceView`` and ``Found``: one is built for every match of every call."""

    resource: Mapping[str, Any]
    source: str  # "Condition/abc" or "ServiceRequest/x (reasonCode)"
    confidence: Literal["coded", "text"]
    code: str | None  # the matched code, when coded
    result: TextResult  # "positive" or "negated"
    text: str = ""  # the text that matched (only used to read levels), never copied into output


def text_hits(patterns: TextPatterns, texts: tuple[str, ...]) -> tuple[tuple[TextResult, str], ...]:
    """What a resource's texts say of a concept: each hit with its text, up to the first positive one. Texts
    are tested together first (``TextPatterns.may_match_joined``): most resources name no concept at all."""
    hits: list[tuple[TextResult, str]] = []
    if len(texts) > 1 and not patterns.may_match_joined(JOIN.join(texts)):
        return ()
    for text in texts:
        result = patterns.search(text)
        if result:
            hits.append((result, text))
            if result == "positive":
                break
    return tuple(hits)


def find(resources: Iterable[Mapping[str, Any]], concept: Concept) -> list[Evidence]:
    """Coded matches first; a resource without a coded match is searched in its free text."""
    found: list[Evidence] = []
    extraction = _EXTRACTION.get()
    for resource in resources:
        seen = extraction.view(resource) if extraction else _build_view(resource)
        if seen.void:
            continue
        code = concept.match_keys(seen.keys)
        if code:
            found.append(Evidence(resource, seen.reference, "coded", code, "positive", " ".join(seen.texts)))
            continue
        texts = extraction.searchable(seen) if extraction else seen.texts
        found.extend(Evidence(resource, seen.reference, "text", None, result, text)
                     for result, text in text_hits(concept.text, texts))
    return found


def positives(evidence: Iterable[Evidence]) -> list[Evidence]:
    return [e for e in evidence if e.result == "positive"]


def best_confidence(evidence: Iterable[Evidence]) -> Literal["coded", "text"]:
    return "coded" if any(e.confidence == "coded" for e in evidence) else "text"


def sources(evidence: Iterable[Evidence]) -> tuple[str, ...]:
    """Unique sources in first-seen order."""
    return tuple(dict.fromkeys(e.source for e in evidence))


class Found(NamedTuple):
    """A fact value with the evidence behind it, before it becomes a ``facts.Fact``."""

    value: Any
    evidence: tuple[Evidence, ...]
    confidence: Literal["coded", "text"] | None = None  # None: taken from the evidence
