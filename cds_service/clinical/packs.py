"""Load the ACR criteria packs under ``clinical/topics/`` at start-up.

A pack is data: variants x procedure rows (category, 1-9 score, evidence, radiation level, comment), each
row with its source and status. Every pack must pass ``pack.schema.json`` plus the consistency checks below
(ids match numbers, one row per procedure and region, scores inside their category's band); a pack that fails raises
``InvalidPack``, so a bad file stops start-up instead of producing wrong ratings. Loaded packs are frozen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any, Literal

from jsonschema import Draft202012Validator

from ..datafiles import describe, package_path, read_json, schema_validator

PACK_SCHEMA_REF = "../../schemas/pack.schema.json"  # how a pack file declares itself (its "$schema" member)


Category = Literal["usually-appropriate", "may-be-appropriate", "usually-not-appropriate"]


class UnknownPack(LookupError):
    """The configured pack name is not one of the packs shipped under ``clinical/topics/``."""

    def __init__(self, name: str, valid: tuple[str, ...]) -> None:
        super().__init__(f"unknown criteria pack {name!r}; valid packs: {', '.join(valid)}")
        self.name = name
        self.valid = valid


class InvalidPack(ValueError):
    """A pack file that breaks the schema or the consistency rules; the message names the field."""


@dataclass(frozen=True)
class ProcedureRow:
    """One procedure of one variant, as the ACR tables rate it."""

    procedure: str  # procedure key shared with the order catalogue, e.g. "vertebral-augmentation"
    name: str  # the ACR procedure name, for card text
    category: Category
    score: int | None  # ACR 1-9; None where the source has categories only (2018)
    disagreement: bool  # the ACR "(Disagreement)" flag on the category
    strength_of_evidence: str | None
    radiation_level: str | None  # adult relative radiation level; None for treatment rows
    comment: str | None  # paraphrased narrative comment, where the source has one
    source: Mapping[str, Any]  # {"citation", "url", optional "corroborated_by"}: plain JSON, serialisable
    status: str  # seen | secondary | unconfirmed
    orderable: bool  # False for "medical management": context only, never a draft order
    kind: str | None = None  # imaging | treatment; always set in loaded packs (2018 V1 mixes both)
    region: str | None = None  # the area the row is for, where the ACR names one (e.g. "whole-body", "neck")


@dataclass(frozen=True)
class Variant:
    id: str  # "v1".."v9": fixed, the variant decision rules refer to them
    number: int
    title: str  # exact ACR title
    kind: str  # imaging | treatment | mixed (2018 V1 has both kinds of rows)
    source: Mapping[str, Any]
    rows: Mapping[str, ProcedureRow]  # by procedure key, in source order (the first row of a procedure)
    status: str = "unconfirmed"  # provenance of the title; loaded packs always set it
    regional: Mapping[tuple[str, str | None], ProcedureRow] = field(default_factory=dict)  # (procedure, region) -> row

    # ``regional`` grouped by procedure, once per variant: ``row_for`` runs a few dozen times a call. Set in
    # ``__post_init__``: the compiled build (mypyc) would recompute a cached property on every access.
    _rows_by_procedure: Mapping[str, tuple[ProcedureRow, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[ProcedureRow]] = {}
        for (procedure, _), row in self.regional.items():
            grouped.setdefault(procedure, []).append(row)
        object.__setattr__(self, "_rows_by_procedure", {p: tuple(rows) for p, rows in grouped.items()})

    def row_for(self, procedure: str, region: str | None) -> ProcedureRow | None:
        """The row rating ``procedure`` for an order in ``region``: a procedure with one row has that row;
        with several (one per region), the row of the order's region, else the row without a region; None
        when the variant does not rate it there (no criteria apply)."""
        if not self.regional:  # a variant built by hand (tests) with rows only
            return self.rows.get(procedure)
        matching = self._rows_by_procedure.get(procedure, ())
        if len(matching) <= 1:
            return matching[0] if matching else None
        return self.regional.get((procedure, region)) or self.regional.get((procedure, None))


@dataclass(frozen=True)
class CriteriaPack:
    id: str
    title: str
    citation: str
    url: str  # ACR topic 171 narrative
    topic: str  # stable code for card.source.topic, e.g. "acr-vcf-2022"
    variants: Mapping[str, Variant]
    licence: str = ""  # ACR content is the ACR's: cited, not relicensed


def available_packs() -> tuple[str, ...]:
    """Names of the pack files shipped under ``clinical/topics/`` (files that declare the pack schema)."""
    return _pack_names()


def load_pack(name: str) -> CriteriaPack:
    """The named pack, validated and frozen; loaded once per process."""
    valid = _pack_names()
    if name not in valid:
        raise UnknownPack(name, valid)
    return _load(name)


def build_pack(data: Any, name: str) -> CriteriaPack:
    """Validate one parsed pack file and freeze it. ``InvalidPack`` names the first problem found."""
    errors = sorted(_schema().iter_errors(data), key=lambda e: (len(e.absolute_path), e.message))
    if errors:
        raise InvalidPack(f"criteria pack {name!r} is invalid: {describe(errors[0])}")
    if data["id"] != name:
        raise InvalidPack(f"criteria pack {name!r} is invalid: id: {data['id']!r} does not match the file name")
    bands = {category: tuple(band) for category, band in data.get("score_bands", {}).get("bands", {}).items()}
    variants = {vid: _variant(name, vid, raw, bands) for vid, raw in data["variants"].items()}
    return CriteriaPack(
        id=data["id"], title=data["title"], citation=data["citation"], url=data["url"], topic=data["topic"],
        variants=MappingProxyType(variants), licence=data["licence"],
    )


def _variant(pack: str, vid: str, raw: Mapping[str, Any], bands: Mapping[str, tuple[int, ...]]) -> Variant:
    where = f"criteria pack {pack!r} is invalid: variants.{vid}"
    if raw["number"] != int(vid[1:]):
        raise InvalidPack(f"{where}.number: {raw['number']} does not match the id")
    rows: dict[str, ProcedureRow] = {}
    regional: dict[tuple[str, str | None], ProcedureRow] = {}
    for index, row in enumerate(raw["rows"]):
        key = (row["procedure"], row.get("region"))
        if key in regional:
            raise InvalidPack(f"{where}.rows.{index}: procedure {row['procedure']!r} is listed twice"
                              + (f" for region {key[1]!r}" if key[1] else ""))
        band = bands.get(row["category"])
        if band and row["score"] is not None and not band[0] <= row["score"] <= band[1]:
            raise InvalidPack(f"{where}.rows.{index}.score: {row['score']} is outside the {row['category']} "
                              f"band {band[0]}-{band[1]}")
        regional[key] = ProcedureRow(
            procedure=row["procedure"], name=row["name"], category=row["category"], score=row["score"],
            disagreement=row["disagreement"], strength_of_evidence=row["strength_of_evidence"],
            radiation_level=row["radiation_level"], comment=row["comment"], source=row["source"],
            status=row["status"], orderable=row["orderable"], kind=row["kind"], region=key[1],
        )
        rows.setdefault(row["procedure"], regional[key])
    return Variant(id=vid, number=raw["number"], title=raw["title"], kind=raw["kind"], source=raw["source"],
                   rows=MappingProxyType(rows), status=raw["status"], regional=MappingProxyType(regional))


TOPICS = "clinical/topics"


@cache
def _schema() -> Draft202012Validator:
    return schema_validator("clinical/schemas/pack.schema.json")


@cache
def _pack_files() -> Mapping[str, str]:
    """Pack id -> path of its file, for every file under a topic folder that declares the pack schema."""
    found = {}
    for topic in package_path(TOPICS).iterdir():
        if not topic.is_dir():
            continue
        for item in topic.iterdir():
            if item.name.endswith(".json"):
                relative = f"{TOPICS}/{topic.name}/{item.name}"
                data = read_json(relative)
                if isinstance(data, dict) and data.get("$schema") == PACK_SCHEMA_REF:
                    found[item.name.removesuffix(".json")] = relative
    return MappingProxyType(dict(sorted(found.items())))


def _pack_names() -> tuple[str, ...]:
    return tuple(_pack_files())


@cache
def _load(name: str) -> CriteriaPack:
    return build_pack(read_json(_pack_files()[name]), name)
