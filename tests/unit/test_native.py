"""Compiled modules or sources (cds_service/native.py, build_native.py): never stale code, all or none.

On made-up package trees (an empty file stands for a compiled module: it is listed and dated, never loaded),
and on this process: where a C compiler is present, ``make test`` runs every test against the compiled modules.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import time
from collections.abc import Iterator
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import build_native
from cds_service import native

SUFFIX = EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so


def package(root: Path, modules: dict[str, bool | str]) -> Path:
    """A package ``made`` under ``root``: each module a source, with a compiled file when its flag is set (older
    than the source when the flag is "stale"), plus the group's shared library."""
    made = root / "made"
    (made / "inner").mkdir(parents=True)
    (made / "__init__.py").write_text("")
    (made / "inner" / "__init__.py").write_text("")
    (made / f"{native.LIBRARY}{SUFFIX}").write_text("")
    past = time.time() - 60
    for name, compiled in modules.items():
        source = made / f"{name}.py"
        source.write_text(f"WHERE = {name!r}\n")
        if compiled:
            built = made / f"{name}{SUFFIX}"
            built.write_text("")
            if compiled == "stale":
                os.utime(built, (past, past))
    return made


@pytest.fixture
def restored_meta_path() -> Iterator[list[object]]:
    saved = list(sys.meta_path)
    yield sys.meta_path
    sys.meta_path[:] = saved


def test_compiled_files_pair_each_module_with_its_source_and_skip_the_shared_library(tmp_path: Path) -> None:
    made = package(tmp_path, {"a": True, "inner/b": True, "c": False})
    assert native.compiled_files(made) == {made / f"a{SUFFIX}": made / "a.py",
                                           made / "inner" / f"b{SUFFIX}": made / "inner" / "b.py"}


def test_a_compiled_file_older_than_its_source_or_without_one_is_stale(tmp_path: Path) -> None:
    made = package(tmp_path, {"fresh": True, "old": "stale", "gone": True})
    (made / "gone.py").unlink()
    assert native.stale_files(native.compiled_files(made)) == sorted([made / f"old{SUFFIX}", made / f"gone{SUFFIX}"])


def test_fresh_compiled_modules_run(tmp_path: Path, restored_meta_path: list[object]) -> None:
    made = package(tmp_path, {"a": True, "b": True})
    assert native.choose("made", made, environ={}) == "compiled"
    assert not any(isinstance(f, native.SourcesOnly) for f in restored_meta_path)


def test_one_stale_module_runs_every_module_from_source_and_says_so(
        tmp_path: Path, restored_meta_path: list[object], caplog: pytest.LogCaptureFixture) -> None:
    made = package(tmp_path, {"a": True, "b": "stale"})
    assert native.choose("made", made, environ={}) == "sources: stale build"
    assert isinstance(restored_meta_path[0], native.SourcesOnly)
    assert "older than their sources" in caplog.text and "build_native.py" in caplog.text
    spec = restored_meta_path[0].find_spec("made.a", [str(made)])  # the fresh one too: all or none
    assert spec is not None and spec.origin == str(made / "a.py")


def test_compiled_modules_without_their_shared_library_run_from_source(
        tmp_path: Path, restored_meta_path: list[object]) -> None:
    made = package(tmp_path, {"a": True})
    [library] = native.library_files(made)
    library.unlink()
    assert native.choose("made", made, environ={}) == "sources: stale build"
    assert isinstance(restored_meta_path[0], native.SourcesOnly)


def test_cds_native_0_runs_the_sources_without_a_warning(
        tmp_path: Path, restored_meta_path: list[object], caplog: pytest.LogCaptureFixture) -> None:
    made = package(tmp_path, {"a": True})
    assert native.choose("made", made, environ={"CDS_NATIVE": "0"}) == "sources"
    assert isinstance(restored_meta_path[0], native.SourcesOnly) and not caplog.records


def test_the_sources_finder_loads_source_beside_a_compiled_file(tmp_path: Path) -> None:
    made = package(tmp_path, {"a": True, "inner/b": True})
    finder = native.SourcesOnly("made")
    spec = finder.find_spec("made.inner.b", [str(made / "inner")])
    assert spec is not None and spec.origin == str(made / "inner" / "b.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.WHERE == "inner/b"
    assert finder.find_spec("other.a", [str(made)]) is None  # other packages are left to the usual finders


def test_every_listed_module_is_compiled_and_in_use_here() -> None:
    """Where a C compiler is present (and CDS_NATIVE is not 0) the suite runs the compiled modules, as serve does:
    each module build_native.py lists has its compiled file, and the package imports it."""
    if build_native.compiler() is None or os.environ.get("CDS_NATIVE") == "0":
        pytest.skip("no C compiler, or CDS_NATIVE=0: the sources run")
    assert native.MODE == "compiled", "run `python build_native.py` (make test does) before the tests"
    built = native.compiled_files()
    assert set(built.values()) == {build_native.ROOT / name for name in build_native.sources()}
    from cds_service.clinical.facts import index

    assert index.__file__.endswith(SUFFIX)


def test_the_point_where_a_long_loop_lets_other_calls_run_stays_python() -> None:
    """``waits.let_others_run`` hands the interpreter lock over by being Python code: compiled, it would not."""
    from cds_service import waits

    assert inspect.isfunction(waits.let_others_run)
    assert "cds_service/waits.py" not in build_native.sources()


def test_no_compiled_module_caches_with_cached_property() -> None:
    """mypyc compiles ``functools.cached_property`` as a plain property that recomputes on every access (a
    variant's rows grouped by procedure were rebuilt 33 times a call, 3.5 % of its instructions): compiled
    modules compute such values once, at construction."""
    using = [name for name in build_native.sources()
             if "@cached_property" in (build_native.ROOT / name).read_text(encoding="utf-8")]
    assert using == []
