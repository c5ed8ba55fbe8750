"""``cds-service report``: acceptance and override rates per card kind and rating, from the store.

Reads the database named by the settings (``CDS_DATABASE_URL``, else the SQLite file under
``CDS_DATA_DIR``); it needs no criteria or hook files, so it runs next to a live service.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..ops.store import Store
from ..settings import SettingsError, load_settings

COLUMNS = ("card_kind", "rating", "cards", "accepted", "overridden", "acceptance_rate", "override_rate")


def add_commands(subparsers: Any) -> None:
    """Register ``report`` on the CLI's subparsers (``argparse._SubParsersAction``)."""
    report = subparsers.add_parser("report", help="acceptance/override rates per card kind and rating")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    report.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    try:
        store = Store(load_settings().store_url)
    except (SettingsError, ValueError, OSError) as exc:
        print(f"cds-service: cannot open the store: {exc}", file=sys.stderr)
        return 2
    try:
        rows = store.report()
    finally:
        store.close()
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


def format_table(rows: list[dict[str, Any]]) -> str:
    """Fixed-width text: one line per (card kind, rating); rates as percentages, n/a without feedback."""
    if not rows:
        return "no cards with audit records yet"
    cells = [[_cell(row[c], c) for c in COLUMNS] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def _cell(value: Any, column: str) -> str:
    """A rate as a percentage; ``n/a`` where no card of the group got feedback (the rate is unknown)."""
    if column.endswith("_rate"):
        return "n/a" if value is None else f"{value * 100:.1f}%"
    return str(value)
