"""The ACR topic as a unit: one folder of data, loaded and checked once at start-up.

A topic folder (``clinical/topics/<id>/``, or one under ``CDS_EXTRA_TOPICS_DIR``) holds ``topic.json`` (id,
title, ACR topic id, its criteria packs newest first, its rank among topics and the scope condition an
order must meet to be rated under it), the packs themselves, ``rules.json`` (gates, variant conditions,
precedence, named sets) and ``cards.json`` (its card wording); ``beyond.json`` is optional. Nothing about a
topic is code: adding a topic is adding a folder (plus any fact extractor it needs that does not exist).

``CDS_CRITERIA`` picks the packs: empty means every topic at its newest pack; otherwise a comma-separated
list with at most one pack per topic, and only the topics named are active.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from ..datafiles import check_provenance, first_violation, package_path, schema_validator
from .conditions import Condition, leaves, validate
from .facts.rules import STATUSES
from .packs import CriteriaPack, UnknownPack, build_pack

BUILT_TOPICS = "clinical/topics"
OUTCOMES = ("out-of-scope", "insufficient-data")


class InvalidTopic(ValueError):
    """A topic folder whose files break their schema or a consistency rule: start-up stops."""


@dataclass(frozen=True)
class Gate:
    """A situation the topic does not rate, checked before any variant (e.g. no current fracture)."""

    when: Condition
    outcome: Literal["out-of-scope", "insufficient-data"]
    reason: str  # code of the explanation in the topic's card text


@dataclass(frozen=True)
class VariantRule:
    id: str
    title: str
    when: Condition


@dataclass(frozen=True)
class PackRules:
    order: Mapping[str, tuple[str, ...]]  # order kind -> variant ids in decision order
    variants: Mapping[str, VariantRule]
    precedence: Mapping[tuple[str, str], str]  # (winner, other) -> why
    none: tuple[tuple[Condition, str], ...]  # why no variant fits: (condition, reason code), first match wins
    describe_when_none: tuple[str, ...]  # facts shown when no variant fits
    compare_when_blocked: bool = False  # "undecided": "compare-ratings": blocked variants are settled per order


@dataclass(frozen=True)
class Topic:
    id: str
    title: str
    acr_topic_id: int | None
    rank: int  # lower is asked first by the router (why: topic.json ``precedence.why``, for reviewers)
    scope: Condition | None  # an order is rated under this topic only when this holds
    pack: CriteriaPack  # the active pack
    rules: PackRules
    gates: tuple[Gate, ...]
    sets: Mapping[str, tuple[Any, ...]]
    text: Mapping[str, Any]  # the topic's cards.json
    beyond: Mapping[str, Any] | None

    def facts_read(self) -> tuple[str, ...]:
        """Every fact a condition of this topic reads: what the record must hold for it to decide."""
        conditions = [g.when for g in self.gates] + [v.when for v in self.rules.variants.values()]
        conditions += [c for c, _ in self.rules.none] + ([self.scope] if self.scope else [])
        return tuple(dict.fromkeys(leaf["fact"] for c in conditions for leaf in leaves(c) if "fact" in leaf))


def load_topics(criteria: str, extra_dir: str = "") -> tuple[Topic, ...]:
    """The active topics, in router order; ``UnknownPack`` / ``InvalidTopic`` name what is wrong."""
    folders = list(_folders(package_path(BUILT_TOPICS)))
    if extra_dir:
        folders += list(_folders(Path(extra_dir)))
    specs = {}
    for folder in folders:
        spec = _read(folder, "topic.json", "topic")
        if spec["id"] in specs:
            raise InvalidTopic(f"topic {spec['id']!r} is defined twice")
        specs[spec["id"]] = (folder, spec)
    chosen = _choose_packs({tid: spec["packs"] for tid, (_, spec) in specs.items()}, criteria)
    topics = [_topic(specs[tid][0], specs[tid][1], pack_id) for tid, pack_id in chosen.items()]
    return tuple(sorted(topics, key=lambda t: (t.rank, t.id)))


def topic_for_pack(pack_id: str, extra_dir: str = "") -> Topic:
    """The topic with ``pack_id`` active (tests and tools ask for one pack directly)."""
    return load_topics(pack_id, extra_dir)[0]


def _folders(root: Traversable) -> Iterable[Traversable]:
    return sorted((f for f in root.iterdir() if f.is_dir() and f.joinpath("topic.json").is_file()),
                  key=lambda f: f.name)


def _choose_packs(packs: Mapping[str, list[str]], criteria: str) -> dict[str, str]:
    wanted = [p.strip() for p in criteria.split(",") if p.strip()]
    if not wanted:
        return {tid: ids[0] for tid, ids in sorted(packs.items())}
    owner = {pid: tid for tid, ids in packs.items() for pid in ids}
    chosen: dict[str, str] = {}
    for pid in wanted:
        if pid not in owner:
            raise UnknownPack(pid, tuple(sorted(owner)))
        if owner[pid] in chosen:
            raise InvalidTopic(f"CDS_CRITERIA names two packs of topic {owner[pid]!r}: {chosen[owner[pid]]}, {pid}")
        chosen[owner[pid]] = pid
    return chosen


def _read(folder: Traversable, name: str, kind: str) -> Any:
    where = f"topic folder {folder.name}/{name}"
    try:
        data = json.loads(folder.joinpath(name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidTopic(f"{where}: cannot be read ({exc})") from exc
    problem = first_violation(schema_validator(f"clinical/schemas/{kind}.schema.json"), data)
    if problem:
        raise InvalidTopic(f"{where} is invalid: {problem}")
    if isinstance(data, Mapping) and "sources" in data:
        try:
            check_provenance(data, set(data["sources"]), where, STATUSES)
        except ValueError as exc:
            raise InvalidTopic(str(exc)) from exc
    return data


def _topic(folder: Traversable, spec: Mapping[str, Any], pack_id: str) -> Topic:
    pack = build_pack(_read(folder, f"{pack_id}.json", "pack"), pack_id)
    raw = _read(folder, spec.get("rules", "rules.json"), "rules")
    sets = {name: tuple(entry["values"]) for name, entry in raw.get("sets", {}).items()}
    where = f"topic {spec['id']!r}"
    gates = tuple(Gate(g["when"], g["outcome"], g["reason"]) for g in raw.get("gates", ()))
    if pack_id not in raw["packs"]:
        raise InvalidTopic(f"{where}: rules.json has no rules for pack {pack_id!r}")
    rules = _pack_rules(raw["packs"][pack_id], pack, f"{where} rules.packs.{pack_id}")
    scope = spec.get("scope", {}).get("when")
    for label, condition in [("scope", scope), *((f"gates[{i}]", g.when) for i, g in enumerate(gates)),
                             *((f"variants.{v}", r.when) for v, r in rules.variants.items()),
                             *((f"none[{i}]", c) for i, (c, _) in enumerate(rules.none))]:
        if condition is not None:
            try:
                validate(condition, f"{where} {label}", sets)
            except ValueError as exc:
                raise InvalidTopic(str(exc)) from exc
    text = _read(folder, spec.get("cards", "cards.json"), "topic-cards")
    unexplained = {g.reason for g in gates} | {r for _, r in rules.none}
    unexplained -= set(text.get("reasons", {}))
    if unexplained:
        raise InvalidTopic(f"{where}: cards.json has no reason text for {sorted(unexplained)}")
    beyond = _read(folder, spec["beyond"], "beyond") if spec.get("beyond") else None
    return Topic(id=spec["id"], title=spec["title"], acr_topic_id=spec.get("acr_topic_id"),
                 rank=spec["precedence"]["rank"], scope=scope, pack=pack,
                 rules=rules, gates=gates, sets=MappingProxyType(sets), text=text, beyond=beyond)


def _pack_rules(spec: Mapping[str, Any], pack: CriteriaPack, where: str) -> PackRules:
    unknown = set(spec["variants"]) - set(pack.variants)
    if unknown:
        raise InvalidTopic(f"{where}: rules for variants the pack does not define: {sorted(unknown)}")
    variants = {vid: VariantRule(vid, pack.variants[vid].title, rule["when"]) for vid, rule in spec["variants"].items()}
    order = {kind: tuple(ids) for kind, ids in spec["order"].items()}
    unknown = {v for ids in order.values() for v in ids} - set(variants)
    if unknown:
        raise InvalidTopic(f"{where}: order names variants without rules: {sorted(unknown)}")
    precedence = {(p["winner"], p["over"]): p["why"] for p in spec.get("precedence", ())}
    none = tuple((n["when"], n["reason"]) for n in spec.get("none", ()))
    return PackRules(MappingProxyType(order), MappingProxyType(variants), MappingProxyType(precedence), none,
                     tuple(spec.get("describe_when_none", ())), spec.get("undecided") == "compare-ratings")
