"""What keeps a worker's memory down (issue 16, peak RSS per worker), held by counts, never by timings: modules a
worker does not load, the copies of a request body that exist at once, strings a large body shares, and a
large request's C buffers going back to the kernel; and, for latency, a call's objects freed only after its answer
is sent. ``bench/memory.py`` measures the result per worker."""

from __future__ import annotations

import gc
import json
import platform
import subprocess
import sys
import threading
import tracemalloc
import weakref
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cds_service.cds_hooks.validate import SHARED_STRINGS_FROM, Limits, parse_json
from cds_service.cli import YOUNG_COLLECTION_EVERY, frozen
from cds_service.cli.fixtures import hook_request, materialise
from cds_service.cli.workers import HEADER, Reply, Request, call_app, recv_request, run_call
from cds_service.pipeline import HookOutcome
from tests.helpers import REPO

BODY_BYTES = 4_000_000
LOADED = """
import json, sys
from cds_service import create_app
from cds_service.settings import load_settings
create_app(load_settings(json.loads(sys.argv[1]), data_dir=sys.argv[2])).extensions["cds"].close()
print(json.dumps({name: name in sys.modules for name in ("jwt", "cryptography", "sqlalchemy.dialects.postgresql")}))
"""


def loaded_after_start(environ: dict[str, str], data_dir: Path) -> dict[str, bool]:
    """Which optional libraries a fresh interpreter holds once the app is built (as a worker builds it)."""
    out = subprocess.run([sys.executable, "-c", LOADED, json.dumps(environ), str(data_dir)], cwd=REPO,
                         capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_token_libraries_and_the_postgresql_dialect_load_only_when_used(tmp_path: Path) -> None:
    """No trusted issuers: no PyJWT and cryptography; a SQLite store (the default): no PostgreSQL dialect."""
    unused = {"jwt": False, "cryptography": False, "sqlalchemy.dialects.postgresql": False}
    assert loaded_after_start({}, tmp_path / "open") == unused
    issuers = str(REPO / "tests" / "data" / "issuers" / "sandbox-dev.json")
    checked = loaded_after_start({"CDS_TRUSTED_ISSUERS_FILE": issuers, "CDS_PUBLIC_BASE_URL": "http://127.0.0.1"},
                                 tmp_path / "checked")
    assert checked == {**unused, "jwt": True, "cryptography": True}


def chart(conditions: int) -> bytes:
    entry = {"resource": {"resourceType": "Condition", "clinicalStatus": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"text": "Essential (primary) hypertension"}, "subject": {"reference": "Patient/p1"}}}
    return json.dumps({"prefetch": {"conditions": {"resourceType": "Bundle", "entry": [entry] * conditions}},
                      "list": ["Patient/p1", "Patient/p1"]}).encode()


def strings(document: Any) -> list[str]:
    if isinstance(document, dict):
        return [s for value in document.values() for s in strings(value)]
    if isinstance(document, list):
        return [s for value in document for s in strings(value)]
    return [document] if isinstance(document, str) else []


def test_a_large_body_holds_each_string_value_once() -> None:
    raw = chart(2_000)
    assert len(raw) >= SHARED_STRINGS_FROM
    document = parse_json(raw, Limits())
    assert document == json.loads(raw)
    member_values = strings(document)[:-2]  # the list's two items are not member values: not shared
    assert len(member_values) == 1 + 2_000 * 5  # "Bundle", then 5 per Condition
    assert len({id(s) for s in member_values}) == len(set(member_values)) == 6


def test_a_worker_collects_the_youngest_generation_a_large_body_fills_far_less_often() -> None:
    """``cli.frozen``: each collection of the youngest generation counts toward the older ones, and reading a
    large chart allocates tens of thousands of containers that live until the answer."""
    raw = chart(8_000)
    saved = gc.get_threshold()
    collections = {}
    try:
        for label, start in (("default", lambda: gc.set_threshold(700, *saved[1:])), ("worker", lambda: frozen(None))):
            start()
            before = gc.get_stats()[0]["collections"]
            parse_json(raw, Limits())
            collections[label] = gc.get_stats()[0]["collections"] - before
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()
    assert gc.get_threshold()[0] == 700 != YOUNG_COLLECTION_EVERY
    assert collections["default"] >= 10 * max(1, collections["worker"])


def test_a_small_body_parses_as_before() -> None:
    raw = chart(10)
    assert len(raw) < SHARED_STRINGS_FROM
    assert parse_json(raw, Limits()) == json.loads(raw)


def traced(call: Any) -> tuple[Any, int, int]:
    """``call()``'s result, the bytes it still holds when it returns and its peak, as tracemalloc counts them."""
    tracemalloc.start()
    try:
        result = call()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, current, peak


def test_the_worker_keeps_one_copy_of_the_body_it_received() -> None:
    """The frame read from the front is let go once unpickled: while the request runs only its body is held."""
    import pickle
    import socket

    body = b"x" * BODY_BYTES
    data = pickle.dumps((7, Request("POST", "/", [], body, "127.0.0.1", ("127.0.0.1", 80))), protocol=5)
    frame = HEADER.pack(len(data)) + data
    del body, data
    front, worker = socket.socketpair()
    with front, worker:
        sender = threading.Thread(target=front.sendall, args=(frame,))
        sender.start()
        received, current, peak = traced(lambda: recv_request(worker))
        sender.join()
    assert received[0] == 7 and len(received[1].body) == BODY_BYTES
    assert current < 1.2 * BODY_BYTES  # the body; the frame is gone
    assert peak < 2.2 * BODY_BYTES  # frame + body while unpickling, never a list of chunks beside a joined copy


