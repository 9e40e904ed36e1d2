"""Issue 4 under the real runtime: user isolation, Cloudflare Access via WebCrypto, rate limiting
through the Workers Rate Limiting binding (simulated by Miniflare) and CORS.

One extra ``wrangler dev`` runs the repo's ``src/entry.py`` with ``wrangler.authz.toml`` (next to
this file: the ``RATE_LIMITER`` binding, 20 requests per 60 s window per key) and, as ``--var``,
a JWT secret, a CORS allowlist and an Access application whose JWKS (``ACCESS_JWKS``) holds an
RSA key this module generates, so the Worker verifies Access assertions with ``crypto.subtle``.

It is a standalone ``LocalWorker`` with its own KV state rather than a ``sibling()`` of the
session worker: nothing here needs the session worker's data, and depending on it would start a
second ``wrangler dev`` when this file runs alone.

The limiter also counts this module's own requests, per caller and per fixed 60 s window
(Miniflare's windows are aligned on the epoch and reset every key together), so:

* each test acts as its own user (``user:<sub>`` buckets) and stays below 20 requests with it;
* refused credentials share one bucket (``ip:<address>``): this module sends fewer than 20;
* the service token is never limited, so seeding and checking Bob's data costs no budget.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from auth.hs256 import sign_hs256
from support.worker_harness import LocalWorker

AUTHZ_CONFIG = Path(__file__).resolve().parent / "wrangler.authz.toml"
SERVICE_TOKEN = "authz-service-token-0123456789"
JWT_SECRET = "integration-jwt-secret-0123456789abcdef"
JWT_ISSUER = "https://auth.example"
JWT_AUDIENCE = "chat-store"
ORIGIN = "https://app.example"
TEAM = "https://team.cloudflareaccess.com"
ACCESS_AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2"
RETRY_AFTER = "42"
LIMIT = 20  # simple.limit in wrangler.authz.toml
PERIOD = 60  # simple.period in wrangler.authz.toml
KID = "authz-test-key"
RUN = uuid.uuid4().hex[:8]  # KV state is fresh, but keep ids unique across reruns anyway
BOB = f"bob-{RUN}"
SHARED, BOB_ONLY = f"c-shared-{RUN}", f"c-bob-{RUN}"
BOB_SOLO, BOB_PRIVATE, BOB_SHARED = f"bob-solo-{RUN}", f"bob-priv-{RUN}", f"bob-shrd-{RUN}"
BOB_MESSAGES = (BOB_SOLO, BOB_PRIVATE, BOB_SHARED)
SECRET_MARK = f"bob-secret-{RUN}"
ACCESS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64_uint(value: int) -> str:
    return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def jwks_document() -> str:
    numbers = ACCESS_KEY.public_key().public_numbers()
    key = {"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256",
           "n": b64_uint(numbers.n), "e": b64_uint(numbers.e)}  # fmt: skip
    return json.dumps({"keys": [key]}, separators=(",", ":"))


def access_assertion(sub: str, key: rsa.RSAPrivateKey = ACCESS_KEY, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": [ACCESS_AUD], "email": f"{sub}@example.com", "exp": now + 600, "iat": now,
        "nbf": now, "iss": TEAM, "sub": sub, "type": "app",
    }  # fmt: skip
    claims.update(overrides)
    header = {"alg": "RS256", "kid": KID, "typ": "JWT"}
    signing_input = ".".join(
        b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def user_jwt(sub: str, conversations: list[str] | None = None, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "sub": sub, "exp": int(time.time()) + 600, "iss": JWT_ISSUER, "aud": JWT_AUDIENCE,
        "conversations": conversations or [],
    }  # fmt: skip
    claims.update(overrides)
    return sign_hs256(claims, JWT_SECRET.encode())


def new_user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def authz_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorker]:
    base = tmp_path_factory.mktemp("wrangler-authz")
    w = LocalWorker(
        persist_dir=base / "state",
        config=AUTHZ_CONFIG,
        log_dir=base,
        vars={
            "API_TOKEN": SERVICE_TOKEN,
            "AUTH_DISABLED": "false",
            "JWT_SECRET": JWT_SECRET,
            "JWT_ISSUER": JWT_ISSUER,
            "JWT_AUDIENCE": JWT_AUDIENCE,
            "CORS_ORIGINS": ORIGIN,
            "ACCESS_TEAM_DOMAIN": TEAM,
            "ACCESS_AUD": ACCESS_AUD,
            "ACCESS_JWKS": jwks_document(),
            "RATE_LIMIT_RETRY_AFTER": RETRY_AFTER,
        },
    )
    with w:
        yield w


@pytest.fixture(scope="module")
def http(authz_worker: LocalWorker) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=authz_worker.base_url, timeout=30) as client:
        yield client


def service(http: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}", **kwargs.pop("headers", {})}
    return http.request(method, path, headers=headers, **kwargs)


def create_body(user: str, conversation: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": user, "sender": {"id": "s1", "role": "user"},
                            "content": "planted", **extra}  # fmt: skip
    if conversation is not None:
        body["conversation_id"] = conversation
    return body


@dataclass(frozen=True)
class BobData:
    messages: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def bob(http: httpx.Client) -> BobData:
    """Bob's messages, seeded with the service token (which no limiter ever counts)."""
    stored: dict[str, dict[str, Any]] = {}
    for message_id, conversation in ((BOB_SOLO, None), (BOB_PRIVATE, BOB_ONLY),
                                     (BOB_SHARED, SHARED)):
        body = create_body(BOB, conversation, id=message_id, content=f"{SECRET_MARK} {message_id}")
        reply = service(http, "POST", "/v1/messages", json=body)
        assert reply.status_code == 201, reply.text
        stored[message_id] = reply.json()["message"]
    return BobData(stored)


