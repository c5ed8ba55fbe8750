"""Step 3 of the request path: recognise the draft orders that are spine imaging or VCF treatment.

Input: the validated ``HookRequest`` (its raw ``draft_entries``) and the order catalogue (data under
``clinical/shared/``). Output: ``RecognisedOrders``. Entries are parsed one at a time with the R4B
ServiceRequest model, because real clients send Bundles without ``type`` and mixed, partly invalid
entries (see shared/external/README.md). Parsing is tolerant: only what recognition and rating read must be
valid (``code``, ``subject``, ``status``, ``intent``; ``reasonCode`` is used when valid, dropped otherwise), so an
``authoredOn`` without a timezone, an unknown element or an extension without ``url`` becomes a note, not a
silently unrated order. An entry whose needed fields are invalid is skipped and noted, never fatal; when its
raw codes or text still say it is a spine/VCF order it is returned as ``unreadable``, and gets a card saying
it could not be checked (cards/unreadable.py), never silence.
On order-select only the ``selections`` are rated; on order-sign every draft order.
Codes decide first; display/text patterns are the last resort and mark the order ``recognised_by="text"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from fhir.resources.R4B.servicerequest import ServiceRequest
from jsonschema import Draft202012Validator

from ..cds_hooks.validate import HookRequest
from ..datafiles import describe, read_json
from .order_parsing import parse_tolerantly

OrderKind = Literal["imaging", "treatment"]

# Regex features that can make matching super-linear: a quantified group, ".*"/".+", back-references.
_UNSAFE_REGEX = re.compile(r"\)[*+{]|\.[*+]|\\[1-9]")


@dataclass(frozen=True)
class DraftOrder:
    """One draft ServiceRequest mapped to a criteria procedure key (e.g. ``mri-spine-without-contrast``)."""

    reference: str  # "ServiceRequest/<id>", exactly as sent
    resource: Mapping[str, Any]  # the ServiceRequest as sent; update actions start from it
    procedure: str  # criteria procedure key, shared by the order catalogue and the criteria packs
    kind: OrderKind
    display: str  # what was ordered, for card text
    recognised_by: Literal["code", "text"]  # text-only orders get a card but no rating written onto them
    matched_code: Mapping[str, str] | None  # {"system", "code", "display"} that matched, if any
    reason_codes: tuple[Mapping[str, Any], ...]  # every Coding under reasonCode (for VCF-reason facts)
    requires_fracture_context: bool  # whole-body studies count only with a fracture fact or VCF reason
    region: str | None = None  # "cervical" | "thoracic" | "lumbar" | ... when the code says


@dataclass(frozen=True)
class SkippedEntry:
    index: int
    resource_type: str | None
    reason: str  # no patient data in it


@dataclass(frozen=True)
class UnreadableOrder:
    """A draft order that is clearly spine/VCF by its raw code or text, but whose needed fields are invalid."""

    reference: str
    display: str
    field: str  # the first invalid field, e.g. "code.coding.0.code" (a path, never a value)


@dataclass(frozen=True)
class RecognisedOrders:
    orders: tuple[DraftOrder, ...]
    not_relevant: tuple[str, ...]  # references of parsed orders that are not spine/VCF orders
    skipped: tuple[SkippedEntry, ...]  # also holds the notes on orders read tolerantly
    unreadable: tuple[UnreadableOrder, ...] = ()
    missing_selections: int = 0  # order-select selections that name no ServiceRequest in draftOrders


class InvalidCatalogue(ValueError):
    """``clinical/shared/orders.json`` breaks its schema or a consistency rule: start-up stops."""


@dataclass(frozen=True)
class CatalogueEntry:
    """One order code (or one code of a CPT range) and the procedure key it stands for."""

    system: str
    code: str
    procedure: str
    kind: OrderKind
    region: str | None
    display: str  # our short display, used when suggesting this code
    requires_fracture_context: bool
    source: Mapping[str, Any]
    status: str  # seen | secondary | unconfirmed
    # The procedure the order stands for instead when its code text or display matches one of these patterns
    # (CPT 78815 codes PET/CT of an extent, not its tracer: "PSMA PET/CT" is not the FDG row); None: no such text.
    unless_text: tuple[tuple[re.Pattern[str], ...], str] | None = None

    def procedure_for(self, texts: list[str], limit: int) -> str:
        """The procedure this code stands for in an order with these texts (each cut at ``limit``)."""
        if self.unless_text is not None:
            patterns, otherwise = self.unless_text
            if any(p.search(normal) for normal in (_normalise(t, limit) for t in texts) for p in patterns):
                return otherwise
        return self.procedure


@dataclass(frozen=True)
class TextRule:
    """Last-resort recognition: every ``all_of`` pattern and no ``none_of`` pattern matches the text."""

    procedure: str
    kind: OrderKind
    all_of: tuple[re.Pattern[str], ...]
    none_of: tuple[re.Pattern[str], ...]
    requires_fracture_context: bool
    source: Mapping[str, Any]
    status: str

    def matches(self, text: str) -> bool:
        return all(p.search(text) for p in self.all_of) and not any(p.search(text) for p in self.none_of)


@dataclass(frozen=True)
class OrderCatalogue:
    codes: Mapping[tuple[str, str], CatalogueEntry]  # (system, code) -> entry
    preferred: Mapping[tuple[str, str | None], CatalogueEntry]  # (procedure, region) -> code to suggest
    aliases: Mapping[str, str]  # e.g. Epic's urn:oid: systems -> canonical URI
    text_rules: tuple[TextRule, ...]  # first match wins
    text_regions: tuple[tuple[str, re.Pattern[str]], ...]
    text_max_chars: int  # longer texts are cut before matching, bounding the regex work

    def lookup(self, system: str | None, code: str | None) -> CatalogueEntry | None:
        if not system or not code:
            return None
        return self.codes.get((self.aliases.get(system, system), code))

    def preferred_code(self, procedure: str, region: str | None) -> dict[str, str] | None:
        """The code to suggest for ``procedure`` (in ``region`` when given), or None if none is catalogued."""
        entry = self.preferred.get((procedure, region)) or self.preferred.get((procedure, None))
        if entry is None:
            return None
        return {"system": entry.system, "code": entry.code, "display": entry.display}

    def match_text(self, text: str) -> TextRule | None:
        normal = _normalise(text, self.text_max_chars)
        return next((rule for rule in self.text_rules if rule.matches(normal)), None)

    def text_region(self, text: str) -> str | None:
        """The one region a text names; None when it names none or several."""
        normal = _normalise(text, self.text_max_chars)
        found = {region for region, pattern in self.text_regions if pattern.search(normal)}
        return found.pop() if len(found) == 1 else None


def _normalise(text: str, limit: int) -> str:
    return " ".join(text[: limit * 2].split())[:limit].casefold()


@cache
def load_order_catalogue() -> OrderCatalogue:
    """The catalogue shipped in ``clinical/shared/orders.json``, validated once per process."""
    return build_catalogue(read_json("clinical/shared/orders.json"), read_json("clinical/schemas/orders.schema.json"))


def build_catalogue(data: Any, schema: Mapping[str, Any]) -> OrderCatalogue:
    """Validate a parsed catalogue and index it; ``InvalidCatalogue`` names the first problem."""
    Draft202012Validator.check_schema(schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: (len(e.absolute_path), e.message))
    if errors:
        raise InvalidCatalogue(f"order catalogue is invalid: {describe(errors[0])}")
    sets = {name: _compile(entry["pattern"]) for name, entry in data.get("text_sets", {}).items()}
    entries = [_entry(raw, raw["code"], sets) for raw in data["codes"]]
    for raw in data["ranges"]:
        entries += [_entry(raw, str(n), sets) for n in range(int(raw["from"]), int(raw["to"]) + 1)]
    codes: dict[tuple[str, str], CatalogueEntry] = {}
    for entry in entries:
        if (entry.system, entry.code) in codes:
            raise InvalidCatalogue(f"order catalogue is invalid: {entry.system} {entry.code} is listed twice")
        codes[(entry.system, entry.code)] = entry
    preferred: dict[tuple[str, str | None], CatalogueEntry] = {}
    for raw in (r for r in data["codes"] if r["preferred"]):
        key = (raw["procedure"], raw["region"])
        if key in preferred:
            raise InvalidCatalogue(f"order catalogue is invalid: two preferred codes for {key}")
        preferred[key] = codes[(raw["system"], raw["code"])]
    rules = tuple(
        TextRule(procedure=r["procedure"], kind=r["kind"], all_of=tuple(_compile(p) for p in r["all"]),
                 none_of=(*(_compile(p) for p in r["none"]), *_named(sets, r.get("none_sets", ()))),
                 requires_fracture_context=r["requires_fracture_context"], source=r["source"], status=r["status"])
        for r in data["text_rules"]
    )
    return OrderCatalogue(
        codes=codes, preferred=preferred, aliases={a["alias"]: a["system"] for a in data["system_aliases"]},
        text_rules=rules, text_regions=tuple((r["region"], _compile(r["pattern"])) for r in data["text_regions"]),
        text_max_chars=data["text_max_chars"],
    )


def _entry(raw: Mapping[str, Any], code: str, sets: Mapping[str, re.Pattern[str]]) -> CatalogueEntry:
    unless = raw.get("unless_text")
    return CatalogueEntry(system=raw["system"], code=code, procedure=raw["procedure"], kind=raw["kind"],
                          region=raw["region"], display=raw["display"],
                          requires_fracture_context=raw["requires_fracture_context"], source=raw["source"],
                          status=raw["status"],
                          unless_text=(_named(sets, unless["sets"]), unless["procedure"]) if unless else None)


def _named(sets: Mapping[str, re.Pattern[str]], names: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    """The catalogue's named text sets (``text_sets``), shared by text rules and codes."""
    unknown = [name for name in names if name not in sets]
    if unknown:
        raise InvalidCatalogue(f"order catalogue is invalid: unknown text set {unknown[0]!r}")
    return tuple(sets[name] for name in names)


