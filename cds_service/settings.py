"""Settings: every knob is an environment variable prefixed ``CDS_``.

One table (``SETTINGS``) names each setting, its type, default and meaning; README.md's settings table is
checked against it by ``tests/unit/test_docs.py``. A JSON settings file named by ``CDS_SETTINGS_FILE`` may
add values; the environment always wins over the file.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, make_dataclass, replace
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK_PREFIXES = ("http://127.0.0.1", "http://localhost", "http://[::1]")


@dataclass(frozen=True)
class Setting:
    name: str  # environment variable
    field: str  # attribute on Settings
    kind: type
    default: Any
    meaning: str


SETTINGS: tuple[Setting, ...] = (
    Setting("CDS_SETTINGS_FILE", "settings_file", str, "", "Optional JSON file of `CDS_*` keys; the environment wins over it."),
    Setting("CDS_DATA_DIR", "data_dir", str, "instance", "Directory for local state (SQLite database, metrics scratch)."),
    Setting("CDS_DATABASE_URL", "database_url", str, "", "SQLAlchemy URL of the feedback/audit store; empty = SQLite file `$CDS_DATA_DIR/cds.db`. PostgreSQL: `postgresql+psycopg://user:pw@host/db`."),
    Setting("CDS_HOOKS_DIR", "hooks_dir", str, str(PROJECT_ROOT / "hooks"), "Directory of service definitions (one JSON file per CDS service)."),
    Setting("CDS_CRITERIA", "criteria", str, "", "Active criteria packs, comma-separated, at most one per ACR topic (e.g. `acr-vcf-2018`); only the topics named are active. Empty = every built topic at its newest pack."),
    Setting("CDS_EXTRA_TOPICS_DIR", "extra_topics_dir", str, "", "Optional folder of additional topic folders (site-specific or test topics), loaded like the built ones."),
    Setting("CDS_FHIR_ALLOWLIST", "fhir_allowlist", str, "", "Comma-separated base-URL prefixes of FHIR servers the service may call (SSRF guard). Empty = loopback (any port) only in the unauthenticated development mode; with trusted issuers, no FHIR server until one is listed."),
    Setting("CDS_FHIR_TIMEOUT", "fhir_timeout", float, 0.4, "Seconds allowed for one FHIR HTTP request (connect + read)."),
    Setting("CDS_FHIR_BUDGET", "fhir_budget", float, 0.8, "Seconds allowed for all FHIR fetching of one hook call, pages included."),
    Setting("CDS_CALL_DEADLINE", "call_deadline", float, 1.0, "Seconds one hook call may take in all, FHIR fetching included (must be above `CDS_FHIR_BUDGET`: `serve` refuses to start otherwise); past it, the orders get a 'not checked in time' card, never a rating or a 5xx."),
    Setting("CDS_FHIR_MAX_PAGES", "fhir_max_pages", int, 5, "Most `next` pages followed per prefetch query."),
    Setting("CDS_MAX_BODY_BYTES", "max_body_bytes", int, 10_000_000, "Largest request body accepted (413 above)."),
    Setting("CDS_MAX_JSON_DEPTH", "max_json_depth", int, 64, "Deepest JSON nesting accepted (400 above)."),
    Setting("CDS_MAX_DRAFT_ORDERS", "max_draft_orders", int, 200, "Most draftOrders entries accepted (400 above)."),
    Setting("CDS_MAX_PREFETCH_RESOURCES", "max_prefetch_resources", int, 20_000, "Most resources accepted across all prefetch Bundles (400 above)."),
    Setting("CDS_PUBLIC_BASE_URL", "public_base_url", str, "", "Public base URL clients call (e.g. `https://cds.example.org`); JWT `aud` is checked against it. Empty = the request's own host URL."),
    Setting("CDS_TRUSTED_ISSUERS_FILE", "trusted_issuers_file", str, "", "JSON file of trusted JWT issuers (iss, jku/jwks, tenants). Empty = no client authentication (loopback only)."),
    Setting("CDS_JWT_ALGORITHMS", "jwt_algorithms", str, "ES384,RS384", "Accepted JWT `alg` values (ES256/RS256 may be added; never none/HS*)."),
    Setting("CDS_JWKS_MAX_AGE", "jwks_max_age", int, 3600, "Seconds a fetched JWKS is used before it is fetched again."),
    Setting("CDS_JWKS_MIN_REFETCH", "jwks_min_refetch", int, 60, "Least seconds between two fetches of one JWKS when a token names an unknown `kid` (key rotation without hammering)."),
    Setting("CDS_JWT_CLOCK_SKEW", "jwt_clock_skew", int, 60, "Seconds of clock skew allowed on `exp`/`iat`/`nbf`."),
    Setting("CDS_JWT_MAX_LIFETIME", "jwt_max_lifetime", int, 3600, "Longest accepted JWT lifetime (`exp` - `iat`, seconds); the sandbox uses 300, Epic 900; it also bounds how long a `jti` is remembered."),
    Setting("CDS_CORS_ORIGINS", "cors_origins", str, "*", "Allowed CORS origins, comma-separated, or `*` (the CDS Hooks sandbox calls from a browser)."),
    Setting("CDS_MIRROR_SYSTEM_ACTIONS", "mirror_system_actions", bool, True, "Also put systemActions under `extension.systemActions` (read by the CDS Hooks sandbox)."),
    Setting("CDS_EXPLAIN_OUT_OF_SCOPE", "explain_out_of_scope", bool, False, "Show a card explaining why an order is outside the criteria (for testing); by default such orders get no card, only the `no-criteria-apply` rating."),
    Setting("CDS_LOG_LEVEL", "log_level", str, "INFO", "Log level of the JSON logs."),
    Setting("CDS_WORKERS", "workers", int, 2, "Worker processes for `serve` (each request goes to the least busy one)."),
    Setting("CDS_METRICS_BIND", "metrics_bind", str, "", "Optional `host:port` serving only `/metrics` (e.g. `127.0.0.1:9464` for a local Prometheus); when set, `/metrics` is 404 on the main port."),
    Setting("CDS_METRICS_TOKEN", "metrics_token", str, "", "Optional bearer token `/metrics` requires (`Authorization: Bearer <token>`; Prometheus `authorization.credentials`). Empty = no token."),
)


class _SettingsBase:
    """What every Settings has beyond its fields (which come from ``SETTINGS``: one table, no second list)."""

    @property
    def fhir_allowed_prefixes(self) -> tuple[str, ...]:
        """The configured prefixes; by default loopback only without client authentication (a developer's own
        machine), none with it: a caller's bearer token must not be sent to whatever listens on loopback."""
        configured = tuple(p.strip() for p in self.fhir_allowlist.split(",") if p.strip())
        if configured or self.authentication_configured:
            return configured
        return LOOPBACK_PREFIXES

    @property
    def store_url(self) -> str:
        """The database URL in use: the configured one or the embedded SQLite default."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'cds.db'}"

    @property
    def authentication_configured(self) -> bool:
        return bool(self.trusted_issuers_file)

    def but(self, **changes: Any) -> Any:
        """A copy with some values changed (tests and the CLI use this)."""
        return replace(self, **changes)  # type: ignore[type-var]


# The fields of Settings are the rows of SETTINGS: a setting is added in one place.
Settings = make_dataclass("Settings", [(row.field, row.kind) for row in SETTINGS], bases=(_SettingsBase,),
                          frozen=True)
Settings.__module__ = __name__
Settings.__doc__ = "The service's settings, one attribute per row of ``SETTINGS`` (frozen)."


class SettingsError(ValueError):
    """A setting has a value of the wrong type; start-up stops with this message."""


def _coerce(setting: Setting, raw: Any) -> Any:
    if setting.kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise SettingsError(f"{setting.name} must be true or false, got {raw!r}")
    try:
        return setting.kind(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{setting.name} must be {setting.kind.__name__}, got {raw!r}") from exc


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults, then the settings file, then the environment, then explicit overrides."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {s.field: s.default for s in SETTINGS}
    file_name = env.get("CDS_SETTINGS_FILE", "")
    if file_name:
        try:
            from_file = json.loads(Path(file_name).read_text())
        except (OSError, ValueError) as exc:
            raise SettingsError(f"CDS_SETTINGS_FILE {file_name!r} is not a readable JSON object: {exc}") from exc
        if not isinstance(from_file, dict):
            raise SettingsError(f"CDS_SETTINGS_FILE {file_name!r} must hold a JSON object")
        env = {**{k: str(v) if not isinstance(v, bool) else v for k, v in from_file.items()}, **env}
    by_name = {s.name: s for s in SETTINGS}
    for name, setting in by_name.items():
        if name in env:
            values[setting.field] = _coerce(setting, env[name])
    known = {f.name for f in fields(Settings)}
    for key, value in overrides.items():
        if key not in known:
            raise SettingsError(f"unknown setting {key!r}")
        values[key] = value
    return Settings(**values)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP, IPv6 with or without brackets) is this machine: the bind rule of
    ``serve``, plain-http JWKS URLs and port-free FHIR allowlist entries all depend on it."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