def bob_view(http: httpx.Client) -> dict[str, Any]:
    """Everything of Bob's, as the service sees it."""
    return {
        "records": [service(http, "GET", f"/v1/messages/{m}").json() for m in BOB_MESSAGES],
        "listed": service(http, "GET", f"/v1/users/{BOB}/messages").json(),
        "count": service(http, "GET", f"/v1/users/{BOB}/messages/count").json(),
        "private": service(http, "GET", f"/v1/conversations/{BOB_ONLY}/messages").json(),
    }


def normalized(reply: httpx.Response, message_id: str) -> tuple[int, str, str, str]:
    return (
        reply.status_code,
        reply.headers.get("content-type", ""),
        reply.headers.get("cache-control", ""),
        reply.text.replace(message_id, "<id>"),
    )


# --- the two-user walk ---------------------------------------------------------------------------


def test_alice_sees_bobs_messages_exactly_as_missing_ones(
    http: httpx.Client, bob: BobData
) -> None:
    alice = new_user("alice")
    auth = {"Authorization": f"Bearer {user_jwt(alice, [SHARED])}"}
    before = bob_view(http)
    missing = f"nobody-{RUN}-x"
    requests = 0
    for method, body in (("GET", None), ("PATCH", {"content": "hijacked"}), ("DELETE", None)):
        expected = http.request(method, f"/v1/messages/{missing}", headers=auth, json=body)
        assert expected.status_code == 404, expected.text
        for message_id in (BOB_SOLO, BOB_SHARED):  # BOB_SHARED is in a conversation she lists
            reply = http.request(method, f"/v1/messages/{message_id}", headers=auth, json=body)
            assert normalized(reply, message_id) == normalized(expected, missing), method
            assert SECRET_MARK not in reply.text
        requests += 3
    head = http.head(f"/v1/messages/{BOB_PRIVATE}", headers=auth)
    assert (head.status_code, head.content) == (404, b"")
    assert requests + 1 < LIMIT
    assert bob_view(http) == before


