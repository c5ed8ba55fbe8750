"""Errors the request path raises on purpose, and their JSON shape.

Every deliberate failure becomes a ``CdsError`` with an HTTP status and a message that names the field at
fault. ``web.py`` turns it into an OperationOutcome body (the CDS Hooks 3.0 ballot's SHOULD; harmless in 2.0).
401 bodies stay generic: the reason goes to the log only (CDS Hooks best practice).
"""

from __future__ import annotations

from typing import Any


class CdsError(Exception):
    """A request the service refuses, with the status and message the caller sees."""

    status: int = 400
    code: str = "invalid"  # OperationOutcome.issue.code

    def __init__(self, message: str, *, status: int | None = None, field: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class RequestRejected(CdsError):
    """400: malformed JSON, schema violation, hook not matching the service, input limits."""


class DataUnavailable(CdsError):
    """412: patient data the service needs could not be obtained (CDS Hooks 2.0 #prefetch)."""

    status = 412
    code = "not-found"


class Unauthorized(CdsError):
    """401: the caller's JWT was missing or failed a check. The message is for the log, never the body."""

    status = 401
    code = "login"


def operation_outcome(message: str, *, code: str = "invalid", field: str | None = None,
                      severity: str = "error") -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
    if field:
        issue["expression"] = [field]
    return {"resourceType": "OperationOutcome", "issue": [issue]}
