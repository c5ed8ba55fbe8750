"""Prometheus metrics, correct across gunicorn workers, with bounded labels.

Under ``cds-service serve`` the CLI sets ``PROMETHEUS_MULTIPROC_DIR`` before anything imports
``prometheus_client`` (the client picks its storage when imported): each worker then writes its values to
files there and ``/metrics`` sums every worker's files, whichever worker answers the scrape. Without that
variable (tests, a single process) values live in this process's registry.

Labels take only values the service defines (service ids, prefetch keys of its hook definitions, card
indicators, rating codes, fetch outcomes); anything else is counted as ``unknown``, so a client cannot grow
the number of series by sending odd ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

UNKNOWN = "unknown"
ENDPOINTS = frozenset({"discovery", "hook", "feedback", "healthz", "readyz", "metrics", "preflight", "other"})
INDICATORS = frozenset({"info", "warning", "critical"})
RATING_STATUSES = frozenset({"rated", "no-criteria-apply", "no-variant"})
RATING_CATEGORIES = frozenset({"usually-appropriate", "may-be-appropriate", "usually-not-appropriate", "none"})
ORIGINS = frozenset({"prefetch", "fetched", "none", "missing"})
FHIR_OUTCOMES = frozenset({"ok", "timeout", "http-error", "connection-error", "malformed", "not-fhir",
                           "operation-outcome", "not-allowed"})
FEEDBACK_OUTCOMES = frozenset({"accepted", "overridden"})
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST

_active: Metrics | None = None


def _bounded(value: object, allowed: Iterable[str]) -> str:
    return value if isinstance(value, str) and value in allowed else UNKNOWN


class Metrics:
    """The service's instruments. One per process; ``install`` makes it the target of ``observe_fhir``."""

    def __init__(self, service_ids: Iterable[str], prefetch_keys: Iterable[str]) -> None:
        self.services = frozenset(service_ids) | {"none"}
        self.prefetch_keys = frozenset(prefetch_keys)
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("cds_http_requests", "HTTP requests answered", ["endpoint", "service", "status"],
                                registry=r)
        self.latency = Histogram("cds_http_request_seconds", "Time to answer an HTTP request",
                                 ["endpoint", "service", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.prefetch = Counter("cds_prefetch_keys", "Prefetch keys of hook calls, by where the data came from "
                                "(prefetch = supplied by the client, fetched = read from the FHIR server)",
                                ["service", "key", "origin"], registry=r)
        self.fhir_calls = Counter("cds_fhir_requests", "FHIR queries made, by outcome", ["key", "outcome"],
                                  registry=r)
        self.fhir_latency = Histogram("cds_fhir_request_seconds", "Time of one FHIR query, pages included",
                                      ["key"], buckets=LATENCY_BUCKETS, registry=r)
        self.cards = Counter("cds_cards", "Cards returned, by indicator", ["service", "indicator"], registry=r)
        self.ratings = Counter("cds_ratings", "Orders rated, by status and category",
                               ["service", "status", "category"], registry=r)
        self.feedback = Counter("cds_feedback", "Feedback items received", ["service", "outcome"], registry=r)
        self.feedback_stored = Counter("cds_feedback_stored", "Feedback items stored (repeats are not)",
                                       ["service"], registry=r)
        self.auth_failures = Counter("cds_auth_failures", "Requests refused with 401", registry=r)
        self.audit_failures = Counter("cds_audit_failures", "Hook calls answered whose audit rows could not be "
                                      "written", registry=r)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def _labelled(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, kept: a hook call touches about fifteen series and ``labels()`` checks its
        arguments and takes a lock each time. Bounded like the labels themselves; the child is the one the
        metric holds, so values and multiprocess files are the same."""
        child = self._children.get((id(metric), labels))
        if child is None:
            child = self._children[(id(metric), labels)] = metric.labels(*labels)
        return child

    def service(self, service_id: object) -> str:
        return _bounded(service_id, self.services)

    def observe_request(self, endpoint: str, service_id: object, status: int, seconds: float) -> None:
        labels = (_bounded(endpoint, ENDPOINTS), self.service(service_id), str(status) if 100 <= status < 600
                  else UNKNOWN)
        self._labelled(self.requests, *labels).inc()
        self._labelled(self.latency, *labels).observe(seconds)
        if status == 401:
            self.auth_failures.inc()

    def observe_prefetch(self, service_id: str, origins: dict[str, str]) -> None:
        for key, origin in origins.items():
            self._labelled(self.prefetch, self.service(service_id), _bounded(key, self.prefetch_keys),
                                 _bounded(origin, ORIGINS)).inc()

    def observe_fhir(self, key: str, seconds: float, outcome: str) -> None:
        self._labelled(self.fhir_calls, _bounded(key, self.prefetch_keys), _bounded(outcome, FHIR_OUTCOMES)).inc()
        self._labelled(self.fhir_latency, _bounded(key, self.prefetch_keys)).observe(seconds)

    def observe_card(self, service_id: str, indicator: object) -> None:
        self._labelled(self.cards, self.service(service_id), _bounded(indicator, INDICATORS)).inc()

    def observe_rating(self, service_id: str, status: object, category: object) -> None:
        self._labelled(self.ratings, self.service(service_id), _bounded(status, RATING_STATUSES),
                            _bounded(category or "none", RATING_CATEGORIES)).inc()

    def observe_feedback(self, service_id: str, outcomes: Iterable[object], stored: int) -> None:
        for outcome in outcomes:
            self._labelled(self.feedback, self.service(service_id), _bounded(outcome, FEEDBACK_OUTCOMES)).inc()
        self._labelled(self.feedback_stored, self.service(service_id)).inc(stored)

    def exposition(self) -> bytes:
        """The text format for ``/metrics``: every worker's values in multiprocess mode, else this process's."""
        if multiprocess_mode():
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
            return generate_latest(registry)
        return generate_latest(self.registry)


def multiprocess_mode() -> bool:
    """True when prometheus_client was imported with PROMETHEUS_MULTIPROC_DIR set (values go to files);
    setting the variable later changes nothing, so the import-time choice is what counts."""
    return values.ValueClass is not values.MutexValue and "PROMETHEUS_MULTIPROC_DIR" in os.environ


def install(metrics: Metrics) -> None:
    """Make ``metrics`` the process's target for ``observe_fhir`` (called once per app)."""
    global _active
    _active = metrics


def observe_fhir(key: str, seconds: float, outcome: str) -> None:
    """For the FHIR fetcher: one query for prefetch ``key`` took ``seconds`` and ended in ``outcome``."""
    if _active is not None:
        _active.observe_fhir(key, seconds, outcome)