WALK: list[Any] = [
    pytest.param("GET", f"/v1/users/{BOB}/messages", None, 403, id="list-bob"),
    pytest.param("GET", f"/v1/users/{BOB}/messages/count", None, 403, id="count-bob"),
    pytest.param("DELETE", f"/v1/users/{BOB}/messages", None, 403, id="erase-bob"),
    pytest.param("GET", f"/v1/conversations/{BOB_ONLY}/messages", None, 403,
                 id="list-unclaimed-conversation"),
    pytest.param("GET", f"/v1/conversations/{BOB_ONLY}/messages/count", None, 403,
                 id="count-unclaimed-conversation"),
    pytest.param("DELETE", f"/v1/conversations/{BOB_ONLY}/messages", None, 403,
                 id="erase-unclaimed-conversation"),
    pytest.param("DELETE", f"/v1/conversations/{SHARED}/messages", None, 403,
                 id="erase-claimed-conversation"),
    pytest.param("POST", "/v1/messages", create_body(BOB), 403, id="create-for-bob"),
    pytest.param("POST", "/v1/messages", create_body(BOB, SHARED), 403,
                 id="create-for-bob-in-claimed-conversation"),
    pytest.param("POST", "/v1/messages/batch",
                 {"messages": [create_body("{alice}"), create_body(BOB)]}, 403,
                 id="batch-with-an-item-for-bob"),
    pytest.param("POST", "/v1/messages/batch",
                 {"messages": [create_body("{alice}"), create_body("{alice}", BOB_ONLY)]}, 403,
                 id="batch-with-an-item-in-unclaimed-conversation"),
    pytest.param("POST", "/v1/messages", create_body("{alice}", id=BOB_SOLO), 409,
                 id="create-own-with-bobs-id"),
    pytest.param("POST", "/v1/admin/reindex", {"user_id": BOB}, 403, id="reindex-bob"),
]


def _for(alice: str, body: Any) -> Any:
    """``body`` with the ``{alice}`` placeholder replaced by this test's user id."""
    return None if body is None else json.loads(json.dumps(body).replace("{alice}", alice))


def test_alice_is_refused_on_every_route_of_bobs_and_nothing_changes(
    http: httpx.Client, bob: BobData
) -> None:
    alice = new_user("alice")
    auth = {"Authorization": f"Bearer {user_jwt(alice, [SHARED])}"}
    assert len(WALK) < LIMIT
    before = bob_view(http)
    for case in WALK:
        method, path, body, status = case.values
        reply = http.request(method, path, headers=auth, json=_for(alice, body))
        assert reply.status_code == status, (case.id, reply.text)
        problem = reply.json()
        assert problem["code"] == ("forbidden" if status == 403 else "conflict"), case.id
        assert SECRET_MARK not in reply.text, case.id
        if "batch" in case.id:
            assert problem["detail"].startswith("messages[1]: "), problem
    assert bob_view(http) == before
    # Nothing of the refused batches or creates was written for Alice either.
    assert service(http, "GET", f"/v1/users/{alice}/messages/count").json() == {"count": 0}


