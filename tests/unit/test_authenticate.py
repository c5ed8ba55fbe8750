"""Client JWT checks with real signed tokens: the sandbox's public ES384 test key, an Epic-style RS384 key
made here and served as a JWKS from loopback, and the spec's own example token (expired)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cds_service.cds_hooks.authenticate import load_trusted_issuers, parse_algorithms
from cds_service.cds_hooks.errors import Unauthorized
from cds_service.cds_hooks.tokens import Authenticator
from cds_service.ops.store import Store
from cds_service.settings import SettingsError
from tests.helpers import (
    EXTERNAL,
    REPO,
    SANDBOX_ISS,
    SANDBOX_JKU,
    SANDBOX_KID,
    JsonServer,
    sandbox_key,
)
from tests.helpers import sandbox_token as signed_by_sandbox

ISSUERS_DIR = REPO / "tests" / "data" / "issuers"
EPIC_ISS = "https://fhir.epic-like.example.org/api/FHIR/R4"
BASE = "https://cds.example.org"
AUD = f"{BASE}/cds-services/spine-order-select"
SANDBOX_KEY = sandbox_key()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sandbox_token(aud: Any = AUD, **claims: Any) -> str:
    """The sandbox's token (tests/helpers.py), for this file's default audience."""
    return signed_by_sandbox(aud, **claims)


class JwksServer(JsonServer):
    """JWKS documents by path on loopback, counting fetches (Epic serves keys at a jku)."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        super().__init__(lambda path: (200, self.documents[path]) if path in self.documents else (404, {}))


class EpicKey:
    """An RS384 key pair like an Epic organisation's, with its public JWKS entry."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        self.jwk = {**jwk, "kid": kid, "use": "sig", "alg": "RS384"}

    def token(self, jku: str, aud: Any = AUD, **claims: Any) -> str:
        """Epic's shape: RS384, jku header, sub and nbf = iat - 5 min."""
        now = int(time.time())
        payload = {"iss": EPIC_ISS, "sub": "epic-client-id", "aud": aud, "iat": now, "nbf": now - 300,
                   "exp": now + 300, "jti": str(uuid.uuid4()), **claims}
        return jwt.encode(payload, self.private, algorithm="RS384", headers={"kid": self.kid, "jku": jku})


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.stop()


@pytest.fixture
def epic_key(jwks_server: JwksServer) -> EpicKey:
    key = EpicKey("epic-2026-1")
    jwks_server.documents["/keys.json"] = {"keys": [key.jwk]}
    return key


def spec_example() -> dict[str, Any]:
    return json.loads((EXTERNAL / "spec-jwt-example.json").read_text())


def write_issuers(directory: Path, jwks_server: JwksServer, **extra: Any) -> Path:
    """Sandbox (pinned JWKS file), an Epic-style issuer (JWKS at its jku) and the spec example's issuer."""
    example = spec_example()
    (directory / "sandbox-jwks.json").write_text((ISSUERS_DIR / "sandbox-jwks.json").read_text())
    (directory / "example-jwks.json").write_text(json.dumps(example["jwks_public"]))
    entries = [
        {"iss": SANDBOX_ISS, "jku": [SANDBOX_JKU], "jwks_file": "sandbox-jwks.json"},
        {"iss": EPIC_ISS, "jku": [jwks_server.url("/keys.json")], "algorithms": ["RS384"], **extra},
        {"iss": example["payload"]["iss"], "jku": example["header"]["jku"], "jwks_file": "example-jwks.json"},
    ]
    path = directory / "issuers.json"
    path.write_text(json.dumps(entries))
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'auth.db'}")
    yield store
    store.close()


def make_authenticator(path: Path, store: Store, min_refetch: float = 60.0) -> Authenticator:
    issuers = load_trusted_issuers(str(path), parse_algorithms("ES384,RS384"))
    return Authenticator(issuers, clock_skew=60, remember_jti=store.remember_jti, jwks_min_refetch=min_refetch)


