"""The token checks of ``authenticate.py`` (PyJWT + cryptography): loaded only when trusted issuers are
configured (``build_authenticator``), so a service that checks no tokens never imports them.

The checks, the key sets and why each rule holds are described in ``authenticate.py``'s docstring.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests

from ..waits import waiting_on_network
from .authenticate import JWKS_TIMEOUT_S, MAX_JWKS_BYTES, MAX_TOKEN_CHARS, REQUIRED_CLAIMS, RememberJti, TrustedIssuer
from .errors import Unauthorized

log = logging.getLogger(__name__)


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
        with waiting_on_network(), requests.get(self.source, timeout=JWKS_TIMEOUT_S, allow_redirects=False,
                                                stream=True, headers={"Accept": "application/json"}) as response:
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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