def test_alice_works_on_her_own_data_and_lists_her_claimed_conversation(
    http: httpx.Client, bob: BobData
) -> None:
    alice = new_user("alice")
    auth = {"Authorization": f"Bearer {user_jwt(alice, [SHARED])}"}
    mine = f"{alice}-1"
    created = http.post("/v1/messages", headers=auth, json=create_body(alice, SHARED, id=mine))
    assert created.status_code == 201, created.text
    assert http.get(f"/v1/messages/{mine}", headers=auth).json() == {
        "message": created.json()["message"]}
    patched = http.patch(f"/v1/messages/{mine}", headers=auth, json={"content": "edited"})
    assert patched.status_code == 200 and patched.json()["message"]["content"] == "edited"
    listed = http.get(f"/v1/users/{alice}/messages", headers=auth)
    assert [m["id"] for m in listed.json()["messages"]] == [mine]
    assert http.get(f"/v1/users/{alice}/messages/count", headers=auth).json() == {"count": 1}

    # The claimed conversation lists every message in it, Bob's included ...
    shared = http.get(f"/v1/conversations/{SHARED}/messages", headers=auth)
    assert shared.status_code == 200, shared.text
    by_id = {m["id"]: m for m in shared.json()["messages"]}
    assert set(by_id) == {mine, BOB_SHARED}
    assert by_id[BOB_SHARED] == bob.messages[BOB_SHARED]
    count = http.get(f"/v1/conversations/{SHARED}/messages/count", headers=auth)
    assert count.json() == {"count": 2}
    # ... which does not make Bob's message hers.
    assert http.get(f"/v1/messages/{BOB_SHARED}", headers=auth).status_code == 404

    assert http.delete(f"/v1/messages/{mine}", headers=auth).status_code == 204
    assert http.get(f"/v1/messages/{mine}", headers=auth).status_code == 404
    http.post("/v1/messages", headers=auth, json=create_body(alice, id=f"{alice}-2"))
    erased = http.delete(f"/v1/users/{alice}/messages", headers=auth)
    assert erased.json() == {"deleted": 1, "remaining": 0}
    assert service(http, "GET", f"/v1/users/{BOB}/messages/count").json() == {"count": 3}


# --- Cloudflare Access (RS256, verified with WebCrypto inside the Worker) ------------------------


def test_access_assertion_is_verified_with_webcrypto_and_confined_to_its_sub(
    http: httpx.Client, bob: BobData
) -> None:
    sub = str(uuid.uuid4())  # Access's user ids are UUIDs
    own = service(http, "POST", "/v1/messages", json=create_body(sub, id=f"acc-{RUN}"))
    assert own.status_code == 201, own.text
    headers = {"Cf-Access-Jwt-Assertion": access_assertion(sub)}  # and no Authorization
    got = http.get(f"/v1/messages/acc-{RUN}", headers=headers)
    assert got.status_code == 200, got.text
    assert got.json() == own.json()
    listed = http.get(f"/v1/users/{sub}/messages", headers=headers)
    assert [m["id"] for m in listed.json()["messages"]] == [f"acc-{RUN}"]
    # The Access user is an ordinary user: Bob's data stays out of reach.
    assert http.get(f"/v1/messages/{BOB_SOLO}", headers=headers).status_code == 404
    assert http.get(f"/v1/users/{BOB}/messages", headers=headers).status_code == 403


@pytest.mark.parametrize(
    "assertion",
    [
        pytest.param(lambda sub: access_assertion(sub, OTHER_KEY), id="signed-by-another-key"),
        pytest.param(lambda sub: access_assertion(sub, aud=["another-application"]),
                     id="wrong-aud"),
        pytest.param(lambda sub: access_assertion(sub, iss="https://other.cloudflareaccess.com"),
                     id="wrong-iss"),
        pytest.param(lambda sub: access_assertion(sub, exp=int(time.time()) - 3600),
                     id="expired"),
    ],
)
def test_bad_access_assertions_are_401(http: httpx.Client, assertion: Any) -> None:
    sub = str(uuid.uuid4())
    reply = http.get(f"/v1/users/{sub}/messages",
                     headers={"Cf-Access-Jwt-Assertion": assertion(sub)})
    assert reply.status_code == 401, reply.text
    assert reply.json()["code"] == "unauthorized"
    assert reply.headers["www-authenticate"] == 'Bearer realm="chat-store"'
    anonymous = http.get(f"/v1/users/{sub}/messages")
    assert reply.text == anonymous.text  # the same 401 as no credential at all


