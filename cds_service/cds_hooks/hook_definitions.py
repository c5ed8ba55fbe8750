"""Load the CDS service definitions in ``hooks/`` at start-up.

One JSON file per service: the discovery fields (id, hook, title, description, prefetch) plus engine-only
settings under ``_config``, which discovery never shows (the AHRQ CQL Services pattern). A file that fails
the schema stops start-up with a message naming the file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..datafiles import first_error


class HookDefinitionError(ValueError):
    """A service definition file is unusable; start-up stops."""


@dataclass(frozen=True)
class HookDefinition:
    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, str]
    required_prefetch: tuple[str, ...]

    def discovery_entry(self) -> dict[str, Any]:
        return {"hook": self.hook, "id": self.id, "title": self.title, "description": self.description,
                "prefetch": dict(self.prefetch)}


def load_hook_definitions(directory: str | Path) -> Mapping[str, HookDefinition]:
    folder = Path(directory)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise HookDefinitionError(f"no service definitions (*.json) in {folder}")
    definitions: dict[str, HookDefinition] = {}
    for path in files:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise HookDefinitionError(f"{path.name}: not valid JSON: {exc}") from exc
        problem = first_error("hook-definition", data)
        if problem:
            raise HookDefinitionError(f"{path.name}: {problem}")
        config = data["_config"]
        unknown = [k for k in config["required_prefetch"] if k not in data["prefetch"]]
        if unknown:
            raise HookDefinitionError(f"{path.name}: _config.required_prefetch names unknown keys {unknown}")
        if data["id"] in definitions:
            raise HookDefinitionError(f"{path.name}: duplicate service id {data['id']!r}")
        definitions[data["id"]] = HookDefinition(
            id=data["id"], hook=data["hook"], title=data["title"], description=data["description"],
            prefetch=MappingProxyType(dict(data["prefetch"])),
            required_prefetch=tuple(config["required_prefetch"]),
        )
    return MappingProxyType(definitions)


def discovery_document(definitions: Mapping[str, HookDefinition]) -> dict[str, Any]:
    """GET /cds-services (https://cds-hooks.hl7.org/2.0/#discovery)."""
    return {"services": [d.discovery_entry() for d in definitions.values()]}