def _compile(pattern: str) -> re.Pattern[str]:
    if _UNSAFE_REGEX.search(pattern):
        raise InvalidCatalogue(f"order catalogue is invalid: pattern {pattern!r} may backtrack (quantified group, "
                               "'.*'/'.+' or back-reference)")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise InvalidCatalogue(f"order catalogue is invalid: pattern {pattern!r}: {exc}") from exc


def recognise_orders(request: HookRequest, catalogue: OrderCatalogue) -> RecognisedOrders:
    """Map each (selected) draft ServiceRequest to a procedure key; other resource types are ignored."""
    orders: list[DraftOrder] = []
    not_relevant: list[str] = []
    skipped: list[SkippedEntry] = []
    sent = {f"ServiceRequest/{r.get('id')}" for r in request.draft_entries
            if isinstance(r, Mapping) and r.get("resourceType") == "ServiceRequest"}
    unreadable: list[UnreadableOrder] = []
    for index, resource in enumerate(request.draft_entries):
        if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
            skipped.append(SkippedEntry(index, None, "entry has no resource with a resourceType"))
            continue
        if resource["resourceType"] == "ProcedureRequest":
            skipped.append(SkippedEntry(index, "ProcedureRequest", "STU3 ProcedureRequest is not supported"))
        if resource["resourceType"] != "ServiceRequest":
            continue  # medication, nutrition and DSTU2 orders: not spine/VCF orders
        rid = resource.get("id")
        reference = f"ServiceRequest/{rid}" if isinstance(rid, str) and rid else None
        if request.selections is not None and reference not in request.selections:
            continue
        if reference is None:
            skipped.append(SkippedEntry(index, "ServiceRequest", "ServiceRequest has no id to refer to"))
            continue
        if not _about_patient(resource, request.patient_id):  # never rate or write back another patient's order
            skipped.append(SkippedEntry(index, "ServiceRequest", "subject is not the context patient"))
            continue
        parsed, problem, field = parse_tolerantly(resource)
        if problem:
            skipped.append(SkippedEntry(index, "ServiceRequest", problem))
        if parsed is None:
            unread = _unreadable(reference, resource, field, catalogue)
            if unread is not None:
                unreadable.append(unread)
            continue
        order = _recognise(reference, resource, parsed, catalogue)
        if order is None:
            not_relevant.append(reference)
        else:
            orders.append(order)
    missing = sum(1 for s in request.selections or () if s not in sent)
    return RecognisedOrders(tuple(orders), tuple(not_relevant), tuple(skipped), tuple(unreadable), missing)


