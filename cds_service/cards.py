"""Step 8 of the request path: turn ratings, facts and escalations into CDS Hooks cards and systemActions.

Input: the request, recognised orders, patient data (for what was missing), clinical facts, ratings, the
criteria pack and the order catalogue. Output: a response dict ``{"cards": [...], "systemActions": [...]}``
that passes ``response.check_response``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CardOptions:
    mirror_system_actions: bool = True  # also emit extension.systemActions (the CDS Hooks sandbox reads only that)


def build_response(*args: Any, **kwargs: Any) -> dict[str, Any]:
    raise NotImplementedError
