"""Compiled modules or sources: decided once, when the package is first imported.

Why: ``build_native.py`` compiles the hot modules to C extension files beside their sources, and Python imports
an extension file before a source of the same name, so an edited source would run stale compiled code until the
next build. Here every compiled file is checked against its source first. When each is newer than its source,
the compiled modules run. When one is older, or its source is gone, or ``CDS_NATIVE=0`` is set, a finder put
first in ``sys.meta_path`` loads every module of the package from source: all or none, because compiled modules
call each other directly and one fresh source beside stale compiled callers would run two versions at once. A
stale build is logged once (a warning, with the command that rebuilds it); ``MODE`` says what runs.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from importlib.machinery import EXTENSION_SUFFIXES, SOURCE_SUFFIXES, FileFinder, ModuleSpec, SourceFileLoader
from pathlib import Path
from types import ModuleType

PACKAGE = Path(__file__).resolve().parent
GROUP = "cds_service.native"  # mypyc's group: build_native.py compiles every module into it
LIBRARY = GROUP.rpartition(".")[2] + "__mypyc"  # the group's shared library beside this file: it has no source
log = logging.getLogger(__name__)


def compiled_files(root: Path = PACKAGE) -> dict[Path, Path]:
    """Each compiled module's file under ``root`` -> the source it was built from (which may be gone)."""
    found = {}
    for path in root.rglob("*"):
        suffix = next((s for s in EXTENSION_SUFFIXES if path.name.endswith(s)), None)  # most specific first
        if suffix is not None and path.name[:-len(suffix)] != LIBRARY:
            found[path] = path.with_name(path.name[:-len(suffix)] + ".py")
    return found


def library_files(root: Path = PACKAGE) -> list[Path]:
    """The compiled modules' shared library (one file; none before the first build)."""
    return sorted(root.glob(LIBRARY + ".*"))


def stale_files(compiled: dict[Path, Path]) -> list[Path]:
    """The compiled files older than their source, or whose source is gone."""
    return sorted(built for built, source in compiled.items()
                  if not source.exists() or source.stat().st_mtime > built.stat().st_mtime)


class SourcesOnly:
    """A meta path finder: the package's modules from their ``.py`` files, never from a compiled file."""

    def __init__(self, package: str) -> None:
        self.prefix = package + "."

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if not name.startswith(self.prefix) or path is None:
            return None
        for directory in path:
            spec = FileFinder(directory, (SourceFileLoader, SOURCE_SUFFIXES)).find_spec(name, target)
            if spec is not None:
                return spec
        return None


def choose(package: str, root: Path = PACKAGE, environ: Mapping[str, str] | None = None) -> str:
    """``compiled``, ``sources`` (nothing compiled, or ``CDS_NATIVE=0``) or ``sources: stale build``; for the
    last two, with compiled files present, the sources-only finder is installed."""
    compiled = compiled_files(root)
    wanted = (os.environ if environ is None else environ).get("CDS_NATIVE") != "0"
    stale = stale_files(compiled) if wanted else []
    if compiled and wanted and not library_files(root):
        stale = sorted(compiled)  # their shared library is gone: none of them can load
    if compiled and wanted and not stale:
        return "compiled"
    if compiled and not any(isinstance(f, SourcesOnly) for f in sys.meta_path):
        sys.meta_path.insert(0, SourcesOnly(package))
    if stale:
        log.warning("%d compiled modules are older than their sources (%s, ...): running the sources, which is "
                    "slower; `make serve` or `python build_native.py` rebuilds them",
                    len(stale), stale[0].relative_to(root))
        return "sources: stale build"
    return "sources"


MODE = choose(__package__ or "cds_service")
