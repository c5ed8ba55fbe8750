"""The osteoporosis-treatment gap: a fragility fracture with no osteoporosis drug on record.

Whatever is done for the fracture, untreated osteoporosis invites the next one (seed workflow; care pathway
follow-up). Drawn when the topic's ``osteoporosis-gap`` condition holds (an osteoporotic fracture and therapy
not known to be current). When ``osteoporosis_therapy`` is unknown because the medication data could not be
obtained, the card says exactly that instead of claiming a gap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..clinical.topic import Topic
from .content import (
    CardInput,
    card,
    citation_line,
    data_names,
    data_source,
    data_used,
    declared_cards,
    fact_line,
    topic,
)


def gap_cards(inp: CardInput) -> list[dict[str, Any]]:
    return declared_cards(inp, "treatment_gaps", {"osteoporosis-gap": gap_card})


def gap_card(inp: CardInput, _active: Topic, entry: Mapping[str, Any]) -> dict[str, Any] | None:
    therapy = inp.facts.value("osteoporosis_therapy")
    unavailable = [m for m in inp.data.missing if m.key in entry["medication_keys"]]
    if therapy is None and unavailable:
        summary = entry["unknown_summary"]
        lines = [entry["unknown_text"], "\n".join(f"- {data_names([m.key])}: {m.reason}" for m in unavailable)]
    else:
        summary = entry["summary"]
        lines = [entry["text"]]
    lines += ["\n".join(fact_line(inp.facts, name) for name in ("etiology", "osteoporosis", "osteoporosis_therapy")),
              citation_line(entry), *data_used(inp.facts, ("etiology", "osteoporosis", "osteoporosis_therapy"))]
    return card(inp, "osteoporosis-gap", [], indicator=entry["indicator"], summary=summary,
                detail="\n\n".join(lines), topic=topic(entry["topic"], entry["display"]),
                source=data_source(entry["label"], entry), override=entry["override_reasons"])
