"""Step 1 of the request path: check the client's JWT (CDS Hooks 2.0 #trusting-cds-clients).

Every discovery, service and feedback call carries ``Authorization: Bearer <JWT>``. Accepted only when:
the header ``alg`` is an allowed asymmetric algorithm (never ``none`` or HMAC: an HS256 token "signed" with
a public key must not pass); ``kid`` names a key of the issuer's JWKS; a ``jku`` header is on the issuer's
allowlist (keys are only ever fetched from configured URLs: SSRF guard); ``iss`` (and ``tenant``) are
trusted; ``aud`` is the exact URL called; ``exp``/``iat``/``nbf`` hold within the clock skew; and ``jti``
was never seen before, across every worker process (the store keeps it until the token expires).
Any failure raises ``Unauthorized`` with a reason for the log; the token itself is never logged.
Signature checks are PyJWT + cryptography; nothing here is hand-written crypto.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests

from ..settings import Settings, SettingsError, is_loopback
from .errors import Unauthorized

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


@dataclass(frozen=True)
class Key:
    """A public key and what its JWK declares (PyJWK guesses an ``alg`` when the JWK has none)."""

    jwk: jwt.PyJWK
    alg: str | None
    use: str | None


class KeySet:
    """One JWKS (URL or file), cached: refetched when older than ``max_age`` or, at most once per
    ``min_refetch`` seconds, when a token names a kid it does not hold (key rotation)."""

    def __init__(self, source: str, is_file: bool, max_age: float, min_refetch: float) -> None:
        self.source, self.is_file = source, is_file
        self.max_age, self.min_refetch = max_age, min_refetch
        self._keys: dict[str, Key] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def key(self, kid: str) -> Key | None:
        with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at > self.max_age
            may_refetch = now - self._fetched_at >= self.min_refetch
            if stale or (kid not in self._keys and may_refetch):
                self._refresh(now)
            return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        self._fetched_at = now  # also on failure: a dead JWKS URL is not hammered by every request
        try:
            keys = _usable_keys(self._read())
        except (OSError, ValueError, requests.RequestException, jwt.PyJWTError) as exc:
            log.warning("JWKS unavailable, keeping cached keys", extra={"jwks": self.source, "reason": str(exc)})
            return
        self._keys = keys

    def _read(self) -> dict[str, Any]:
        if self.is_file:
            return json.loads(Path(self.source).read_text())
        with requests.get(self.source, timeout=JWKS_TIMEOUT_S, allow_redirects=False, stream=True,
                          headers={"Accept": "application/json"}) as response:
            response.raise_for_status()
            body = response.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
        return json.loads(body)


def _usable_keys(document: Any) -> dict[str, Key]:
    """Keys with a kid that PyJWT can load; others (unknown kty, private-only) are skipped, not fatal."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set")
    keys = {}
    for entry in document["keys"]:
        if isinstance(entry, dict) and isinstance(entry.get("kid"), str):
            try:
                keys[entry["kid"]] = Key(jwt.PyJWK(entry), entry.get("alg"), entry.get("use"))
            except jwt.PyJWTError:
                continue
    return keys


