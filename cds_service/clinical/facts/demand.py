"""Facts computed when a step first reads them, each by the one rule that gives it.

Why: extracting every fact of every topic cost a call about 65 concept searches whatever was ordered, while an
order reaches one topic's variant rules, the router reads a few scope facts of the topics that rate the
procedure, and the cards a few more. A rule (``Producer``: the fact names it gives and the function computing
them) runs at most once per call, the first time one of its facts, or a fact computed from them, is read.
Every rule is a pure function of the record, the orders, the time of the call and the facts it reads, so a
step reads exactly what extracting everything first would have given it (``tests/unit/test_fact_demand.py``
holds both ways equal on every fixture).

Past the call's deadline the next rule to run raises ``DeadlinePassed``, wherever the step is that asked; the
pipeline then answers with what it knows (no fact is guessed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from ...fhir.patient_data import PatientData
from ..orders import DraftOrder
from .index import DeadlinePassed, PastDeadline
from .model import VOCABULARY, ClinicalFacts, Fact
from .resources import ExtractionViews, Found, best_confidence, sources
from .rules import FactRules
from .unchecked import Unchecked, lost_keys, unchecked_absence

V = TypeVar("V")


@dataclass(frozen=True)
class Producer:
    """One fact rule: the facts it may give (it leaves out what the record does not support) and how."""

    names: tuple[str, ...]
    run: Callable[[FactBook], Mapping[str, Found]]
    conflicts: tuple[str, ...] = ()  # facts it may instead report as conflicting (``FactBook.report_conflict``)


class FactBook:
    """One call's facts, computed on demand (see the module docstring); lives as long as the call."""

    def __init__(self, data: PatientData, orders: Sequence[DraftOrder], now: datetime, rules: FactRules,
                 producers: Sequence[Producer], past_deadline: PastDeadline) -> None:
        self.data, self.orders, self.now, self.rules = data, orders, now, rules
        self.shared: dict[str, Any] = {}  # intermediate results two rules read (e.g. the spine imaging on record)
        self._producers = tuple(producers)
        self._by_name = {name: producer for producer in self._producers for name in producer.names}
        self._ran: set[int] = set()
        self._found: dict[str, Found] = {}
        self._conflicts: set[str] = set()
        self._facts: dict[str, Fact | None] = {}
        self._unchecked: dict[str, Unchecked | None] = {}
        self._lost = lost_keys(data)
        self._past_deadline = past_deadline
        self._views = ExtractionViews(rules.text_screen, rules.code_index, past_deadline, rules.literal_scan)

    def found(self, name: str) -> Found | None:
        """What the rule found for ``name``, before an unchecked absence is withheld: what other rules read."""
        producer = self._by_name.get(name)
        if producer is not None and id(producer) not in self._ran:
            self._run(producer)
        return self._found.get(name)

    def value(self, name: str) -> Any:
        item = self.found(name)
        return None if item is None else item.value

    def report_conflict(self, names: set[str]) -> None:
        self._conflicts |= names

    def _run(self, producer: Producer) -> None:
        if self._past_deadline():
            raise DeadlinePassed(f"before the rule for {producer.names[0]}")
        self._ran.add(id(producer))
        with self._views.active():
            self._found.update(producer.run(self))

    def fact(self, name: str) -> Fact | None:
        """The fact as the steps see it: None when no rule found it or its absence could not be checked."""
        if name not in self._facts:
            item = self.found(name)
            self._facts[name] = None if item is None or self.unchecked(name) is not None else Fact(
                name, item.value, sources(item.evidence),
                item.confidence or (best_confidence(item.evidence) if item.evidence else "coded"))
        return self._facts[name]

    def unchecked(self, name: str) -> Unchecked | None:
        if name not in self._unchecked:
            source = self.rules.fact_sources.get(name)
            self._unchecked[name] = None if source is None else unchecked_absence(
                name, source, self._lost, lambda: self.found(name))
        return self._unchecked[name]

    def conflicts(self) -> tuple[str, ...]:
        for producer in self._producers:
            if producer.conflicts and id(producer) not in self._ran:
                self._run(producer)
        return tuple(n for n in VOCABULARY if n in self._conflicts)

    def missing(self) -> tuple[str, ...]:
        conflicts = self.conflicts()
        return tuple(n for n in VOCABULARY if self.fact(n) is None and n not in conflicts)

    def clinical_facts(self) -> ClinicalFacts:
        return ClinicalFacts(_Lazy(self.fact, VOCABULARY), _Later(self.missing), _Later(self.conflicts),
                             _Lazy(self.unchecked, tuple(self.rules.fact_sources)))


class _Lazy(Mapping[str, V]):
    """A read-only mapping whose values ``get`` computes on demand (None: absent), over the names ``names``."""

    def __init__(self, get: Callable[[str], V | None], names: Iterable[str]) -> None:
        self._get, self._names = get, names

    def __getitem__(self, name: str) -> V:
        found = self._get(name)
        if found is None:
            raise KeyError(name)
        return found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._get(name) is not None

    def get(self, name: str, default: Any = None) -> Any:
        """Mapping's own ``get`` is Python (a try around ``self[name]``); the steps read facts with it ~60 times
        a call, so it is written here, where it compiles."""
        found = self._get(name)
        return default if found is None else found

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._names if self._get(name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Later(Sequence[str]):
    """A tuple of fact names computed when first read (``missing`` needs every rule, ``conflicts`` some)."""

    def __init__(self, compute: Callable[[], tuple[str, ...]]) -> None:
        self._compute = compute
        self._names: tuple[str, ...] | None = None

    def _get(self) -> tuple[str, ...]:
        if self._names is None:
            self._names = self._compute()
        return self._names

    def __getitem__(self, index: Any) -> Any:
        return self._get()[index]

    def __len__(self) -> int:
        return len(self._get())

    def __contains__(self, name: object) -> bool:
        return name in self._get()

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._get())
