"""The ``_count`` rule: an answer holds at most the entries its query asked for.

A FHIR server that ignores ``_count`` on a page, or an EHR that sends a prefetch key with more entries than
its template asks for, would otherwise stretch a call without bound (a 10,000-entry page took a call to
about 4 s against a 0.8 s budget). Both are cut at the count (``client.py`` for pages, ``gather.py`` for
prefetch) and the cut is named in the card's missing-data list.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit


def page_count(query: str) -> int | None:
    """The ``_count`` a search asks for (a query, a URL or a prefetch template), or None when it names none."""
    values = parse_qs(urlsplit(query).query).get("_count", [])
    return int(values[0]) if values and values[0].isdigit() else None


def over_count(sent: int, count: int, where: str) -> str:
    """Why only part of an answer was read: more entries than the query's ``_count`` (a server or EHR that
    ignores it would otherwise stretch the call without bound)."""
    return f"{sent} entries sent {where} where the query asks for at most {count}; the first {count} were read"