class Authenticator:
    """Verifies bearer JWTs against the trusted issuers; one per process, shared by its threads."""

    def __init__(self, issuers: Mapping[str, TrustedIssuer], *, clock_skew: int, remember_jti: RememberJti,
                 jwks_max_age: float = 3600.0, jwks_min_refetch: float = 60.0, max_lifetime: int = 3600) -> None:
        self.issuers = dict(issuers)
        self.clock_skew = clock_skew
        self.max_lifetime = max_lifetime
        self.remember_jti = remember_jti
        self._jwks_max_age, self._jwks_min_refetch = jwks_max_age, jwks_min_refetch
        self._key_sets: dict[str, KeySet] = {}
        self._lock = threading.Lock()

    def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The token's claims when every check passes, else ``Unauthorized`` naming the failed check."""
        token = _bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"malformed JWT: {exc}") from exc
        issuer = self.issuers.get(unverified.get("iss")) if isinstance(unverified.get("iss"), str) else None
        if issuer is None:
            raise Unauthorized("iss is not a trusted issuer")
        alg = header.get("alg")
        if alg not in issuer.algorithms:
            raise Unauthorized(f"alg {str(alg)[:20]!r} not accepted for this issuer")
        if not isinstance(header.get("typ"), str) or header["typ"].upper() != "JWT":
            raise Unauthorized("typ missing or not JWT")  # REQUIRED in CDS Hooks 2.0 #trusting-cds-clients
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("kid missing")
        key = self._key_set(issuer, header.get("jku")).key(kid)
        if key is None:
            raise Unauthorized("kid not in the issuer's JWKS")
        if key.alg not in (None, alg) or key.use not in (None, "sig"):
            raise Unauthorized("key's JWK declares another alg or is not a signing key")
        claims = self._decode(token, key.jwk, alg, audience, issuer.iss)
        self._check_tenant(issuer, claims)
        if not _is_number(claims["iat"]) or not _is_number(claims["exp"]) \
                or claims["exp"] - claims["iat"] > self.max_lifetime:
            raise Unauthorized(f"token lifetime over {self.max_lifetime} s")
        jti = claims["jti"]
        if not isinstance(jti, str) or not 0 < len(jti) <= 256:
            raise Unauthorized("jti must be a string of 1-256 characters")
        if not self.remember_jti(jti, issuer.iss, int(claims["exp"]) + self.clock_skew):
            raise Unauthorized(f"replayed jti {jti!r}")
        log.debug("client authenticated", extra={"iss": issuer.iss, "tenant": claims.get("tenant"), "jti": jti})
        return claims

    def _decode(self, token: str, key: jwt.PyJWK, alg: str, audience: str, iss: str) -> dict[str, Any]:
        try:
            return jwt.decode(token, key=key.key, algorithms=[alg], audience=audience, issuer=iss,
                              leeway=self.clock_skew, options={"require": list(REQUIRED_CLAIMS)})
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"JWT rejected: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _check_tenant(issuer: TrustedIssuer, claims: Mapping[str, Any]) -> None:
        tenant = claims.get("tenant")
        if issuer.tenants and tenant not in issuer.tenants:
            raise Unauthorized("tenant missing or not trusted for this issuer")

    def _key_set(self, issuer: TrustedIssuer, jku: Any) -> KeySet:
        if jku is not None and (not isinstance(jku, str) or jku not in issuer.allowed_jku):
            raise Unauthorized("jku is not on the issuer's allowlist")
        if issuer.jwks_file:
            source, is_file = issuer.jwks_file, True
        else:
            source, is_file = jku or issuer.jwks_url or issuer.jku[0], False
        with self._lock:
            if source not in self._key_sets:
                self._key_sets[source] = KeySet(source, is_file, self._jwks_max_age, self._jwks_min_refetch)
            return self._key_sets[source]


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization is not a Bearer token")
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthorized(f"token longer than {MAX_TOKEN_CHARS} characters")
    return token.strip()


def build_authenticator(settings: Settings, remember_jti: RememberJti) -> Authenticator | None:
    """None when no trusted issuers are configured: the service runs open (``serve`` allows that on loopback)."""
    algorithms = parse_algorithms(settings.jwt_algorithms)
    if not settings.trusted_issuers_file:
        return None
    issuers = load_trusted_issuers(settings.trusted_issuers_file, algorithms)
    if not settings.public_base_url:
        log.warning("CDS_PUBLIC_BASE_URL is empty: JWT aud is checked against the request's Host header")
    return Authenticator(issuers, clock_skew=settings.jwt_clock_skew, remember_jti=remember_jti,
                         jwks_max_age=settings.jwks_max_age, jwks_min_refetch=settings.jwks_min_refetch,
                         max_lifetime=settings.jwt_max_lifetime)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