@pytest.fixture
def auth(tmp_path: Path, jwks_server: JwksServer, epic_key: EpicKey, store: Store) -> Authenticator:
    return make_authenticator(write_issuers(tmp_path, jwks_server), store)


def rejected(auth: Authenticator, token: str, audience: str = AUD) -> str:
    with pytest.raises(Unauthorized) as caught:
        auth.verify(f"Bearer {token}", audience)
    return caught.value.message


def hs256_with_public_key(payload: dict[str, Any], kid: str) -> str:
    """The classic alg-confusion forgery: HMAC keyed with the issuer's published public key."""
    public_pem = SANDBOX_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': kid}).encode())}." \
                    f"{b64(json.dumps(payload).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_sandbox_es384_token_is_accepted(auth: Authenticator) -> None:
    claims = auth.verify(f"Bearer {sandbox_token()}", AUD)
    assert claims["iss"] == SANDBOX_ISS


def test_epic_rs384_token_with_sub_and_nbf_is_accepted(auth: Authenticator, epic_key: EpicKey,
                                                       jwks_server: JwksServer) -> None:
    for _ in range(3):
        claims = auth.verify(f"Bearer {epic_key.token(jwks_server.url('/keys.json'))}", AUD)
        assert claims["sub"] == "epic-client-id"
    assert jwks_server.hits == {"/keys.json": 1}  # cached


def test_aud_may_be_an_array_holding_the_url_called(auth: Authenticator) -> None:
    auth.verify(f"Bearer {sandbox_token(aud=['https://other.example.org', AUD])}", AUD)


def test_alg_none_is_rejected(auth: Authenticator) -> None:
    now = int(time.time())
    token = jwt.encode({"iss": SANDBOX_ISS, "aud": AUD, "iat": now, "exp": now + 300, "jti": "n1"}, None,
                       algorithm="none", headers={"kid": SANDBOX_KID})
    assert "alg" in rejected(auth, token)


def test_hs256_signed_with_the_public_key_is_rejected(auth: Authenticator) -> None:
    now = int(time.time())
    payload = {"iss": SANDBOX_ISS, "aud": AUD, "iat": now, "exp": now + 300, "jti": "h1"}
    assert "alg 'HS256' not accepted" in rejected(auth, hs256_with_public_key(payload, SANDBOX_KID))


@pytest.mark.parametrize("audience", ["https://evil.example.org/cds-services/spine-order-select",
                                      f"{BASE}/cds-services/spine-order-sign", f"{BASE}/cds-services",
                                      f"{AUD}/feedback"])
def test_token_for_another_url_is_rejected(auth: Authenticator, audience: str) -> None:
    assert "InvalidAudienceError" in rejected(auth, sandbox_token(aud=audience))


def test_expired_token_is_rejected(auth: Authenticator) -> None:
    now = int(time.time())
    assert "ExpiredSignatureError" in rejected(auth, sandbox_token(iat=now - 1000, exp=now - 700))


def test_token_living_longer_than_the_cap_is_rejected(auth: Authenticator) -> None:
    now = int(time.time())
    assert "lifetime over 3600 s" in rejected(auth, sandbox_token(iat=now, exp=now + 3601))
    auth.verify(f"Bearer {sandbox_token(iat=now, exp=now + 900)}", AUD)  # Epic's 15 minutes pass


