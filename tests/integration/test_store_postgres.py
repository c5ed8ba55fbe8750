"""Several processes on one store at once, as gunicorn workers are: on a real PostgreSQL and on SQLite.

Each process opens its own ``Store`` (running the migrations at the same moment as the others), then
stores the same feedback and presents the same jtis: every item must be stored, and accepted, once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.slow

PROCESSES = 4
WORKER = """
import json, sys, time
from cds_service.ops.store import Store
url, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:  # start together, so the migrations and inserts really overlap
    time.sleep(0.005)
store = Store(url)
stored = sum(store.save_feedback("svc", [{"card": f"card-{n}", "outcome": "overridden",
                                          "outcomeTimestamp": "2026-01-15T10:05:31Z"}]) for n in range(100))
fresh = sum(store.remember_jti(f"jti-{n}", "iss", int(time.time()) + 300) for n in range(50))
print(json.dumps({"stored": stored, "fresh": fresh}))
"""


def test_processes_starting_together_migrate_once_and_store_each_item_once(database_url: str) -> None:
    start = time.time() + 2.0
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, database_url, str(start)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(PROCESSES)]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        results.append(json.loads(out))
    assert sum(r["stored"] for r in results) == 100
    assert sum(r["fresh"] for r in results) == 50
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM feedback")).scalar() == 100
        assert conn.execute(sa.text("SELECT count(*) FROM jti")).scalar() == 50
        assert conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all() == [1]
    engine.dispose()
