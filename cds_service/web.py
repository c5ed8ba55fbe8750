"""The HTTP edge: routes, CORS, limits and errors as JSON. The only module that touches ``flask.request``.

Endpoints (CDS Hooks 2.0): ``GET /cds-services`` (discovery), ``POST /cds-services/{id}`` (hook call),
``POST /cds-services/{id}/feedback``; plus ``/healthz``, ``/readyz`` and ``/metrics`` for operations.
Every error is a JSON OperationOutcome naming the field; a bug becomes a generic 500 with a request id,
never a traceback.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from .cds_hooks.errors import CdsError, RequestRejected, Unauthorized, operation_outcome
from .cds_hooks.fastjson import encode_like_jsonify
from .cds_hooks.hook_definitions import discovery_document
from .cds_hooks.openapi import document_bytes
from .cds_hooks.validate import parse_json
from .datafiles import first_error
from .ops import metrics
from .ops.logs import REQUEST_ID
from .pipeline import run_hook

log = logging.getLogger(__name__)
bp = Blueprint("cds", __name__)
JSON_TYPES = ("application/json", "application/fhir+json")


def services() -> Any:
    return current_app.extensions["cds"]


def public_url(path: str) -> str:
    """The URL the client called, as the client sees it (JWT ``aud``): configured base URL behind a proxy."""
    base = services().settings.public_base_url.rstrip("/") or request.host_url.rstrip("/")
    return base + path


@bp.before_app_request
def start_request() -> None:
    g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    g.request_id_token = REQUEST_ID.set(g.request_id)
    g.started = time.perf_counter()


@bp.teardown_app_request
def end_request(_error: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        REQUEST_ID.reset(token)


def authenticate() -> None:
    """Runs before body validation: an unauthenticated caller learns nothing about the body's faults."""
    authenticator = services().authenticator
    if authenticator is not None:
        authenticator.verify(request.headers.get("Authorization"), public_url(request.path))


def read_json_body() -> Any:
    if request.mimetype not in JSON_TYPES:
        raise CdsError(f"Content-Type must be application/json, got {request.mimetype or 'none'!r}",
                       status=415, field="Content-Type", code="not-supported")
    return parse_json(request_body(), services().engine.limits)


def request_body() -> bytes:
    """The body as one ``bytes``. Under ``cds-service serve`` the front has read it in full and refused one over
    ``CDS_MAX_BODY_BYTES`` (413) already, and hands over that very object (``cds.body``): werkzeug's
    ``get_data`` would copy it twice more (a growing buffer, then ``bytes``), 3 copies of a 6 MB body at once."""
    body = request.environ.get("cds.body")
    return body if isinstance(body, bytes) else request.get_data(cache=False)


def known_service(service_id: str) -> Any:
    definition = services().engine.definitions.get(service_id)
    if definition is None:
        raise CdsError(f"no CDS service with id {service_id[:100]!r}", status=404, field="id", code="not-found")
    return definition


# The CDS Hooks sandbox builds service URLs as `${discoveryUrl}/${id}`: a discovery URL typed with a trailing
# slash yields `/cds-services//{id}`. Both spellings are served as they are (no redirect: a redirected POST
# loses CORS in the browser, and the JWT `aud` is the URL the client called).
@bp.get("/cds-services", strict_slashes=False)
def discovery() -> Response:
    authenticate()
    return jsonify(discovery_document(services().engine.definitions))


@bp.post("/cds-services/<service_id>")
@bp.post("/cds-services//<service_id>")
def call_service(service_id: str) -> Response:
    authenticate()
    definition = known_service(service_id)
    body = read_json_body()
    outcome = run_hook(body, definition, services().engine, datetime.now(UTC))
    services().record(outcome)
    free_after_answer(body, outcome)
    return answer(outcome.response)


def free_after_answer(*objects: Any) -> None:
    """Under ``cds-service serve`` the worker frees these once the answer is sent (``workers.call_app``):
    freeing a typical call's parsed body, record index and facts took about 0.1 ms before the answer left.
    Elsewhere (gunicorn, a test client) they are freed as the view returns, as before."""
    held = request.environ.get("cds.held")
    if isinstance(held, list):
        held.extend(objects)


def answer(document: dict[str, Any]) -> Response:
    """``jsonify(document)``, byte for byte; written by orjson where that gives the same bytes (fastjson.py)."""
    provider = current_app.json
    plain = (type(provider) is DefaultJSONProvider and provider.ensure_ascii  # as create_app leaves it
             and (provider.compact or (provider.compact is None and not current_app.debug)))
    encoded = encode_like_jsonify(document, sort_keys=provider.sort_keys) if plain else None
    if encoded is None:
        return jsonify(document)
    return current_app.response_class(encoded, mimetype=provider.mimetype)


