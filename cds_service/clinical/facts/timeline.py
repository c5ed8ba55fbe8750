"""One fracture timeline per level: the Condition entries that describe the same fracture, merged into episodes.

Problem lists carry the same fracture several times: coded again at each encounter, with ICD-10-CM 7th characters
D/G/K/P/S (subsequent encounter, delayed healing, nonunion, malunion, sequela) for follow-ups, often with no onset
and a recorded date of yesterday. Counting entries would make a 3-month-old fracture "new" and "multiple". Entries
are merged when they share a level, or when neither names a different level and either is a follow-up or their
onsets are close (``same_fracture_days``); the episode's onset is the earliest credible onset of its entries
(an onset field, or the recorded date of an initial-encounter entry; never the recorded date of a follow-up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from .resources import Evidence


@dataclass(frozen=True)
class FractureItem:
    evidence: Evidence
    etiology: str
    current: bool
    levels: tuple[str, ...]
    onset: date | None  # credible onset (see the module docstring), or None
    discovered: date | None  # when it was recorded (else its onset)
    followup: bool = False  # ICD-10-CM 7th character of a subsequent encounter or sequela


@dataclass(frozen=True)
class Episode:
    """One fracture: the entries that describe it, its levels, its earliest credible onset, first record."""

    items: tuple[FractureItem, ...]

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(level for i in self.items for level in i.levels))

    @property
    def onset(self) -> date | None:
        return min((i.onset for i in self.items if i.onset), default=None)

    @property
    def discovered(self) -> date | None:
        return min((i.discovered for i in self.items if i.discovered), default=None)

    @property
    def current(self) -> bool:
        return any(i.current for i in self.items)

    @property
    def followup_only(self) -> bool:
        return all(i.followup for i in self.items)

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        return tuple(i.evidence for i in self.items)


def is_followup(code: str | None, letters: Sequence[str]) -> bool:
    """An ICD-10-CM fracture code whose 7th character is a follow-up encounter (D, G, K, P, S), e.g. M80.08XD."""
    if not code:
        return False
    bare = code.replace(".", "")
    return len(bare) == 7 and bare[0] in "MS" and bare[-1] in letters


def episodes(items: Sequence[FractureItem], same_fracture_days: int) -> list[Episode]:
    """Items merged into episodes, oldest credible onset first (undated items are merged where they can be)."""
    groups: list[list[FractureItem]] = []
    ordered = sorted(items, key=lambda i: (i.onset is None, i.onset or date.min, i.followup))
    for item in ordered:
        target = next((g for g in groups if _same(g, item, same_fracture_days)), None)
        if target is None:
            groups.append([item])
        else:
            target.append(item)
    return [Episode(tuple(g)) for g in groups]


def _same(group: list[FractureItem], item: FractureItem, days: int) -> bool:
    levels = {level for i in group for level in i.levels}
    if item.levels and levels:
        return bool(levels & set(item.levels))  # named levels decide: same level = same fracture
    if item.followup or all(i.followup for i in group):
        return True
    onsets = [i.onset for i in group if i.onset]
    if item.onset is None or not onsets:
        return True  # an undated entry cannot be shown to be a separate event
    return any(abs((item.onset - o).days) <= days for o in onsets)