def _about_patient(resource: Mapping[str, Any], patient_id: str) -> bool:
    """A draft order without a subject belongs to the call's patient; one with another subject does not."""
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, Mapping) else None
    if not isinstance(reference, str):
        return True
    return reference == f"Patient/{patient_id}" or reference.endswith(f"/Patient/{patient_id}")


def _unreadable(reference: str, resource: Mapping[str, Any], field: str,
                catalogue: OrderCatalogue) -> UnreadableOrder | None:
    """Whether the raw order still names a catalogued code or matches a text rule; read without the model."""
    code = resource.get("code")
    code = code if isinstance(code, Mapping) else {}
    codings = [c for c in code.get("coding", []) if isinstance(c, Mapping)] if isinstance(
        code.get("coding"), list) else []
    texts = [t for t in [code.get("text"), *(c.get("display") for c in codings)] if isinstance(t, str) and t]
    for coding in codings:
        system, value = coding.get("system"), coding.get("code")
        entry = catalogue.lookup(system, value) if isinstance(system, str) and isinstance(value, str) else None
        if entry is not None:
            return UnreadableOrder(reference, texts[0] if texts else entry.display, field)
    for text in texts:
        if catalogue.match_text(text) is not None:
            return UnreadableOrder(reference, text, field)
    return None