def test_the_app_reads_the_body_the_worker_hands_over_without_copying_it(app: Any) -> None:
    """Under the front, the body object itself reaches ``parse_json``: while it is parsed, the process holds the
    body, its decoded text and the parsed values, not werkzeug's buffer and copy besides."""
    body = json.dumps({"hook": "order-select", "pad": "x" * BODY_BYTES}).encode()
    request = Request("POST", "/cds-services/spine-order-select", [("Content-Type", "application/json")], body,
                      "127.0.0.1", ("127.0.0.1", 80))
    call_app(app, request)  # first call: lazy set-up in Flask and the app is not counted
    reply, _current, peak = traced(lambda: call_app(app, request))
    assert reply.status.startswith("400")  # the body is read and parsed, then refused by the envelope check
    assert peak < 2.4 * BODY_BYTES  # text + the long string value; werkzeug's get_data would add 2 copies


def test_a_call_hands_its_body_and_outcome_to_the_worker_to_free_after_the_answer(app: Any) -> None:
    """Under the front, the hook view leaves the parsed body and the call's outcome (record index, facts, cards)
    with the worker, which lets go of them once the answer is sent; the answer is the same either way."""
    body = json.dumps(hook_request(materialise("seed-worsening-benign-vcf", date.today()), "order-select",
                                   with_prefetch=True, fhir_server=None)).encode()
    request = Request("POST", "/cds-services/spine-order-select", [("Content-Type", "application/json")], body,
                      "127.0.0.1", ("127.0.0.1", 80))
    held: list[Any] = []
    reply = call_app(app, request, held)
    assert reply.status.startswith("200") and json.loads(reply.body)["cards"]
    assert [type(item) for item in held] == [dict, HookOutcome]
    assert held[0]["hook"] == "order-select"
    assert call_app(app, request).body == reply.body  # the same answer without the worker's list


def test_the_worker_frees_what_a_call_held_only_after_sending_its_answer() -> None:
    class Held:
        pass

    refs: list[weakref.ref[Held]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        kept = Held()
        refs.append(weakref.ref(kept))
        environ["cds.held"].append(kept)
        start_response("200 OK", [])
        return [b"answer"]

    alive_when_sent: list[bool] = []

    def send(reply: Reply) -> None:
        alive_when_sent.append(refs[0]() is not None)
        assert reply.body == b"answer"

    run_call(app, Request("POST", "/x", [], b"", "127.0.0.1", ("127.0.0.1", 80)), send)
    gc.collect()
    assert alive_when_sent == [True] and refs[0]() is None


GLIBC_PROBE = """
import sys
from cds_service.cli.heap import fix_heap_thresholds
def rss_mb():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) // 1024
fixed = fix_heap_thresholds() if sys.argv[1] == "fixed" else None
big = b"x" * 8_000_000  # a large body, freed: glibc alone would raise its mmap threshold to its size here
del big
before = rss_mb()
blocks = [bytes([i]) * 200_000 for i in range(50)]  # 10 MB in blocks of a large dict table's size
del blocks
print(fixed, rss_mb() - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
@pytest.mark.parametrize("mode", ["fixed", "glibc default"])
def test_a_fixed_mmap_threshold_gives_freed_blocks_back(mode: str) -> None:
    out = subprocess.run([sys.executable, "-c", GLIBC_PROBE, mode], cwd=REPO, capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    retained_mb = int(out[1])
    if mode == "fixed":
        assert out[0] == "True" and retained_mb <= 2
    else:  # what the worker avoids: the blocks came from the heap and stayed resident
        assert retained_mb >= 8


FAULTS_PROBE = """
import ctypes, resource, sys
from pathlib import Path
from cds_service.cds_hooks.validate import Limits, parse_json
from cds_service.cli.heap import M_MMAP_THRESHOLD, fix_heap_thresholds
if sys.argv[1] == "worker":
    assert fix_heap_thresholds()
else:  # glibc's default size, fixed as the worker fixes its own
    assert ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 128 * 1024)
body = Path(sys.argv[2]).read_bytes()
limits = Limits()
for _ in range(3):
    parse_json(body, limits)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    parse_json(body, limits)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
@pytest.mark.parametrize("threshold", ["worker", "128 KiB"])
def test_the_fast_readers_block_is_reused_not_page_faulted_on_every_call(threshold: str, tmp_path: Path) -> None:
    """orjson takes one block of about twelve times the body: below the worker's threshold it comes from the heap
    and the next call reuses it; at 128 KiB it is a fresh mapping every call, faulted in page by page. The body is
    the largest the fast reader takes (just under ``SHARED_STRINGS_FROM``)."""
    per_condition = len(chart(2)) - len(chart(1))
    raw = chart(1 + (SHARED_STRINGS_FROM - 1 - len(chart(1))) // per_condition)
    assert SHARED_STRINGS_FROM - per_condition <= len(raw) < SHARED_STRINGS_FROM
    body = tmp_path / "body.json"
    body.write_bytes(raw)
    faults = float(subprocess.run([sys.executable, "-c", FAULTS_PROBE, threshold, str(body)], cwd=REPO,
                                  capture_output=True, text=True, check=True, timeout=60).stdout)
    if threshold == "worker":
        assert faults < 20
    else:
        assert faults > 100
