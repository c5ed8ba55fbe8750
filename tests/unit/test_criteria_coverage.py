"""The criteria coverage table in docs is generated from the topics' packs and rules: it cannot drift."""

from __future__ import annotations

from pathlib import Path

from cds_service.cli.coverage import coverage_table
from cds_service.clinical.facts import load_fact_rules
from cds_service.clinical.topic import load_topics

DOC = Path(__file__).resolve().parents[2] / "docs" / "criteria-coverage.md"


def test_the_coverage_table_in_docs_is_the_generated_one() -> None:
    generated = coverage_table(load_topics(""), load_fact_rules().fact_sources)
    assert DOC.read_text("utf-8") == generated, "regenerate: .venv/bin/python -m cds_service coverage > " + str(DOC)


def test_every_variant_of_every_active_topic_has_a_row() -> None:
    table = DOC.read_text("utf-8")
    for topic in load_topics(""):
        section = table.split(f"`{topic.pack.id}`", 1)[1].split("\n## ", 1)[0]
        rows = [line for line in section.splitlines() if line.startswith("| ") and line[2].isdigit()]
        assert len(rows) == sum(len(order) for order in topic.rules.order.values()), topic.id
