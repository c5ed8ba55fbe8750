"""The service's database: feedback, the rating audit trail and the JWT replay cache.

SQLAlchemy Core, one code path for SQLite (default, a file under ``CDS_DATA_DIR``) and PostgreSQL.
Several gunicorn workers write at once, so:

- every duplicate check is a UNIQUE constraint plus ``INSERT ... ON CONFLICT DO NOTHING`` (never
  check-then-insert, which two workers can both pass);
- SQLite runs in WAL mode with a busy timeout, and every transaction starts with ``BEGIN IMMEDIATE`` so a
  writer waits for the lock up front instead of failing when it upgrades a read lock;
- SQLite's ``synchronous=NORMAL`` (in WAL mode): a commit does not wait for an fsync, so every hook call's audit
  write stays cheap; committed rows survive a crash of the service, but the last ones may be lost if the
  machine loses power or the OS crashes (the file stays consistent). PostgreSQL keeps its own settings;
- the schema is versioned by a ``schema_version`` table and ordered migration steps, applied under a lock
  (PostgreSQL advisory lock; SQLite's write lock). Three small tables do not need Alembic's machinery and
  its extra dependency; a new step is one function appended to ``MIGRATIONS``.

Nothing stored here is a name or free text: feedback keeps the coded override reason but never
``userComment``; the audit keeps codes, keys and ids the service itself produced.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The dialect module giving each backend's INSERT ... ON CONFLICT; only the configured one is imported (the
# PostgreSQL dialect is about 2 MB a worker on a SQLite store).
INSERT_DIALECTS = {"sqlite": "sqlalchemy.dialects.sqlite", "postgresql": "sqlalchemy.dialects.postgresql"}
JTI_PURGE_INTERVAL_S = 60.0

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

feedback = sa.Table(
    "feedback", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("service_id", sa.String(100), nullable=False),
    sa.Column("card_uuid", sa.String(200), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("outcome_timestamp", sa.String(64), nullable=False),  # as sent: the client's identity for it
    sa.Column("accepted_suggestions", sa.JSON, nullable=False),  # list of suggestion uuids
    sa.Column("override_system", sa.String(512)),
    sa.Column("override_code", sa.String(200)),
    sa.Column("override_display", sa.String(1000)),  # display of a coded reason the service offered
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("service_id", "card_uuid", "outcome", "outcome_timestamp", name="feedback_once"),
)

audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("consult_id", sa.String(100)),  # pama-rating-consult-id of the rated order
    sa.Column("service_id", sa.String(100), nullable=False),
    sa.Column("hook", sa.String(50), nullable=False),
    sa.Column("hook_instance", sa.String(200), nullable=False),  # the request schema allows 200
    sa.Column("order_system", sa.String(512)),
    sa.Column("order_code", sa.String(200)),
    sa.Column("procedure", sa.String(100)),
    sa.Column("variant", sa.String(50)),
    sa.Column("rating_status", sa.String(50)),
    sa.Column("rating_category", sa.String(50)),
    sa.Column("rating_score", sa.Integer),
    sa.Column("criteria_pack", sa.String(50)),
    sa.Column("card_uuid", sa.String(200)),  # a card shown for this rating; joins feedback.card_uuid
    sa.Column("card_kind", sa.String(100)),  # the card's topic code (else indicator)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("audit_card", "card_uuid"),
)

jti = sa.Table(
    "jti", metadata,
    sa.Column("iss", sa.String(500), primary_key=True),
    sa.Column("jti", sa.String(256), primary_key=True),
    sa.Column("expires_at", sa.BigInteger, nullable=False),  # epoch seconds: same meaning in every dialect
    sa.Index("jti_expiry", "expires_at"),
)


def _create_v1(conn: Connection) -> None:
    for table in (feedback, audit, jti):
        table.create(conn, checkfirst=True)


MIGRATIONS: tuple[tuple[int, Callable[[Connection], None]], ...] = ((1, _create_v1),)

AUDIT_COLUMNS = frozenset(c.name for c in audit.columns) - {"id", "created_at"}


class Store:
    """One engine per process (its connection pool is shared by the worker's threads)."""

    def __init__(self, url: str) -> None:
        self.url = sa.engine.make_url(url)
        if self.url.get_backend_name() == "sqlite" and self.url.database not in (None, "", ":memory:"):
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            # Owner-only from the first byte (SQLite gives its -wal/-shm files the database file's mode).
            os.close(os.open(self.url.database, os.O_CREAT | os.O_RDWR, 0o600))
        self.engine = _make_engine(self.url)
        self._insert = importlib.import_module(INSERT_DIALECTS[self.url.get_backend_name()]).insert
        self._purge_lock = threading.Lock()
        self._next_purge = 0.0
        migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        """Readiness: the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def save_feedback(self, service_id: str, items: Sequence[Mapping[str, Any]]) -> int:
        """Store schema-valid feedback items; return how many were new (a repeat of a stored one is not).

        The key is (service, card, outcome, instant): ``outcomeTimestamp`` is stored as its UTC instant, so the
        same moment written as ``Z``, ``+00:00``, ``.000Z`` or ``+01:00`` an hour later is one row. A re-post of
        a key with different content (suggestions, override reason) raises ``FeedbackConflict`` and nothing of
        the batch is stored (one transaction)."""
        if not items:
            return 0
        now = datetime.now(UTC)
        rows = [_feedback_row(service_id, item, now) for item in items]
        statement = (self._insert(feedback).values(rows).on_conflict_do_nothing()
                     .returning(*(feedback.c[k] for k in FEEDBACK_KEY)))
        with self.engine.begin() as conn:
            returned = conn.execute(statement).all()
            inserted = {tuple(r) for r in returned}
            for row in rows:
                key = tuple(row[k] for k in FEEDBACK_KEY)
                if key in inserted:
                    inserted.discard(key)  # a second row with this key in the same batch is compared below
                    continue
                stored = conn.execute(sa.select(*(feedback.c[k] for k in FEEDBACK_CONTENT)).where(
                    *(feedback.c[k] == row[k] for k in FEEDBACK_KEY))).one()
                if tuple(stored) != tuple(row[k] for k in FEEDBACK_CONTENT):
                    raise FeedbackConflict(f"feedback for card {row['card_uuid'][:80]!r} ({row['outcome']} at "
                                           f"{row['outcome_timestamp']}) was already stored with other content")
            return len(returned)

    def record_audit(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append audit rows (keys from ``AUDIT_COLUMNS``; others are refused so nothing unplanned is kept)."""
        now = datetime.now(UTC)
        values = []
        for row in rows:
            unknown = set(row) - AUDIT_COLUMNS
            if unknown:
                raise ValueError(f"audit: unknown columns {sorted(unknown)}")
            values.append({**row, "created_at": now})
        if values:
            with self.engine.begin() as conn:
                conn.execute(audit.insert(), values)

    def remember_jti(self, jti_value: str, iss: str, expires_at: int) -> bool:
        """True the first time (iss, jti) is seen while unexpired, False on a replay, whichever worker saw it."""
        now = int(time.time())
        self._purge_expired(now)
        key = (jti.c.iss == iss) & (jti.c.jti == jti_value)
        statement = (self._insert(jti).values(iss=iss, jti=jti_value, expires_at=expires_at)
                     .on_conflict_do_nothing().returning(jti.c.jti))
        with self.engine.begin() as conn:
            conn.execute(jti.delete().where(key & (jti.c.expires_at < now)))
            return conn.execute(statement).first() is not None

    def _purge_expired(self, now: int) -> None:
        with self._purge_lock:
            if now < self._next_purge:
                return
            self._next_purge = now + JTI_PURGE_INTERVAL_S
        with self.engine.begin() as conn:
            conn.execute(jti.delete().where(jti.c.expires_at < now))

    def report(self) -> list[dict[str, Any]]:
        """Acceptance and override rates per card kind and rating, joining feedback to audit by card uuid.

        A card counts once however often it was shown or reported; feedback for a card the audit does not
        know (another database, audit lost) is not counted.
        """
        rating = sa.func.coalesce(audit.c.rating_category, audit.c.rating_status, "(none)")
        kind = sa.func.coalesce(audit.c.card_kind, "(none)")
        shown = (sa.select(kind.label("card_kind"), rating.label("rating"), audit.c.card_uuid)
                 .where(audit.c.card_uuid.is_not(None)).distinct().subquery())
        answered = (sa.select(feedback.c.card_uuid, feedback.c.outcome).distinct().subquery())
        accepted = sa.func.count(sa.distinct(sa.case((answered.c.outcome == "accepted", answered.c.card_uuid))))
        overridden = sa.func.count(sa.distinct(sa.case((answered.c.outcome == "overridden",
                                                         answered.c.card_uuid))))
        query = (sa.select(shown.c.card_kind, shown.c.rating, sa.func.count(sa.distinct(shown.c.card_uuid)),
                           accepted, overridden)
                 .select_from(shown.outerjoin(answered, answered.c.card_uuid == shown.c.card_uuid))
                 .group_by(shown.c.card_kind, shown.c.rating).order_by(shown.c.card_kind, shown.c.rating))
        with self.engine.connect() as conn:
            result = conn.execute(query).all()
        # No feedback at all on a group's cards: its rates are unknown (None), not 0 %.
        return [{"card_kind": k, "rating": r, "cards": n, "accepted": a, "overridden": o,
                 "acceptance_rate": round(a / n, 3) if a + o else None,
                 "override_rate": round(o / n, 3) if a + o else None}
                for k, r, n, a, o in result]

    def unknown_cards(self, card_uuids: Iterable[str]) -> list[str]:
        """Those of ``card_uuids`` no audit row names: cards this service's store never saw it issue."""
        wanted = sorted(set(card_uuids))
        if not wanted:
            return []
        with self.engine.connect() as conn:
            known = set(conn.execute(sa.select(audit.c.card_uuid).where(audit.c.card_uuid.in_(wanted))).scalars())
        return [uuid for uuid in wanted if uuid not in known]


class FeedbackConflict(ValueError):
    """A feedback key already stored with different content (answered 409)."""


FEEDBACK_KEY = ("service_id", "card_uuid", "outcome", "outcome_timestamp")
FEEDBACK_CONTENT = ("accepted_suggestions", "override_system", "override_code", "override_display")


def instant(text: str) -> str:
    """``outcomeTimestamp`` as a canonical UTC instant (``2026-01-15T10:05:31.000000Z``); a value without a
    timezone or not ISO 8601 is not an instant and is kept as sent (compared as text, as before)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None or "T" not in text.upper():
        return text
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _feedback_row(service_id: str, item: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    reason_block = item.get("overrideReason") or item.get("overrideReasons") or {}  # Epic sends the plural
    reason = reason_block.get("reason") or {}
    return {
        "service_id": service_id,
        "card_uuid": item["card"],
        "outcome": item["outcome"],
        "outcome_timestamp": instant(item["outcomeTimestamp"]),
        "accepted_suggestions": [s["id"] for s in item.get("acceptedSuggestions", []) if "id" in s],
        "override_system": reason.get("system"),
        "override_code": reason.get("code"),
        "override_display": reason.get("display"),
        "received_at": now,
    }


def _make_engine(url: sa.engine.URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _use_wal(cursor: Any) -> None:
    """WAL mode, which the database file keeps once set. Switching needs the file to itself, and SQLite answers
    "database is locked" at once, without its busy timeout, when another process holds it (seen with four
    workers creating one store together): so the mode is read first and the switch retried, up to the timeout."""
    give_up = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > give_up:
                raise
            time.sleep(0.01)


def migrate(engine: Engine) -> int:
    """Bring the schema to the newest version; safe when several workers start at the same moment."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7263514)"))  # released at commit
        schema_version.create(conn, checkfirst=True)
        current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
        for version, step in MIGRATIONS:
            if version > current:
                step(conn)
                conn.execute(schema_version.insert().values(version=version, applied_at=datetime.now(UTC)))
                current = version
        return current