@bp.post("/cds-services/<service_id>/feedback")
@bp.post("/cds-services//<service_id>/feedback")
def feedback(service_id: str) -> Response:
    authenticate()
    known_service(service_id)
    body = read_json_body()
    problem = first_error("feedback", body)
    if problem:
        raise RequestRejected(problem, field=problem.split(":", 1)[0])
    stored = services().save_feedback(service_id, body["feedback"])
    answer: dict[str, Any] = {"stored": stored, "received": len(body["feedback"])}
    unknown = services().store.unknown_cards(item["card"] for item in body["feedback"])
    if unknown:  # kept (the audit row may be what is missing) but said, and left out of `report`
        log.info("feedback for cards never issued", extra={"service": service_id, "cards": len(unknown)})
        answer["comment"] = (f"{len(unknown)} of the cards named were never issued by this service (no audit "
                             "record); the feedback is stored but not counted in the acceptance report")
        answer["unknownCards"] = unknown
    return jsonify(answer)


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI description of every route (cds_hooks/openapi.json, checked against these routes)."""
    return Response(document_bytes(), mimetype="application/json")


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    checks = services().readiness()
    status = 200 if all(checks.values()) else 503
    return jsonify({"status": "ok" if status == 200 else "unavailable", "checks": checks}), status


@bp.get("/metrics")
def metrics_route() -> Response:
    """Prometheus scrape; no client JWT (like /healthz). With ``CDS_METRICS_BIND`` it is served only on that
    address (404 on the main port); with ``CDS_METRICS_TOKEN`` it needs that bearer token."""
    settings = services().settings
    if settings.metrics_bind and request.environ.get("cds.listener") != "metrics":
        raise CdsError("no such endpoint on this address", status=404, field="(path)", code="not-found")
    if settings.metrics_token and not hmac.compare_digest(
            request.headers.get("Authorization", "").encode(), f"Bearer {settings.metrics_token}".encode()):
        return error_response(401, "unauthorized", "login")
    return Response(services().metrics.exposition(), mimetype=metrics.CONTENT_TYPE)


ENDPOINTS = {"cds.discovery": "discovery", "cds.call_service": "hook", "cds.feedback": "feedback",
             "cds.healthz": "healthz", "cds.readyz": "readyz", "cds.metrics_route": "metrics"}


@bp.after_app_request
def count_and_log(response: Response) -> Response:
    """One JSON log line and one metric sample per request: route, known service id, status, duration."""
    endpoint = "preflight" if request.method == "OPTIONS" else ENDPOINTS.get(request.endpoint or "", "other")
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    observed = services().metrics
    service = observed.service((request.view_args or {}).get("service_id", "none"))
    observed.observe_request(endpoint, service, response.status_code, seconds)
    fields = {"method": request.method, "endpoint": endpoint, "service": service,
              "status": response.status_code, "duration_ms": round(seconds * 1000, 1)}
    if "error_code" in g:  # a refusal: why (OperationOutcome code) and which field, never the values
        fields.update(reason=g.error_code, field=g.error_field)
    log.info("request", extra=fields)
    return response


@bp.after_app_request
def add_cors_and_id(response: Response) -> Response:
    """CORS as the CDS Hooks sandbox needs it: it calls from a browser with Authorization + Content-Type."""
    allowed = services().settings.cors_origins.strip()
    origin = request.headers.get("Origin")
    if allowed == "*":
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin and origin in {o.strip() for o in allowed.split(",")}:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    response.headers["Access-Control-Max-Age"] = "600"
    response.headers["X-Request-Id"] = g.get("request_id", "")
    response.headers["Cache-Control"] = "no-store"  # answers carry patient data: no cache may keep them
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def error_response(status: int, message: str, code: str, field: str | None = None) -> Response:
    g.error_code, g.error_field = code, (field or "")[:100]  # for the request log line (count_and_log)
    response = jsonify(operation_outcome(message, code=code, field=field))
    response.status_code = status
    return response


def handle_cds_error(error: CdsError) -> Response:
    if isinstance(error, Unauthorized):
        log.warning("authentication failed", extra={"reason": error.message, "path": request.path})
        return error_response(401, "unauthorized", "login")
    return error_response(error.status, error.message, error.code, error.field)


def handle_http_error(error: HTTPException) -> Response:
    if isinstance(error, RequestEntityTooLarge):
        limit = services().settings.max_body_bytes
        return error_response(413, f"request body larger than {limit} bytes", "too-large", "(body)")
    if isinstance(error, MethodNotAllowed):
        allowed = ", ".join(sorted(error.valid_methods or ()))
        response = error_response(405, f"method {request.method} is not allowed on {request.path[:200]}; "
                                  f"allowed: {allowed}", "not-supported", "(method)")
    elif isinstance(error, NotFound):
        response = error_response(404, f"no endpoint at {request.path[:200]}; this service answers "
                                  f"{known_paths()}", "not-found", "(path)")
    else:
        response = error_response(error.code or 500, error.description or error.name, "processing")
    for name, value in error.get_headers():  # e.g. Allow on 405, as HTTP requires
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def known_paths() -> str:
    """The paths the app routes (from its URL map, so the 404 message cannot drift from the routes)."""
    paths = {rule.rule.replace("<service_id>", "{id}") for rule in current_app.url_map.iter_rules()
             if rule.endpoint != "static" and "//" not in rule.rule}
    return ", ".join(sorted(paths))


def handle_unexpected(error: Exception) -> Response:
    log.error("unhandled error", exc_info=error, extra={"path": request.path})
    return error_response(500, f"internal error (request id {g.get('request_id', '')})", "exception")


def register(app: Flask) -> None:
    app.url_map.merge_slashes = False  # see the note above discovery()
    app.register_blueprint(bp)
    app.register_error_handler(CdsError, handle_cds_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