def _recognise(reference: str, resource: Mapping[str, Any], parsed: ServiceRequest,
               catalogue: OrderCatalogue) -> DraftOrder | None:
    codings = list(parsed.code.coding or []) if parsed.code else []
    code_text = parsed.code.text if parsed.code else None
    for coding in codings:
        entry = catalogue.lookup(coding.system, coding.code)
        if entry is not None:
            texts = [t for t in (code_text, coding.display) if t]
            region = entry.region or next(filter(None, map(catalogue.text_region, texts)), None)
            matched = {"system": entry.system, "code": entry.code, "display": coding.display or entry.display}
            procedure = entry.procedure_for(texts, catalogue.text_max_chars)
            return DraftOrder(
                reference=reference, resource=resource, procedure=procedure, kind=entry.kind,
                display=entry.display, recognised_by="code", matched_code=matched,
                reason_codes=_reason_codings(parsed), requires_fracture_context=entry.requires_fracture_context,
                region=region,
            )
    for text in (t for t in [code_text, *(c.display for c in codings)] if t):
        rule = catalogue.match_text(text)
        if rule is not None:
            return DraftOrder(
                reference=reference, resource=resource, procedure=rule.procedure, kind=rule.kind, display=text,
                recognised_by="text", matched_code=None, reason_codes=_reason_codings(parsed),
                requires_fracture_context=rule.requires_fracture_context, region=catalogue.text_region(text),
            )
    return None


def _reason_codings(parsed: ServiceRequest) -> tuple[Mapping[str, Any], ...]:
    """Every reason Coding as {"system", "code", "display"}; a concept's bare text becomes {"display": text}."""
    found: list[dict[str, Any]] = []
    for concept in parsed.reasonCode or []:
        codings = [
            {k: v for k, v in (("system", c.system), ("code", c.code), ("display", c.display)) if v}
            for c in concept.coding or []
        ]
        found += [c for c in codings if c]
        if concept.text and all(c.get("display") != concept.text for c in codings):
            found.append({"display": concept.text})
    return tuple(found)
