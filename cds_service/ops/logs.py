"""Structured JSON logs, one object per line on stderr, each with the request id.

What a line may hold: the time, level, logger, message, request id and the scalar ``extra`` fields the
code passes (service id, prefetch key, outcome, HTTP status, durations, JWT ``iss``/``tenant``/``jti``).
What it must never hold: patient identifiers, names, tokens, free text from the request. The code logs
none of these; as a safety net this module
- silences HTTP client libraries and SQLAlchemy below WARNING (urllib3 logs every URL it calls, FHIR URLs carry
  patient ids; werkzeug's dev server logs request lines);
- masks anything shaped like a JWT or a ``Bearer`` credential in messages and fields.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# No nested or overlapping quantifiers: each pattern runs in linear time on any input.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s\"',;]+")
QUIET_LOGGERS = ("urllib3", "requests", "werkzeug", "charset_normalizer", "sqlalchemy")  # SQL params
MAX_FIELD_CHARS = 500
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def mask(text: str) -> str:
    """Replace JWTs and bearer credentials by a placeholder."""
    return _BEARER.sub("Bearer [masked]", _JWT.sub("[jwt masked]", text))


class JsonFormatter(logging.Formatter):
    """One JSON object per record; extras are kept when scalar, masked and cut to a bounded length."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage())[:MAX_FIELD_CHARS],
        }
        request_id = _request_id()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_"):
                continue
            if isinstance(value, bool | int | float) or value is None:
                entry[key] = value
            elif isinstance(value, str):
                entry[key] = mask(value)[:MAX_FIELD_CHARS]
        if record.exc_info:
            entry["exception"] = mask(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The hook call's id, set by the HTTP edge (web.py) per request; FHIR pool threads run in a copy of the
caller's context, so their lines carry it too. A context variable, so this module never reads Flask globals."""


def _request_id() -> str | None:
    return REQUEST_ID.get()


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it), and marks the handler this
    module installed, so configuring twice replaces it instead of doubling lines."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        return


def configure_logging(level: str) -> None:
    """Install the JSON handler on the root logger at ``level`` (CDS_LOG_LEVEL); idempotent."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
