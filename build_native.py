"""Compile the modules every call runs through to C with mypyc, in place: ``make serve`` and ``make test`` run it.

Why: a typical order-select call costs 2.4-2.9 ms of Python in a worker, spread over the fact rules, the record
index, the text screens and the cards with no step above an eighth (docs/performance-deployment.md, round 6).
mypyc (the compiler mypy and black ship with) turns these same sources, unchanged, into C extension modules:
about a fifth less CPU per call under ``cds-service serve``. The sources stay the truth: ``cds_service/native.py``
uses the compiled modules only while each is newer than its source and runs the sources otherwise, so an edit
never runs stale code; ``CDS_NATIVE=0`` runs the sources on purpose.

Compiled: the clinical logic, the prefetch semantics and FHIR shape checks, the card builders, the protocol checks
of a request and an answer, the data files' schema checks (``MODULES``). Left as Python: the edges (Flask, HTTP,
storage, the command line), the errors the request path raises (``cds_hooks/errors.py``: a compiled class ignores a
subclass's own ``status``), the package ``__init__`` files (mypyc gives a compiled package a wrong ``__path__`` when
the group's library sits in ``cds_service/``).

Without a C compiler, or with ``CDS_NATIVE=0``, nothing is built and the service runs from source. When every
compiled module is newer than its source, nothing is done (``make`` runs this before every serve and test). Output:
the ``.so`` files beside their sources (git-ignored) and the generated C under ``build/``.

    python build_native.py          # about 75 s on 2 cores the first time, 40 s after an edit
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent
MODULES = (
    "cds_service/clinical/*.py",
    "cds_service/clinical/facts/*.py",
    "cds_service/fhir/gather.py",
    "cds_service/fhir/shape.py",
    "cds_service/fhir/patient_data.py",
    "cds_service/fhir/references.py",
    "cds_service/fhir/counts.py",
    "cds_service/cards/*.py",
    "cds_service/cds_hooks/validate.py",
    "cds_service/cds_hooks/fastjson.py",
    "cds_service/cds_hooks/response.py",
    "cds_service/datafiles.py",
)


def sources() -> list[str]:
    """The files ``MODULES`` names, relative to the checkout, package ``__init__`` files left out."""
    return sorted(str(path.relative_to(ROOT)) for pattern in MODULES for path in ROOT.glob(pattern)
                  if path.name != "__init__.py")


def compiler() -> str | None:
    """The C compiler Python's own build used, if it is on this machine."""
    command = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(command)


def main() -> int:
    if os.environ.get("CDS_NATIVE") == "0":
        print("build_native: CDS_NATIVE=0, nothing compiled: the service runs from source")
        return 0
    if compiler() is None:
        print("build_native: no C compiler found, nothing compiled: the service runs from source (slower)")
        return 0
    os.environ["CDS_NATIVE"] = "0"  # this process only lists compiled files: no check of the old build, no warning
    from cds_service.native import GROUP, compiled_files, library_files, stale_files

    listed = {ROOT / name for name in sources()}
    for path, source in compiled_files().items():
        if source not in listed:
            path.unlink()  # taken off the list, or its source removed: the module runs from source again
    built = compiled_files()
    library = library_files()
    if (set(built.values()) == listed and not stale_files(built) and library
            and library[0].stat().st_mtime >= Path(__file__).stat().st_mtime):  # built from this list
        print(f"build_native: {len(built)} compiled modules, each newer than its source: nothing to do")
        return 0
    from mypyc.build import mypycify
    from setuptools import setup

    os.chdir(ROOT)
    options = ["--ignore-missing-imports", "--follow-imports=silent", "--python-executable", sys.executable]
    setup(ext_modules=mypycify([*options, *sources()], group_name=GROUP),
          script_args=["--quiet", "build_ext", "--inplace", "--parallel", str(os.cpu_count() or 1)])
    # A source edited only in its comments gives the same C, which setuptools does not rebuild: every compiled
    # file now stands for the sources just read, so each is marked newer than its source (cds_service/native.py).
    for path in [*compiled_files(), *library_files()]:
        os.utime(path)
    print(f"build_native: {len(sources())} modules compiled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