def test_user_jwt_with_wrong_issuer_or_audience_is_401(http: httpx.Client) -> None:
    sub = new_user("carol")
    for token in (user_jwt(sub, iss="https://evil.example"), user_jwt(sub, aud="other")):
        reply = http.get(f"/v1/users/{sub}/messages", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 401, reply.text


# --- rate limiting through the RATE_LIMITER binding ----------------------------------------------


def test_user_beyond_the_bindings_limit_gets_429(http: httpx.Client) -> None:
    user = new_user("busy")
    auth = {"Authorization": f"Bearer {user_jwt(user)}"}
    path = f"/v1/users/{user}/messages/count"
    started = time.time()
    statuses: list[int] = []
    limited: httpx.Response | None = None
    # A window boundary in the middle resets the buckets, so allow for a second window.
    for _ in range(2 * LIMIT + 2):
        reply = http.get(path, headers={**auth, "Origin": ORIGIN})
        statuses.append(reply.status_code)
        if reply.status_code == 429:
            limited = reply
            break
        assert reply.status_code == 200, reply.text
    finished = time.time()
    assert limited is not None, statuses
    problem = limited.json()
    assert problem["code"] == "rate_limited" and problem["status"] == 429
    assert limited.headers["retry-after"] == RETRY_AFTER
    assert limited.headers["content-type"].startswith("application/problem+json")
    # Browsers may read Retry-After on the 429.
    assert limited.headers["access-control-allow-origin"] == ORIGIN
    assert "retry-after" in limited.headers["access-control-expose-headers"]
    allowed = len(statuses) - 1
    one_window = (int(started) // PERIOD == int(finished) // PERIOD
                  and started % PERIOD > 1 and finished % PERIOD < PERIOD - 1)
    if one_window:
        assert allowed == LIMIT, statuses
    else:
        assert LIMIT <= allowed <= 2 * LIMIT, statuses

    # Per caller: another user is not held back, and the service token is never limited.
    other = new_user("calm")
    calm = http.get(f"/v1/users/{other}/messages/count",
                    headers={"Authorization": f"Bearer {user_jwt(other)}"})
    assert calm.status_code == 200, calm.text
    for _ in range(LIMIT + 5):
        reply = service(http, "GET", path)
        assert reply.status_code == 200, reply.text


# --- CORS ----------------------------------------------------------------------------------------


def test_preflight_from_the_allowed_origin_is_answered(http: httpx.Client) -> None:
    reply = http.options("/v1/messages", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert reply.status_code == 204, reply.text
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in reply.headers["access-control-allow-methods"]
    assert "authorization" in reply.headers["access-control-allow-headers"]
    assert reply.headers["access-control-max-age"]
    assert "access-control-allow-credentials" not in reply.headers


def test_preflight_from_another_origin_gets_no_cors_headers(http: httpx.Client) -> None:
    reply = http.options("/v1/messages", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert reply.status_code == 204
    assert [k for k in reply.headers if k.lower().startswith("access-control-")] == []


def test_a_browser_on_the_allowed_origin_may_read_an_exports_next_page(
    http: httpx.Client,
) -> None:
    user = new_user("exporter")
    for _ in range(3):
        assert service(http, "POST", "/v1/messages", json=create_body(user)).status_code == 201
    page = service(http, "GET", f"/v1/users/{user}/export", params={"limit": 2},
                   headers={"Origin": ORIGIN})
    assert page.status_code == 200, page.text
    assert page.headers["chat-store-next-cursor"]
    exposed = {h.strip() for h in page.headers["access-control-expose-headers"].split(",")}
    assert {"retry-after", "chat-store-next-cursor", "link"} <= exposed


def test_actual_responses_are_decorated_for_the_allowed_origin_only(http: httpx.Client) -> None:
    ok = service(http, "GET", f"/v1/users/{BOB}/messages/count", headers={"Origin": ORIGIN})
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert "origin" in ok.headers["vary"].lower()
    other = service(http, "GET", f"/v1/users/{BOB}/messages/count",
                    headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    assert "origin" in other.headers["vary"].lower()
