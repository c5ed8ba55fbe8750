"""Step 1 of the request path: check the client's JWT (CDS Hooks 2.0 #trusting-cds-clients).

Every discovery, service and feedback call carries ``Authorization: Bearer <JWT>``. Accepted only when:
the header ``alg`` is an allowed asymmetric algorithm (never ``none`` or HMAC: an HS256 token "signed" with
a public key must not pass); ``kid`` names a key of the issuer's JWKS; a ``jku`` header is on the issuer's
allowlist (keys are only ever fetched from configured URLs: SSRF guard); ``iss`` (and ``tenant``) are
trusted; ``aud`` is the exact URL called; ``exp``/``iat``/``nbf`` hold within the clock skew; and ``jti``
was never seen before, across every worker process (the store keeps it until the token expires).
Any failure raises ``Unauthorized`` with a reason for the log; the token itself is never logged.
Signature checks are PyJWT + cryptography; nothing here is hand-written crypto. This module reads the
configuration; the checks themselves are in ``tokens.py``, imported only when trusted issuers are configured
(a worker of a service that checks no tokens does not hold PyJWT and cryptography: about 4-9 MB).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..settings import Settings, SettingsError, is_loopback

if TYPE_CHECKING:
    from .tokens import Authenticator

log = logging.getLogger(__name__)

ASYMMETRIC = frozenset({"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
MAX_TOKEN_CHARS = 16_384
MAX_JWKS_BYTES = 262_144
JWKS_TIMEOUT_S = 3.0
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")

RememberJti = Callable[[str, str, int], bool]  # (jti, iss, expires_at) -> False on a replay


@dataclass(frozen=True)
class TrustedIssuer:
    """One allowlisted client. Keys come from ``jwks_file`` (pinned), else the token's allowlisted ``jku``,
    else ``jwks_url``, else the first allowlisted ``jku``."""

    iss: str
    jku: tuple[str, ...] = ()
    jwks_url: str | None = None
    jwks_file: str | None = None
    tenants: tuple[str, ...] = ()  # when set, a token must carry one of these ``tenant`` values
    algorithms: tuple[str, ...] = ()  # empty = the service-wide CDS_JWT_ALGORITHMS

    @property
    def allowed_jku(self) -> frozenset[str]:
        return frozenset(self.jku + ((self.jwks_url,) if self.jwks_url else ()))


def parse_algorithms(text: str) -> tuple[str, ...]:
    """Asymmetric JWS algorithms only: a configured ``none`` or ``HS*`` stops start-up."""
    algorithms = tuple(a.strip() for a in text.split(",") if a.strip())
    bad = [a for a in algorithms if a not in ASYMMETRIC]
    if bad or not algorithms:
        raise SettingsError(f"JWT algorithms must be among {sorted(ASYMMETRIC)}, got {text!r}")
    return algorithms


def _check_url(url: Any, where: str) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or not parts.hostname or parts.scheme not in ("https", "http"):
        raise SettingsError(f"{where}: {url!r} is not an absolute URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise SettingsError(f"{where}: {url!r} must be https (plain http only on loopback, for tests)")
    return url


def _issuer_algorithms(listed: Any, default: tuple[str, ...], where: str) -> tuple[str, ...]:
    """An issuer may narrow CDS_JWT_ALGORITHMS, never widen it."""
    if not listed:
        return default
    if not isinstance(listed, list) or not all(isinstance(a, str) for a in listed):
        raise SettingsError(f"{where}.algorithms: must be a list of strings")
    outside = [a for a in parse_algorithms(",".join(listed)) if a not in default]
    if outside:
        raise SettingsError(f"{where}.algorithms: {outside} not in CDS_JWT_ALGORITHMS")
    return tuple(listed)


def load_trusted_issuers(path: str, default_algorithms: tuple[str, ...]) -> dict[str, TrustedIssuer]:
    """Read CDS_TRUSTED_ISSUERS_FILE: a JSON list of {iss, jku?, jwks_url?, jwks_file?, tenants?, algorithms?}."""
    try:
        entries = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"CDS_TRUSTED_ISSUERS_FILE {path!r} is not readable JSON: {exc}") from exc
    if not isinstance(entries, list) or not entries:
        raise SettingsError(f"CDS_TRUSTED_ISSUERS_FILE {path!r} must hold a non-empty JSON list")
    issuers: dict[str, TrustedIssuer] = {}
    for index, entry in enumerate(entries):
        where = f"CDS_TRUSTED_ISSUERS_FILE[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("iss"), str) or not entry["iss"]:
            raise SettingsError(f"{where}: needs an 'iss' string")
        unknown = set(entry) - {"iss", "jku", "jwks_url", "jwks_file", "tenants", "algorithms"}
        if unknown:
            raise SettingsError(f"{where}: unknown keys {sorted(unknown)}")
        jku = entry.get("jku", [])
        jku = (jku,) if isinstance(jku, str) else tuple(jku)
        jwks_file = entry.get("jwks_file")
        if jwks_file is not None:
            jwks_file = str((Path(path).parent / jwks_file).resolve())
            if not Path(jwks_file).is_file():
                raise SettingsError(f"{where}: jwks_file {jwks_file!r} does not exist")
        algorithms = entry.get("algorithms")
        issuer = TrustedIssuer(
            iss=entry["iss"],
            jku=tuple(_check_url(u, f"{where}.jku") for u in jku),
            jwks_url=_check_url(entry["jwks_url"], f"{where}.jwks_url") if "jwks_url" in entry else None,
            jwks_file=jwks_file,
            tenants=tuple(str(t) for t in entry.get("tenants", [])),
            algorithms=_issuer_algorithms(algorithms, default_algorithms, where),
        )
        if not (issuer.jku or issuer.jwks_url or issuer.jwks_file):
            raise SettingsError(f"{where}: needs jku, jwks_url or jwks_file")
        if issuer.iss in issuers:
            raise SettingsError(f"{where}: duplicate iss {issuer.iss!r}")
        issuers[issuer.iss] = issuer
    return issuers


def build_authenticator(settings: Settings, remember_jti: RememberJti) -> Authenticator | None:
    """None when no trusted issuers are configured: the service runs open (``serve`` allows that on loopback)."""
    algorithms = parse_algorithms(settings.jwt_algorithms)
    if not settings.trusted_issuers_file:
        return None
    issuers = load_trusted_issuers(settings.trusted_issuers_file, algorithms)
    if not settings.public_base_url:
        log.warning("CDS_PUBLIC_BASE_URL is empty: JWT aud is checked against the request's Host header")
    from .tokens import Authenticator  # PyJWT and cryptography: only a service that checks tokens loads them

    return Authenticator(issuers, clock_skew=settings.jwt_clock_skew, remember_jti=remember_jti,
                         jwks_max_age=settings.jwks_max_age, jwks_min_refetch=settings.jwks_min_refetch,
                         max_lifetime=settings.jwt_max_lifetime)
