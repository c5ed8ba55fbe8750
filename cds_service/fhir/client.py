"""The only module that talks HTTP to a FHIR server: parallel, budgeted, allowlisted GETs.

``FhirFetcher`` is built once per app (one pooled ``requests.Session``, one thread pool) because a hook
call has under a second for all of its FHIR reads: every prefetch query runs at the same time, each
request has its own timeout, and a wall-clock deadline bounds the whole call, slow trickling bodies
included (bodies are read chunk by chunk and the deadline is checked between chunks). Only servers on
the allowlist are called (SSRF guard), ``next`` links must stay under the same base, and redirects are
never followed. Every failure is a typed ``FetchResult``; nothing here raises for a network problem.
Logs carry the prefetch key, outcome, HTTP status and duration, never the URL (it holds the patient id)
or the token.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import http.cookiejar
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import SplitResult, unquote, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from ..ops import metrics
from ..settings import Settings, is_loopback
from ..waits import waiting_on_network
from .counts import over_count, page_count

log = logging.getLogger(__name__)

Outcome = Literal["ok", "timeout", "http-error", "connection-error", "malformed", "not-fhir",
                  "operation-outcome", "not-allowed", "internal-error"]

PARALLEL = 64  # threads and pooled connections per app: one per prefetch query (10) of each request thread (4),
# with room, so a slow FHIR server behind one call does not queue another call's queries
WRAP_UP_S = 0.05  # workers stop this long before the deadline so partial pages still reach the caller
CHUNK_BYTES = 65_536
MAX_RESPONSE_BYTES = 32_000_000  # one page; a searchset of 200 large resources is a few MB
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class FetchResult:
    """What one prefetch query produced. ``reason`` is for clinicians and integrators: no URL, no token."""

    outcome: Outcome
    reason: str = ""
    resource: Mapping[str, Any] | None = None  # the resource, or a Bundle with the entries of every page
    http_status: int | None = None
    pages: int = 0
    complete: bool = True  # False when a later page could not be read; ``resource`` holds the pages read
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


class _Deadline(Exception):
    """The per-request timeout or the call's budget ran out while reading a body."""


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int | None  # None: a loopback allowlist prefix that named no port, so any port matches
    path: str  # without trailing slash; "" for the root


def _origin(url: str, *, default_port: bool = True) -> _Origin | None:
    """Scheme, host, port and path of an absolute http(s) URL; None for anything odd (userinfo, dots).

    Without an explicit port the scheme's default is assumed, except for a loopback allowlist prefix
    (``default_port`` False): ``http://127.0.0.1`` allows every port on this machine (test and sidecar servers),
    while ``https://ehr.example.org`` means port 443 only. Percent-encoded dots and slashes in the path are
    refused, as a server that decodes before normalising would follow them: ``/R4/%2e%2e/internal`` cannot
    climb out of an allowlisted base.
    """
    try:
        parts: SplitResult = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    if any(part in {".", ".."} for seg in parts.path.split("/") for part in unquote(seg).split("/")):
        return None
    if port is None and (default_port or not is_loopback(parts.hostname)):
        port = _DEFAULT_PORTS[scheme]
    return _Origin(scheme, parts.hostname.lower(), port, parts.path.rstrip("/"))


def _under(url: _Origin, base: _Origin) -> bool:
    """Same scheme, host and port, and the path starts with the base path at a segment boundary."""
    if (url.scheme, url.host) != (base.scheme, base.host) or base.port not in {None, url.port}:
        return False
    return url.path == base.path or url.path.startswith(base.path + "/")


def _report(key: str, outcome: str, elapsed_s: float, status: int | None = None, pages: int = 0) -> None:
    """One log line and one metric per prefetch key: never the URL (it holds the patient id) or the token."""
    log.info("fhir fetch", extra={"prefetch_key": key, "outcome": outcome, "status": status, "pages": pages,
                                  "duration_ms": round(1000 * elapsed_s)})
    metrics.observe_fhir(key, elapsed_s, outcome)


# One text for "nothing listens there" and "something answered 404": the caller must not learn which ports
# are open on a host from the wording (issue 17); the metrics and the fetch log keep the outcome apart.
UNREACHABLE = "the FHIR server could not be reached or has no such resource"


