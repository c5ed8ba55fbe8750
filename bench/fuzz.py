"""The long fuzz run (default 20,000 cases) in-process, plus a bounded part against gunicorn; one report.

Same corpus, mutations and contract as tests/fuzz/ (tests/fuzz/fuzzing.py), but a broken contract is
recorded and the run goes on, so one report lists every distinct failure, grouped by where in
cds_service the unhandled exception was raised (from the service's own error log record).

    .venv/bin/python bench/fuzz.py                       # 20,000 in-process + 1,000 live, about 4-6 min
    .venv/bin/python bench/fuzz.py --examples 2000 --live 0
"""

from __future__ import annotations

import argparse
import http.client
import logging
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cds_service import create_app, web  # noqa: E402
from cds_service.settings import load_settings  # noqa: E402
from tests.conftest import LiveService  # noqa: E402
from tests.fuzz.fuzzing import Case, corpus, fuzz_test  # noqa: E402


class ErrorCapture(logging.Handler):
    """Keeps the innermost cds_service frame of each unhandled exception the service logs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str | None = None  # grouping key: innermost cds_service frame and exception type
        self.message = ""

    def emit(self, record: logging.LogRecord) -> None:
        if not record.exc_info or record.exc_info[1] is None:
            return
        error = record.exc_info[1]
        frames = [f for f in traceback.extract_tb(error.__traceback__) if "/cds_service/" in f.filename]
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno} {frames[-1].name}" if frames else "?"
        self.last = f"{where}: {type(error).__name__}"
        self.message = str(error)[:120]


def in_process(examples: int) -> tuple[Counter[str], dict[str, list[str]]]:
    captured = ErrorCapture()
    logging.getLogger("cds_service").addHandler(captured)
    stats: Counter[str] = Counter()
    failures: list[tuple[Case, str]] = []
    grouped: dict[str, list[str]] = defaultdict(list)
    last_engine: dict[str, bool] = {}
    real_run_hook = web.run_hook

    def spy(*args: Any, **kwargs: Any) -> Any:
        outcome = real_run_hook(*args, **kwargs)
        last_engine["engine"] = outcome.data is not None
        return outcome

    web.run_hook = spy  # this process exists only for the fuzz run
    with tempfile.TemporaryDirectory() as data_dir:
        client = create_app(load_settings({}, data_dir=data_dir)).test_client()

        def send(case: Case) -> tuple[int, bytes, str | None]:
            last_engine.clear()
            captured.last = None
            headers = {"Content-Type": case.content_type} if case.content_type else {}
            response = client.post(case.path, data=case.raw, headers=headers)
            if response.status_code >= 500:
                grouped[captured.last or f"status {response.status_code}"].append(
                    f"{captured.message} <- {case.describe()[:400]}")
            return response.status_code, response.data, response.content_type

        fuzz_test(send, stats, examples, reached=lambda body: last_engine.get("engine", False), failures=failures)()
    for case, message in failures:
        if not message.startswith("5"):  # 5xx are grouped by exception above; other contract breaks by message
            grouped[message.split(" for ", 1)[0]].append(case.describe()[:400])
    return stats, grouped


def live(examples: int) -> tuple[Counter[str], list[tuple[Case, str]]]:
    stats: Counter[str] = Counter()
    failures: list[tuple[Case, str]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        service = LiveService({"CDS_DATA_DIR": data_dir, "CDS_LOG_LEVEL": "WARNING"})
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)

        def send(case: Case) -> tuple[int, bytes, str | None]:
            headers = {"Content-Type": case.content_type} if case.content_type else {}
            for attempt in range(2):  # the server may close the connection after an error answer
                try:
                    connection.request("POST", case.path, body=case.raw, headers=headers)
                    response = connection.getresponse()
                    body = response.read()
                    break
                except (OSError, http.client.HTTPException):
                    connection.close()
                    if attempt:
                        raise
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
            return response.status, body, response.getheader("Content-Type")

        try:
            fuzz_test(send, stats, examples, failures=failures)()
        finally:
            connection.close()
            service.stop()
    return stats, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="in-process cases (Flask test client)")
    parser.add_argument("--live", type=int, default=1_000, help="cases against cds-service serve (gunicorn)")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    print(f"corpus: {len(corpus())} seed bodies")
    started = time.monotonic()
    stats, grouped = in_process(args.examples)
    print(f"in-process: {args.examples} asked, {time.monotonic() - started:.0f} s")
    for key, value in sorted(stats.items()):
        print(f"  {key}: {value}")
    print(f"distinct failures: {len(grouped)}")
    for where, cases in sorted(grouped.items(), key=lambda item: -len(item[1])):
        print(f"  [{len(cases)}x] {where}\n      e.g. {cases[0]}")
    broken = bool(grouped)
    if args.live:
        started = time.monotonic()
        live_stats, live_failures = live(args.live)
        print(f"gunicorn: {args.live} asked, {time.monotonic() - started:.0f} s")
        for key, value in sorted(live_stats.items()):
            print(f"  {key}: {value}")
        for case, message in live_failures[:10]:
            print(f"  FAIL {message[:300]}\n      {case.describe()[:300]}")
        broken = broken or bool(live_failures)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