def test_token_without_typ_is_rejected(auth: Authenticator) -> None:
    now = int(time.time())
    payload = {"iss": SANDBOX_ISS, "aud": AUD, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    token = jwt.encode(payload, SANDBOX_KEY, algorithm="ES384", headers={"kid": SANDBOX_KID, "typ": None})
    assert "typ" not in jwt.get_unverified_header(token)
    assert "typ missing or not JWT" in rejected(auth, token)


def test_iat_in_the_future_is_rejected(auth: Authenticator) -> None:
    now = int(time.time())
    assert "ImmatureSignatureError" in rejected(auth, sandbox_token(iat=now + 600, exp=now + 900))


def test_nbf_in_the_future_is_rejected(auth: Authenticator, epic_key: EpicKey, jwks_server: JwksServer) -> None:
    token = epic_key.token(jwks_server.url("/keys.json"), nbf=int(time.time()) + 600)
    assert "ImmatureSignatureError" in rejected(auth, token)


def test_clock_skew_is_allowed(auth: Authenticator) -> None:
    now = int(time.time())
    auth.verify(f"Bearer {sandbox_token(iat=now + 30, exp=now - 30)}", AUD)


def test_replayed_jti_is_rejected(auth: Authenticator) -> None:
    token = sandbox_token()
    auth.verify(f"Bearer {token}", AUD)
    assert "replayed jti" in rejected(auth, token)


def test_missing_jti_is_rejected(auth: Authenticator) -> None:
    assert "MissingRequiredClaimError" in rejected(auth, sandbox_token(jti=None))


def test_unknown_issuer_is_rejected(auth: Authenticator) -> None:
    assert "iss is not a trusted issuer" in rejected(auth, sandbox_token(iss="https://evil.example.org"))


def test_jku_not_on_the_allowlist_is_rejected_without_fetching(auth: Authenticator, epic_key: EpicKey,
                                                              jwks_server: JwksServer) -> None:
    jwks_server.documents["/attacker.json"] = {"keys": [epic_key.jwk]}
    assert "jku is not on the issuer's allowlist" in rejected(auth, epic_key.token(jwks_server.url("/attacker.json")))
    assert jwks_server.hits == {}


def test_jku_that_is_not_a_string_is_rejected(auth: Authenticator, epic_key: EpicKey,
                                              jwks_server: JwksServer) -> None:
    now = int(time.time())
    token = jwt.encode({"iss": EPIC_ISS, "aud": AUD, "iat": now, "exp": now + 300, "jti": "l"}, epic_key.private,
                       algorithm="RS384", headers={"kid": epic_key.kid, "jku": [jwks_server.url("/keys.json")]})
    assert "jku is not on the issuer's allowlist" in rejected(auth, token)


def test_unknown_kid_is_rejected_and_refetches_are_rate_limited(auth: Authenticator, jwks_server: JwksServer) -> None:
    stranger = EpicKey("not-published")
    for _ in range(3):
        assert "kid not in the issuer's JWKS" in rejected(auth, stranger.token(jwks_server.url("/keys.json")))
    assert jwks_server.hits == {"/keys.json": 1}


def test_rotated_key_is_picked_up_by_a_refetch(tmp_path: Path, jwks_server: JwksServer, epic_key: EpicKey,
                                               store: Store) -> None:
    auth = make_authenticator(write_issuers(tmp_path, jwks_server), store, min_refetch=0)
    jku = jwks_server.url("/keys.json")
    auth.verify(f"Bearer {epic_key.token(jku)}", AUD)
    rotated = EpicKey("epic-2026-2")
    jwks_server.documents["/keys.json"] = {"keys": [epic_key.jwk, rotated.jwk]}
    auth.verify(f"Bearer {rotated.token(jku)}", AUD)
    assert jwks_server.hits == {"/keys.json": 2}


def test_tampered_payload_is_rejected(auth: Authenticator) -> None:
    header, payload, signature = sandbox_token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = b64(json.dumps({**claims, "aud": f"{BASE}/cds-services/spine-order-sign"}).encode())
    message = rejected(auth, f"{header}.{forged}.{signature}", f"{BASE}/cds-services/spine-order-sign")
    assert "InvalidSignatureError" in message


def test_token_signed_by_another_key_under_the_sandbox_kid_is_rejected(auth: Authenticator) -> None:
    impostor = EpicKey(SANDBOX_KID)
    now = int(time.time())
    token = jwt.encode({"iss": SANDBOX_ISS, "aud": AUD, "iat": now, "exp": now + 300, "jti": "x"},
                       impostor.private, algorithm="RS384", headers={"kid": SANDBOX_KID})
    # RS384 is allowed for the sandbox issuer, so the alg check passes; the sandbox's JWK declares ES384
    assert rejected(auth, token) == "key's JWK declares another alg or is not a signing key"


def test_spec_example_token_is_rejected_as_expired(auth: Authenticator) -> None:
    example = spec_example()
    assert "ExpiredSignatureError" in rejected(auth, example["authorization_header_token"],
                                               example["payload"]["aud"])


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer  ", "Bearer not-a-jwt",
                                    "Bearer " + "a" * 20_000])