class FhirFetcher:
    """Parallel FHIR reads for hook calls; safe to share between request threads."""

    def __init__(self, settings: Settings) -> None:
        self._timeout = settings.fhir_timeout
        self._max_pages = settings.fhir_max_pages
        self._allowed = tuple(o for o in (_origin(p, default_port=False) for p in settings.fhir_allowed_prefixes)
                              if o)
        self._session = requests.Session()
        self._session.trust_env = False  # no proxies or .netrc credentials from the environment
        self._session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        adapter = HTTPAdapter(pool_connections=PARALLEL, pool_maxsize=PARALLEL, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="fhir")

    def is_allowed(self, url: str) -> bool:
        """True when ``url`` lies under one of the allowlisted prefixes (parsed, not string-compared)."""
        target = _origin(url)
        return target is not None and any(_under(target, allowed) for allowed in self._allowed)

    def fetch_all(self, base_url: str, token: str | None, queries: Mapping[str, str],
                  budget_s: float) -> Mapping[str, FetchResult]:
        """Run every query (relative to ``base_url``) in parallel; return by key within ``budget_s``.

        Queries still running at the deadline are reported as timeouts; their threads stop on their own
        at the next chunk or socket timeout, and their results are discarded.
        """
        if not self.is_allowed(base_url):
            reason = f"fhirServer {_display(base_url)} is not on the allowlist (CDS_FHIR_ALLOWLIST)"
            return {key: FetchResult("not-allowed", reason) for key in queries}
        started = time.monotonic()
        deadline = started + budget_s
        work_deadline = deadline - min(WRAP_UP_S, budget_s / 10)
        base = base_url.rstrip("/")
        headers = {"Accept": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # Each query runs in the caller's context, so its log line carries the hook call's request id.
        futures = {key: self._pool.submit(contextvars.copy_context().run, self._fetch_one, key,
                                          f"{base}/{query.lstrip('/')}", base, headers, work_deadline, budget_s)
                   for key, query in queries.items()}
        with waiting_on_network():
            concurrent.futures.wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
        results: dict[str, FetchResult] = {}
        for key, future in futures.items():
            if future.done():
                results[key] = _result_of(key, future)
            else:
                future.cancel()
                results[key] = FetchResult("timeout", f"no answer within the {budget_s:g} s budget for FHIR calls",
                                           elapsed_s=time.monotonic() - started)
                _report(key, "timeout", time.monotonic() - started)
        return results

    def close(self) -> None:
        """Stop the threads and drop pooled connections (app teardown, tests)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._session.close()

    def _fetch_one(self, key: str, url: str, base: str, headers: Mapping[str, str], deadline: float,
                   budget_s: float) -> FetchResult:
        """One query, following ``next`` links; logs the outcome without the URL."""
        started = time.monotonic()
        result = self._pages(url, base, headers, deadline, budget_s)
        elapsed = time.monotonic() - started
        _report(key, result.outcome, elapsed, result.http_status, result.pages)
        return FetchResult(result.outcome, result.reason, result.resource, result.http_status, result.pages,
                           result.complete, elapsed)

    def _pages(self, url: str, base: str, headers: Mapping[str, str], deadline: float,
               budget_s: float) -> FetchResult:
        base_origin, target = _origin(base), _origin(url)
        if target is None or base_origin is None or not _under(target, base_origin):
            return FetchResult("not-allowed", "the filled prefetch template leaves the fhirServer base")
        first = self._get(url, headers, deadline, budget_s)
        if not first.ok or first.resource is None or first.resource.get("resourceType") != "Bundle":
            return first
        count = page_count(url)
        entries = list(_items(first.resource.get("entry")))
        if count is not None and len(entries) > count:
            return _merged(first, entries[:count], 1, over_count(len(entries), count, "on one page"))
        seen = {url}
        pages = 1
        next_url = _next_link(first.resource)
        while next_url:
            target = _origin(next_url)
            if next_url in seen:
                return _merged(first, entries, pages, "the server's next links loop; stopped paging")
            if target is None or base_origin is None or not _under(target, base_origin) or not self.is_allowed(
                    next_url):
                return _merged(first, entries, pages, "a next link pointed outside the fhirServer base")
            if pages >= self._max_pages:
                return _merged(first, entries, pages, f"stopped after {pages} pages (CDS_FHIR_MAX_PAGES)")
            seen.add(next_url)
            page = self._get(next_url, headers, deadline, budget_s)
            if not page.ok or page.resource is None or page.resource.get("resourceType") != "Bundle":
                return _merged(first, entries, pages, f"page {pages + 1}: {page.reason or 'not a Bundle'}")
            pages += 1
            items = _items(page.resource.get("entry"))
            if count is not None and len(items) > count:  # a server that ignores _count: stop reading it
                return _merged(first, [*entries, *items[:count]], pages,
                               over_count(len(items), count, f"on page {pages}"))
            entries.extend(items)
            next_url = _next_link(page.resource)
        return _merged(first, entries, pages, "")

    def _get(self, url: str, headers: Mapping[str, str], deadline: float, budget_s: float) -> FetchResult:
        """One GET with a wall-clock limit of min(fhir_timeout, what is left of the budget)."""
        start = time.monotonic()
        stop = min(start + self._timeout, deadline)
        why_late = (f"timed out after {self._timeout:g} s" if start + self._timeout <= deadline
                    else f"the {budget_s:g} s budget for FHIR calls ran out")
        if stop - start <= 0:
            return FetchResult("timeout", why_late)
        try:
            with self._session.get(url, headers=dict(headers), timeout=stop - start, stream=True,
                                   allow_redirects=False) as response:
                status = response.status_code
                if status == 404:  # worded as a failed connection: an error text must not map open ports
                    return FetchResult("http-error", UNREACHABLE, http_status=status)
                if not 200 <= status < 300:
                    return FetchResult("http-error", f"FHIR server answered {status}", http_status=status)
                body = _read_body(response, stop)
        except (_Deadline, requests.Timeout, urllib3.exceptions.TimeoutError):
            return FetchResult("timeout", why_late)
        except (requests.RequestException, urllib3.exceptions.HTTPError):  # never the exception text: it has the URL
            return FetchResult("connection-error", UNREACHABLE)
        return _classify(body, status)


def _read_body(response: requests.Response, stop: float) -> bytes:
    """Read the body chunk by chunk so a trickling server cannot hold us past ``stop``."""
    buffer = bytearray()
    while True:
        if time.monotonic() >= stop:
            raise _Deadline
        chunk = response.raw.read1(CHUNK_BYTES, decode_content=True)
        if not chunk:
            return bytes(buffer)
        buffer.extend(chunk)
        if len(buffer) > MAX_RESPONSE_BYTES:
            raise requests.RequestException("response too large")


def _result_of(key: str, future: concurrent.futures.Future[FetchResult]) -> FetchResult:
    """A finished query's result. Transport and parse faults of the server's answer are handled where they
    happen (``_get``, ``_classify``); anything that still escapes is a bug in this module, so it is logged as
    an error with its traceback (for us, never in the response) and the data counts as missing, not as the
    server's fault."""
    try:
        return future.result()
    except Exception:
        log.exception("fhir client bug", extra={"prefetch_key": key})
        _report(key, "internal-error", 0.0)
        return FetchResult("internal-error", "the service could not process this query (an internal error, logged)")


def _items(value: Any) -> list[Any]:
    """A JSON array's items; anything else (a server's ``"entry": 5``) holds none."""
    return value if isinstance(value, list) else []


def _classify(body: bytes, status: int) -> FetchResult:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return FetchResult("malformed", "the FHIR server's answer is not valid JSON", http_status=status)
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        return FetchResult("not-fhir", "the FHIR server's answer is not a FHIR resource", http_status=status)
    if data["resourceType"] == "Bundle" and not isinstance(data.get("entry", []), list):
        return FetchResult("malformed", "the FHIR server's Bundle has no entry list", http_status=status)
    if data["resourceType"] == "OperationOutcome" or only_failing_outcomes(data):
        return FetchResult("operation-outcome", f"the FHIR server answered with an OperationOutcome ({_issue(data)})",
                           http_status=status)
    return FetchResult("ok", resource=data, http_status=status, pages=1)


def only_failing_outcomes(data: Mapping[str, Any]) -> bool:
    """A Bundle whose only entries are OperationOutcomes with an error: the search failed."""
    if data.get("resourceType") != "Bundle":
        return False
    resources = [e.get("resource") for e in _items(data.get("entry")) if isinstance(e, dict)]
    return bool(resources) and all(
        isinstance(r, dict) and r.get("resourceType") == "OperationOutcome"
        and any(i.get("severity") in {"error", "fatal"} for i in _items(r.get("issue")) if isinstance(i, dict))
        for r in resources)


def _issue(data: Mapping[str, Any]) -> str:
    """The first issue's severity and code; diagnostics are left out (they may name the patient)."""
    outcome = data
    if data.get("resourceType") == "Bundle":
        outcome = next(e["resource"] for e in _items(data.get("entry"))
                       if isinstance(e, dict) and isinstance(e.get("resource"), dict))
    issues = [i for i in _items(outcome.get("issue")) if isinstance(i, dict)]
    if not issues:
        return "no issue given"
    return f"{issues[0].get('severity', '?')}: {issues[0].get('code', '?')}"


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in _items(bundle.get("link")):
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _merged(first: FetchResult, entries: list[Any], pages: int, problem: str) -> FetchResult:
    """One Bundle holding the entries of every page read; ``problem`` marks it incomplete."""
    bundle = {**(first.resource or {}), "entry": entries}
    bundle.pop("link", None)
    return FetchResult("ok", problem, bundle, first.http_status, pages, complete=not problem)


def _display(url: str) -> str:
    """A base URL fit for a message: scheme, host, port and path only (no query, no userinfo)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparseable URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"
