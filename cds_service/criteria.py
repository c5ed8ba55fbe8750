"""Load the criteria packs and clinical data files under ``criteria/`` at start-up.

A pack that fails ``pack.schema.json`` stops start-up. Packs are read-only after loading.
"""

from __future__ import annotations

from typing import Any


def load_pack(name: str) -> Any:
    raise NotImplementedError
