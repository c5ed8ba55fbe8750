"""Which part of the service may import which: the layering of docs/architecture.md, held by a test.

Clinical logic and card rendering are pure (no Flask, HTTP, storage or metrics), the FHIR code knows nothing
of the clinical logic, the protocol code knows nothing of either, and Flask stays at the edge (web.py and the
app factory). Each rule is checked twice: statically, on every import statement of every module of the part
(so a lazy import inside a function counts too), and at run time, by importing the part in a fresh
interpreter and looking at what got loaded (so an indirect import through an allowed module counts too).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "cds_service"
WEB_ONLY = ("flask", "werkzeug")
IO = ("requests", "urllib3", "sqlalchemy", "prometheus_client")
EDGE = ("cds_service.web", "cds_service.services", "cds_service.pipeline", "cds_service.cli")

# part -> modules (or module prefixes) it must not import, directly or through another module
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "cds_service.clinical": (*WEB_ONLY, *IO, *EDGE, "cds_service.ops", "cds_service.fhir.client",
                             "cds_service.fhir.gather", "cds_service.cards", "cds_service.cds_hooks.authenticate",
                             "cds_service.cds_hooks.tokens"),
    "cds_service.cards": (*WEB_ONLY, *IO, *EDGE, "cds_service.ops", "cds_service.fhir.client",
                          "cds_service.fhir.gather", "cds_service.cds_hooks.authenticate",
                          "cds_service.cds_hooks.tokens"),
    "cds_service.fhir": (*WEB_ONLY, "sqlalchemy", *EDGE, "cds_service.clinical", "cds_service.cards"),
    "cds_service.cds_hooks": (*WEB_ONLY, "sqlalchemy", "prometheus_client", *EDGE, "cds_service.clinical",
                              "cds_service.cards", "cds_service.fhir", "cds_service.ops"),
    "cds_service.ops": (*WEB_ONLY, "requests", *EDGE, "cds_service.clinical", "cds_service.cards",
                        "cds_service.fhir"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports, relative imports resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _breaks(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in forbidden)


def violations(part: str, forbidden: tuple[str, ...]) -> list[str]:
    folder = PACKAGE.joinpath(*part.split(".")[1:])
    return sorted(f"{_module_name(path)} imports {name}"
                  for path in folder.rglob("*.py") for name in _imports(path) if _breaks(name, forbidden))


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_no_module_of_a_part_imports_what_the_part_may_not_use(part: str) -> None:
    assert violations(part, FORBIDDEN[part]) == []


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_importing_a_part_loads_nothing_it_may_not_use(part: str) -> None:
    modules = sorted(_module_name(p) for p in PACKAGE.joinpath(*part.split(".")[1:]).rglob("*.py"))
    script = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
              f"print('\\n'.join(sorted(n for n in sys.modules if any(n == b or n.startswith(b + '.') "
              f"for b in {FORBIDDEN[part]!r}))))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert loaded.split() == []


def test_the_checker_sees_a_forbidden_import() -> None:
    """The rule table is only worth something if a violation is seen: a clinical module importing Flask."""
    bad = PACKAGE / "clinical" / "_import_direction_probe.py"
    bad.write_text("from flask import g\nfrom ..ops import metrics\n", encoding="utf-8")
    try:
        assert violations("cds_service.clinical", FORBIDDEN["cds_service.clinical"]) == [
            "cds_service.clinical._import_direction_probe imports cds_service.ops",
            "cds_service.clinical._import_direction_probe imports cds_service.ops.metrics",
            "cds_service.clinical._import_direction_probe imports flask",
            "cds_service.clinical._import_direction_probe imports flask.g",
        ]
    finally:
        bad.unlink()