def test_missing_or_malformed_authorization_is_rejected(auth: Authenticator, header: str | None) -> None:
    with pytest.raises(Unauthorized):
        auth.verify(header, AUD)


def test_tenant_must_be_listed_when_the_issuer_has_tenants(tmp_path: Path, jwks_server: JwksServer,
                                                          epic_key: EpicKey, store: Store) -> None:
    auth = make_authenticator(write_issuers(tmp_path, jwks_server, tenants=["org-1"]), store)
    jku = jwks_server.url("/keys.json")
    assert "tenant" in rejected(auth, epic_key.token(jku))
    assert "tenant" in rejected(auth, epic_key.token(jku, tenant="org-2"))
    assert auth.verify(f"Bearer {epic_key.token(jku, tenant='org-1')}", AUD)["tenant"] == "org-1"


@pytest.mark.parametrize("text", ["HS256", "none", "ES384,HS512", "", "RS384,foo"])
def test_symmetric_or_unknown_algorithms_stop_start_up(text: str) -> None:
    with pytest.raises(SettingsError):
        parse_algorithms(text)


@pytest.mark.parametrize("entry, message", [
    ({"iss": "x"}, "needs jku, jwks_url or jwks_file"),
    ({"iss": "x", "jku": "http://keys.example.org/jwks"}, "must be https"),
    ({"iss": "x", "jwks_url": "ftp://keys.example.org/jwks"}, "not an absolute URL"),
    ({"iss": "x", "jku": "https://k.example.org", "algorithms": ["PS512"]}, "not in CDS_JWT_ALGORITHMS"),
    ({"iss": "x", "jwks_file": "missing.json"}, "does not exist"),
    ({"iss": "x", "jku": "https://k.example.org", "secret": "s"}, "unknown keys"),
])
def test_bad_trusted_issuer_entries_stop_start_up(tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(SettingsError, match=message):
        load_trusted_issuers(str(path), ("ES384", "RS384"))


def test_the_example_issuer_file_loads() -> None:
    issuers = load_trusted_issuers(str(ISSUERS_DIR / "sandbox-dev.json"), ("ES384", "RS384"))
    assert issuers[SANDBOX_ISS].algorithms == ("ES384",)


# Over HTTP: the Flask app as served, with the same trusted issuers and a public base URL.

def bad_token(kind: str, epic_key: EpicKey, jwks_server: JwksServer) -> str:
    now = int(time.time())
    if kind == "none":
        return jwt.encode({"iss": SANDBOX_ISS, "aud": AUD, "iat": now, "exp": now + 300, "jti": kind}, None,
                          algorithm="none", headers={"kid": SANDBOX_KID})
    if kind == "hs256-public-key":
        return hs256_with_public_key({"iss": SANDBOX_ISS, "aud": AUD, "iat": now, "exp": now + 300, "jti": kind},
                                     SANDBOX_KID)
    if kind == "tampered":
        header, payload, signature = sandbox_token(aud=f"{BASE}/cds-services").split(".")
        forged = {**json.loads(base64.urlsafe_b64decode(payload + "==")), "aud": AUD}
        return f"{header}.{b64(json.dumps(forged).encode())}.{signature}"
    if kind == "spec-example":
        return spec_example()["authorization_header_token"]
    jku = jwks_server.url("/keys.json")
    return {
        "wrong-aud": lambda: sandbox_token(aud="https://evil.example.org/cds-services/spine-order-select"),
        "other-service": lambda: sandbox_token(aud=f"{BASE}/cds-services/spine-order-sign"),
        "expired": lambda: sandbox_token(iat=now - 1000, exp=now - 700),
        "iat-future": lambda: sandbox_token(iat=now + 600, exp=now + 900),
        "unknown-iss": lambda: sandbox_token(iss="https://evil.example.org"),
        "jku-not-allowlisted": lambda: epic_key.token(jwks_server.url("/attacker.json")),
        "unknown-kid": lambda: EpicKey("not-published").token(jku),
    }[kind]()


@pytest.fixture
def secured_client(settings: Any, tmp_path: Path, jwks_server: JwksServer, epic_key: EpicKey) -> Any:
    from cds_service import create_app

    issuers = write_issuers(tmp_path, jwks_server)
    return create_app(settings.but(trusted_issuers_file=str(issuers), public_base_url=BASE)).test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


BAD_KINDS = ["none", "hs256-public-key", "wrong-aud", "other-service", "expired", "iat-future", "unknown-iss",
             "jku-not-allowlisted", "unknown-kid", "tampered", "spec-example"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_tokens_get_a_generic_401_over_http(secured_client: Any, epic_key: EpicKey, jwks_server: JwksServer,
                                                kind: str, caplog: pytest.LogCaptureFixture) -> None:
    token = bad_token(kind, epic_key, jwks_server)
    response = secured_client.post("/cds-services/spine-order-select", data="{not json",
                                   headers={**bearer(token), "Content-Type": "application/json"})
    assert response.status_code == 401  # authentication runs before the malformed body is looked at
    assert response.json["issue"][0]["diagnostics"] == "unauthorized"
    logged = [r for r in caplog.records if r.getMessage() == "authentication failed"]
    assert logged and logged[0].reason
    assert all(token not in str(vars(r)) for r in caplog.records)


def test_good_tokens_pass_on_every_endpoint_over_http(secured_client: Any, epic_key: EpicKey,
                                                      jwks_server: JwksServer) -> None:
    assert secured_client.get("/cds-services", headers=bearer(sandbox_token(aud=f"{BASE}/cds-services"))
                              ).status_code == 200
    epic = epic_key.token(jwks_server.url("/keys.json"))
    response = secured_client.post("/cds-services/spine-order-select", data="{not json",
                                   headers={**bearer(epic), "Content-Type": "application/json"})
    assert response.status_code == 400  # past authentication, stopped by validation
    feedback = json.loads((EXTERNAL / "sandbox-feedback-accepted.json").read_text())
    response = secured_client.post(f"{AUD}/feedback", json=feedback,
                                   headers=bearer(sandbox_token(aud=f"{AUD}/feedback")))
    assert response.status_code == 200 and response.json["stored"] == 1


def test_service_token_is_refused_on_feedback_and_replay_is_refused(secured_client: Any) -> None:
    feedback = json.loads((EXTERNAL / "sandbox-feedback-accepted.json").read_text())
    assert secured_client.post(f"{AUD}/feedback", json=feedback, headers=bearer(sandbox_token())).status_code == 401
    token = sandbox_token(aud=f"{AUD}/feedback")
    assert secured_client.post(f"{AUD}/feedback", json=feedback, headers=bearer(token)).status_code == 200
    assert secured_client.post(f"{AUD}/feedback", json=feedback, headers=bearer(token)).status_code == 401


def test_missing_token_is_401_but_operations_and_preflight_need_none(secured_client: Any) -> None:
    assert secured_client.get("/cds-services").status_code == 401
    for path in ("/healthz", "/readyz", "/metrics"):
        assert secured_client.get(path).status_code == 200, path
    preflight = secured_client.options("/cds-services/spine-order-select", headers={
        "Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 200
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
