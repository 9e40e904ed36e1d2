"""Issue 4, in-process: object-level authorization, rate limiting, CORS and uniform 401s.

Drives :class:`web.app.App` through ``app_harness`` with an in-memory KV. The centrepiece is a
table-driven walk of every route with user A's (``alice``) token against user B's (``bob``)
data: another user's message must answer exactly like a missing one (404), another user's
routes and unclaimed conversations are 403, and nothing of B's may change.

The world every walk starts from (seeded with the service token)::

    bob:   msg-bob-solo (no conversation), msg-bob-priv (in c-bob), msg-bob-shrd (in c-shared)
    alice: msg-ali-solo (no conversation), msg-ali-shrd (in c-shared)

Alice's token claims ``conversations: [c-shared, c-alice]``; ``c-bob`` is not hers.
User JWTs are checked against the real clock (``App`` uses ``time.time``), so tokens are minted
relative to it.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from auth.access import AccessVerifier, access_certs_url
from auth.hs256 import sign_hs256
from config import Config
from support.app_harness import TOKEN, AppHarness, Reply, ids, message_body
from support.rsa_reference import PurePythonRsaVerifier
from web.cors import ALLOWED_METHODS, ALLOWED_REQUEST_HEADERS

JWT_SECRET = "unit-test-jwt-secret-0123456789abcdef"  # >= 32 bytes, as HS256 requires
ALICE, BOB = "alice", "bob"
SHARED, BOB_ONLY, ALICE_ONLY = "c-shared", "c-bob", "c-alice"
BOB_SOLO, BOB_PRIVATE, BOB_SHARED = "msg-bob-solo", "msg-bob-priv", "msg-bob-shrd"
ALICE_SOLO, ALICE_SHARED = "msg-ali-solo", "msg-ali-shrd"
BOB_MESSAGES = (BOB_SOLO, BOB_PRIVATE, BOB_SHARED)
MISSING = "msg-nobody-0"  # never stored
ORIGIN = "https://app.example"
RETRY_AFTER = 17
ISSUER = "https://team.cloudflareaccess.com"
ACCESS_AUD = "d" * 64
ACCESS_SUB = "7335d417-61da-459d-899c-0a01c76a2f94"
ACCESS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PROBLEM_JSON = "application/problem+json"


# --- credentials ---------------------------------------------------------------------------------


def user_token(sub: str = ALICE, conversations: list[str] | None = None, **claims: Any) -> str:
    body: dict[str, Any] = {
        "sub": sub,
        "exp": int(time.time()) + 3600,
        "conversations": [SHARED, ALICE_ONLY] if conversations is None else conversations,
    }
    body.update(claims)
    return sign_hs256({k: v for k, v in body.items() if v is not None}, JWT_SECRET.encode())


ALICE_TOKEN = user_token()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64_json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def access_token(key: rsa.RSAPrivateKey = ACCESS_KEY, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": [ACCESS_AUD], "email": "a@example.com", "exp": now + 300, "iat": now,
        "iss": ISSUER, "sub": ACCESS_SUB, "type": "app",
    }  # fmt: skip
    claims.update(overrides)
    signing_input = f"{b64_json({'alg': 'RS256', 'kid': 'k1', 'typ': 'JWT'})}.{b64_json(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


class StaticFetcher:
    """The JWKS holding ``ACCESS_KEY`` (kid ``k1``), as ``entry.StaticJwks`` would serve it."""

    async def fetch(self, url: str) -> dict[str, Any]:
        numbers = ACCESS_KEY.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {"keys": [{"kty": "RSA", "kid": "k1", "n": b64(n), "e": b64(e)}]}


def access_verifier() -> AccessVerifier:
    return AccessVerifier(
        access_certs_url(ISSUER), ACCESS_AUD, ISSUER, StaticFetcher(), PurePythonRsaVerifier(),
        time.time,
    )


class CountingLimiter:
    """A ``ratelimit.RateLimiter`` that lets ``allowed`` requests through per key, then denies."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.keys: list[str] = []

    async def allow(self, key: str) -> bool:
        self.keys.append(key)
        return Counter(self.keys)[key] <= self.allowed


def config(**overrides: Any) -> Config:
    values: dict[str, Any] = {
        "api_token": TOKEN, "jwt_secret": JWT_SECRET, "journal_settle_ms": 1_000,
        "rate_limit_retry_after": RETRY_AFTER,
    }  # fmt: skip
    values.update(overrides)
    return Config(**values).checked()


def harness(
    cfg: Config | None = None,
    *,
    access: AccessVerifier | None = None,
    limiter: CountingLimiter | None = None,
) -> AppHarness:
    """An ``AppHarness`` whose App also has the per-isolate pieces ``entry.py`` passes in."""
    h = AppHarness(cfg or config())
    h.serve(access=access, rate_limiter=limiter)
    return h


# --- the two-user world --------------------------------------------------------------------------


@dataclass
class World:
    h: AppHarness
    stored: dict[str, dict[str, Any]]  # every seeded message, as the service sees it

    def as_alice(self, method: str, path: str, query: str = "", **kwargs: Any) -> Reply:
        return self.h.request(method, path, query, token=ALICE_TOKEN, **kwargs)

    def as_service(self, method: str, path: str, query: str = "", **kwargs: Any) -> Reply:
        return self.h.request(method, path, query, **kwargs)

    def bob_view(self) -> dict[str, Any]:
        """Everything the service can see of Bob's data."""
        listed = self.as_service("GET", "/v1/users/bob/messages", "limit=100")
        conversation = self.as_service("GET", f"/v1/conversations/{BOB_ONLY}/messages")
        return {
            "conversations": self.as_service("GET", "/v1/users/bob/conversations").json,
            "conversation_fields": self.as_service("GET", f"/v1/conversations/{BOB_ONLY}").json,
            "records": [self.as_service("GET", f"/v1/messages/{m}").json for m in BOB_MESSAGES],
            "listed": listed.json,
            "count": self.as_service("GET", "/v1/users/bob/messages/count").json,
            "conversation": conversation.json,
        }


def make_world(cfg: Config | None = None, **pieces: Any) -> World:
    h = harness(cfg, **pieces)
    seeds = [
        (BOB_SOLO, BOB, None), (BOB_PRIVATE, BOB, BOB_ONLY), (BOB_SHARED, BOB, SHARED),
        (ALICE_SOLO, ALICE, None), (ALICE_SHARED, ALICE, SHARED),
    ]  # fmt: skip
    stored: dict[str, dict[str, Any]] = {}
    for message_id, user, conversation in seeds:
        extra = {"conversation_id": conversation} if conversation else {}
        stored[message_id] = h.create(
            id=message_id, user_id=user, content=f"secret of {message_id}", **extra
        )
    return World(h, stored)


@pytest.fixture
def world() -> World:
    return make_world()


def assert_problem(reply: Reply, status: int, code: str) -> dict[str, Any]:
    assert reply.status == status, reply.body
    assert reply.content_type.startswith(PROBLEM_JSON)
    problem: dict[str, Any] = reply.json
    assert (problem["status"], problem["code"]) == (status, code), problem
    return problem


def normalized(reply: Reply, message_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The reply with ``message_id`` replaced by a placeholder wherever it appears."""
    headers = sorted((k.lower(), v.replace(message_id, "<id>")) for k, v in reply.headers)
    return reply.status, headers, reply.body.replace(message_id.encode(), b"<id>")


# --- the walk: Alice's token against Bob's data --------------------------------------------------

MESSAGE_METHODS = [
    pytest.param("GET", None, id="get"),
    pytest.param("HEAD", None, id="head"),
    pytest.param("PATCH", {"content": "hijacked"}, id="patch"),
    pytest.param("PATCH", {"timestamp": 1}, id="patch-timestamp"),
    pytest.param("DELETE", None, id="delete"),
]


@pytest.mark.parametrize("bob_message", BOB_MESSAGES)
@pytest.mark.parametrize(("method", "body"), MESSAGE_METHODS)
def test_bobs_message_answers_exactly_like_a_missing_one(
    world: World, method: str, body: dict[str, Any] | None, bob_message: str
) -> None:
    kwargs: dict[str, Any] = {} if body is None else {"json_body": body}
    before = world.h.kv.snapshot()
    world.h.kv.reset_counters()
    on_bob = world.as_alice(method, f"/v1/messages/{bob_message}", **kwargs)
    assert world.h.kv.writes == world.h.kv.deletes == 0
    on_missing = world.as_alice(method, f"/v1/messages/{MISSING}", **kwargs)
    assert on_bob.status == 404
    if method != "HEAD":
        assert_problem(on_bob, 404, "not_found")
        assert b"secret" not in on_bob.body
    assert normalized(on_bob, bob_message) == normalized(on_missing, MISSING)
    assert world.h.kv.snapshot() == before


# (method, path, JSON body or None, status, code, detail prefix or None)
Case = tuple[str, str, Any, int, str, str | None]


def _create(user: str, conversation: str | None = None, **extra: Any) -> dict[str, Any]:
    body = message_body(user_id=user, content="planted", **extra)
    if conversation is not None:
        body["conversation_id"] = conversation
    return body


WALK: list[Any] = [
    # Bob's user routes.
    pytest.param("GET", "/v1/users/bob/messages", None, 403, "forbidden", None, id="list-bob"),
    pytest.param("HEAD", "/v1/users/bob/messages", None, 403, "", None, id="head-list-bob"),
    pytest.param("GET", "/v1/users/bob/messages/count", None, 403, "forbidden", None,
                 id="count-bob"),
    pytest.param("DELETE", "/v1/users/bob/messages", None, 403, "forbidden", None,
                 id="erase-bob"),
    # A conversation Alice's token does not list.
    pytest.param("GET", f"/v1/conversations/{BOB_ONLY}/messages", None, 403, "forbidden", None,
                 id="list-unclaimed-conversation"),
    pytest.param("GET", f"/v1/conversations/{BOB_ONLY}/messages/count", None, 403, "forbidden",
                 None, id="count-unclaimed-conversation"),
    pytest.param("DELETE", f"/v1/conversations/{BOB_ONLY}/messages", None, 403, "forbidden",
                 None, id="erase-unclaimed-conversation"),
    # Erasing a conversation is for the service only, even a claimed one holding Bob's messages.
    pytest.param("DELETE", f"/v1/conversations/{SHARED}/messages", None, 403, "forbidden", None,
                 id="erase-claimed-conversation"),
    # Creating for Bob, or in a conversation Alice's token does not list.
    pytest.param("POST", "/v1/messages", _create(BOB), 403, "forbidden", None, id="create-bob"),
    pytest.param("POST", "/v1/messages", _create(BOB, SHARED), 403, "forbidden", None,
                 id="create-bob-in-claimed-conversation"),
    pytest.param("POST", "/v1/messages", _create(ALICE, BOB_ONLY), 403, "forbidden", None,
                 id="create-in-unclaimed-conversation"),
    pytest.param("POST", "/v1/messages", _create(BOB, id=BOB_SOLO), 403, "forbidden", None,
                 id="create-bob-with-bobs-id"),
    # Claiming Bob's message id for Alice is a conflict like any other, revealing nothing.
    pytest.param("POST", "/v1/messages", _create(ALICE, id=BOB_SOLO), 409, "conflict", None,
                 id="create-alice-with-bobs-id"),
    # Batches: the first foreign item is named, nothing at all is written.
    pytest.param("POST", "/v1/messages/batch", {"messages": [_create(ALICE), _create(BOB)]},
                 403, "forbidden", "messages[1]: ", id="batch-item-for-bob"),
    pytest.param("POST", "/v1/messages/batch",
                 {"messages": [_create(ALICE), _create(ALICE), _create(ALICE, BOB_ONLY)]},
                 403, "forbidden", "messages[2]: ", id="batch-item-in-unclaimed-conversation"),
    pytest.param("POST", "/v1/messages/batch", {"messages": [_create(BOB, id=BOB_SHARED)]},
                 403, "forbidden", "messages[0]: ", id="batch-replaying-bobs-message"),
    pytest.param("POST", "/v1/messages/batch",
                 {"messages": [_create(ALICE), _create(ALICE, id=BOB_PRIVATE)]},
                 409, "conflict", "messages[1]: ", id="batch-alice-with-bobs-id"),
    # Bob's conversation list, and conversations Alice has no message in and does not claim:
    # exactly like missing ones.
    pytest.param("GET", "/v1/users/bob/conversations", None, 403, "forbidden", None,
                 id="conversations-of-bob"),
    pytest.param("GET", f"/v1/conversations/{BOB_ONLY}", None, 404, "not_found", None,
                 id="get-unclaimed-conversation"),
    pytest.param("PATCH", f"/v1/conversations/{BOB_ONLY}", {"title": "hijacked"}, 404,
                 "not_found", None, id="rename-unclaimed-conversation"),
    # Reindexing is for the service only.
    pytest.param("POST", "/v1/admin/reindex", {"user_id": BOB}, 403, "forbidden", None,
                 id="reindex-bob"),
    pytest.param("POST", "/v1/admin/reindex", {"conversation_id": BOB_ONLY}, 403, "forbidden",
                 None, id="reindex-unclaimed-conversation"),
    pytest.param("POST", "/v1/admin/reindex", {"user_id": ALICE}, 403, "forbidden", None,
                 id="reindex-own-user"),
]


def _walk_one(world: World, method: str, path: str, body: Any) -> Reply:
    kwargs: dict[str, Any] = {} if body is None else {"json_body": body}
    return world.as_alice(method, path, **kwargs)


@pytest.mark.parametrize(("method", "path", "body", "status", "code", "prefix"), WALK)
def test_alice_is_refused_on_bobs_routes_and_nothing_is_written(
    world: World, method: str, path: str, body: Any, status: int, code: str, prefix: str | None
) -> None:
    bob_before = world.bob_view()
    before = world.h.kv.snapshot()
    world.h.kv.reset_counters()
    reply = _walk_one(world, method, path, body)
    assert reply.status == status, reply.body
    assert world.h.kv.writes == world.h.kv.deletes == 0, "a refused request wrote to KV"
    if method != "HEAD":
        problem = assert_problem(reply, status, code)
        assert b"secret" not in reply.body  # nothing of Bob's content leaks into the answer
        if prefix is not None:
            assert problem["detail"].startswith(prefix), problem
        if status == 409:
            assert problem.get("index") == (len(body["messages"]) - 1 if "messages" in body
                                            else 0)
    assert world.h.kv.snapshot() == before
    assert world.bob_view() == bob_before


def test_a_refusal_does_not_depend_on_what_bob_has(world: World) -> None:
    """403 for Bob's routes says nothing about whether Bob (or that conversation) has data."""
    pairs = [
        ("GET", "/v1/users/bob/messages", "/v1/users/nobody/messages"),
        ("GET", "/v1/users/bob/messages/count", "/v1/users/nobody/messages/count"),
        ("DELETE", "/v1/users/bob/messages", "/v1/users/nobody/messages"),
        ("GET", f"/v1/conversations/{BOB_ONLY}/messages", "/v1/conversations/c-none/messages"),
        ("GET", "/v1/users/bob/conversations", "/v1/users/nobody/conversations"),
    ]
    for method, full, empty in pairs:
        a, b = world.as_alice(method, full), world.as_alice(method, empty)
        assert a.status == b.status == 403
        assert {**a.json, "instance": ""} == {**b.json, "instance": ""}


def test_create_with_bobs_id_is_an_ordinary_conflict(world: World) -> None:
    """Taking Bob's id answers like taking one of Alice's own ids with other fields."""
    on_bob = world.as_alice("POST", "/v1/messages", json_body=_create(ALICE, id=BOB_SOLO))
    on_own = world.as_alice("POST", "/v1/messages", json_body=_create(ALICE, id=ALICE_SOLO))
    assert normalized(on_bob, BOB_SOLO) == normalized(on_own, ALICE_SOLO)
    assert on_bob.status == 409


def test_whole_walk_leaves_bob_untouched_and_alice_saw_nothing_of_his(world: World) -> None:
    bob_before = world.bob_view()
    before = world.h.kv.snapshot()
    seen: list[bytes] = []
    for method, body in (("GET", None), ("HEAD", None), ("PATCH", {"content": "x"}),
                         ("DELETE", None)):
        for message_id in BOB_MESSAGES:
            reply = _walk_one(world, method, f"/v1/messages/{message_id}", body)
            assert reply.status == 404
            seen.append(reply.body)
    for case in WALK:
        method, path, body, status, _, _ = case.values
        reply = _walk_one(world, method, path, body)
        assert reply.status == status, (case.id, reply.body)
        seen.append(reply.body)
    assert world.h.kv.snapshot() == before
    assert world.bob_view() == bob_before
    for seen_body in seen:
        assert b"secret of msg-bob" not in seen_body


# --- Alice on her own data -----------------------------------------------------------------------


def test_alice_can_do_everything_with_her_own_data(world: World) -> None:
    a = world.as_alice
    created = a("POST", "/v1/messages", json_body=_create(ALICE, id="ali-new"))
    assert created.status == 201, created.body
    assert a("POST", "/v1/messages", json_body=_create(ALICE, id="ali-new")).status == 200
    in_claimed = a("POST", "/v1/messages", json_body=_create(ALICE, ALICE_ONLY, id="ali-conv"))
    assert in_claimed.status == 201, in_claimed.body
    batch = a("POST", "/v1/messages/batch", json_body={
        "messages": [_create(ALICE, id="ali-b1"), _create(ALICE, SHARED, id="ali-b2")]})
    assert batch.status == 201, batch.body

    got = a("GET", f"/v1/messages/{ALICE_SOLO}")
    assert got.status == 200 and got.json["message"] == world.stored[ALICE_SOLO]
    assert a("HEAD", f"/v1/messages/{ALICE_SOLO}").status == 200
    patched = a("PATCH", f"/v1/messages/{ALICE_SOLO}", json_body={"content": "edited"})
    assert patched.status == 200 and patched.json["message"]["content"] == "edited"

    listed = a("GET", "/v1/users/alice/messages", "limit=100")
    assert listed.status == 200
    assert set(ids(listed.json["messages"])) == {
        ALICE_SOLO, ALICE_SHARED, "ali-new", "ali-conv", "ali-b1", "ali-b2"}
    assert a("GET", "/v1/users/alice/messages/count").json == {"count": 6}
    conversation = a("GET", f"/v1/conversations/{ALICE_ONLY}/messages")
    assert ids(conversation.json["messages"]) == ["ali-conv"]
    assert a("GET", f"/v1/conversations/{ALICE_ONLY}/messages/count").json == {"count": 1}

    assert a("DELETE", "/v1/messages/ali-new").status == 204
    assert a("GET", "/v1/messages/ali-new").status == 404
    erased = a("DELETE", "/v1/users/alice/messages")
    assert erased.status == 200 and erased.json == {"deleted": 5, "remaining": 0}
    assert a("GET", "/v1/users/alice/messages/count").json == {"count": 0}
    # Erasing Alice took her messages out of the shared conversation, and only hers.
    shared = a("GET", f"/v1/conversations/{SHARED}/messages")
    assert ids(shared.json["messages"]) == [BOB_SHARED]
    assert world.as_service("GET", "/v1/users/bob/messages/count").json == {"count": 3}


def test_claimed_conversation_lists_every_message_but_bobs_stay_unreachable(world: World) -> None:
    listed = world.as_alice("GET", f"/v1/conversations/{SHARED}/messages")
    assert listed.status == 200
    assert listed.json == world.as_service("GET", f"/v1/conversations/{SHARED}/messages").json
    assert sorted(ids(listed.json["messages"])) == sorted([ALICE_SHARED, BOB_SHARED])
    assert world.stored[BOB_SHARED] in listed.json["messages"]  # full messages, Bob's included
    count = world.as_alice("GET", f"/v1/conversations/{SHARED}/messages/count")
    assert count.json == {"count": 2}
    # Listing it does not make Bob's message Alice's.
    for method, body in (("GET", None), ("PATCH", {"content": "x"}), ("DELETE", None)):
        reply = _walk_one(world, method, f"/v1/messages/{BOB_SHARED}", body)
        assert reply.status == 404, (method, reply.body)
    assert world.as_service("GET", f"/v1/messages/{BOB_SHARED}").json["message"] == (
        world.stored[BOB_SHARED])


def test_claims_are_per_token(world: World) -> None:
    """The same user without the claim is refused; another token's claim admits its holder."""
    unclaimed = user_token(ALICE, conversations=[])
    reply = world.h.request("GET", f"/v1/conversations/{SHARED}/messages", token=unclaimed)
    assert_problem(reply, 403, "forbidden")
    bob = user_token(BOB, conversations=[BOB_ONLY])
    assert world.h.request("GET", f"/v1/conversations/{BOB_ONLY}/messages/count",
                           token=bob).json == {"count": 1}
    assert world.h.request("GET", f"/v1/messages/{BOB_PRIVATE}", token=bob).status == 200
    assert world.h.request("GET", f"/v1/messages/{ALICE_SOLO}", token=bob).status == 404


def test_access_user_is_confined_like_a_jwt_user() -> None:
    w = make_world(access=access_verifier())
    mine = w.as_service("POST", "/v1/messages", json_body=_create(ACCESS_SUB, id="acc-1"))
    assert mine.status == 201
    headers = {"Cf-Access-Jwt-Assertion": access_token()}

    def call(method: str, path: str, **kwargs: Any) -> Reply:
        return w.h.request(method, path, token=None, headers=headers, **kwargs)

    assert call("GET", "/v1/messages/acc-1").json == mine.json
    assert ids(call("GET", f"/v1/users/{ACCESS_SUB}/messages").json["messages"]) == ["acc-1"]
    on_bob = call("GET", f"/v1/messages/{BOB_SOLO}")
    on_missing = call("GET", f"/v1/messages/{MISSING}")
    assert normalized(on_bob, BOB_SOLO) == normalized(on_missing, MISSING)
    assert call("GET", "/v1/users/bob/messages").status == 403
    # An Access token carries no conversation claim.
    assert call("GET", f"/v1/conversations/{SHARED}/messages").status == 403
    assert call("POST", "/v1/messages", json_body=_create(BOB)).status == 403


# --- rate limiting -------------------------------------------------------------------------------


def test_user_beyond_the_limit_gets_429_with_the_configured_retry_after() -> None:
    limiter = CountingLimiter(allowed=3)
    h = harness(limiter=limiter)
    for _ in range(3):
        assert h.request("GET", "/v1/users/alice/messages/count", token=ALICE_TOKEN).status == 200
    h.kv.reset_counters()
    limited = h.request("POST", "/v1/messages", json_body=_create(ALICE), token=ALICE_TOKEN)
    problem = assert_problem(limited, 429, "rate_limited")
    assert limited.header("retry-after") == str(RETRY_AFTER)
    assert problem["instance"] == "/v1/messages"
    assert h.kv.writes == 0
    assert limiter.keys == ["user:alice"] * 4
    # Per caller: Bob is not held back by Alice.
    assert h.request("GET", "/v1/users/bob/messages/count", token=user_token(BOB)).status == 200
    assert limiter.keys[-1] == "user:bob"


def test_retry_after_follows_the_configuration() -> None:
    h = harness(config(rate_limit_retry_after=3600), limiter=CountingLimiter(allowed=0))
    reply = h.request("GET", "/v1/users/alice/messages", token=ALICE_TOKEN)
    assert_problem(reply, 429, "rate_limited")
    assert reply.header("retry-after") == "3600"
    assert Config.from_env({"RATE_LIMIT_RETRY_AFTER": "5"}).rate_limit_retry_after == 5


def test_access_users_are_limited_by_their_sub() -> None:
    limiter = CountingLimiter(allowed=1)
    h = harness(access=access_verifier(), limiter=limiter)
    headers = {"Cf-Access-Jwt-Assertion": access_token()}
    path = f"/v1/users/{ACCESS_SUB}/messages/count"
    assert h.request("GET", path, token=None, headers=headers).status == 200
    assert_problem(h.request("GET", path, token=None, headers=headers), 429, "rate_limited")
    assert limiter.keys == [f"user:{ACCESS_SUB}"] * 2


def test_the_service_token_is_never_limited() -> None:
    limiter = CountingLimiter(allowed=0)
    h = harness(limiter=limiter)
    for n in range(30):
        assert h.request("POST", "/v1/messages", json_body=_create(BOB, id=f"s{n}")).status == 201
    assert h.request("GET", "/v1/users/bob/messages/count").json == {"count": 30}
    assert h.request("DELETE", "/v1/users/bob/messages").status == 200
    assert h.request("POST", "/v1/admin/reindex", json_body={"user_id": BOB}).status == 200
    assert limiter.keys == []


def test_failed_authentication_is_limited_per_client_address() -> None:
    limiter = CountingLimiter(allowed=2)
    h = harness(limiter=limiter)
    guesser = {"CF-Connecting-IP": "203.0.113.7"}
    path = "/v1/users/alice/messages"
    for _ in range(2):
        assert_problem(h.request("GET", path, token="guess", headers=guesser), 401, "unauthorized")
    limited = h.request("GET", path, token="guess", headers=guesser)
    assert_problem(limited, 429, "rate_limited")
    assert limited.header("retry-after") == str(RETRY_AFTER)
    assert limiter.keys == ["ip:203.0.113.7"] * 3
    # Another address still gets its plain 401; no address at all is one shared bucket.
    other = h.request("GET", path, token="guess", headers={"CF-Connecting-IP": "198.51.100.1"})
    assert_problem(other, 401, "unauthorized")
    assert_problem(h.request("GET", path, token=None), 401, "unauthorized")
    assert limiter.keys[-2:] == ["ip:198.51.100.1", "ip:unknown"]
    # A valid credential from the throttled address is keyed by its user, not the address.
    assert h.request("GET", path, token=ALICE_TOKEN, headers=guesser).status == 200
    assert limiter.keys[-1] == "user:alice"


def test_health_and_preflights_are_not_limited() -> None:
    limiter = CountingLimiter(allowed=0)
    h = harness(config(cors_origins=ORIGIN), limiter=limiter)
    assert h.request("GET", "/health", token=None).status == 200
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
    assert h.request("OPTIONS", "/v1/users/alice/messages", token=None,
                     headers=preflight).status == 204
    assert limiter.keys == []


def test_without_a_limiter_nothing_is_limited() -> None:
    h = harness()
    assert h.service.rate_limiter is None
    for _ in range(60):
        assert h.request("GET", "/v1/users/alice/messages/count", token=ALICE_TOKEN).status == 200
    for _ in range(30):
        assert h.request("GET", "/v1/users/alice/messages", token="guess").status == 401


# --- CORS ----------------------------------------------------------------------------------------

PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "PATCH",
             "Access-Control-Request-Headers": "authorization, content-type"}


def cors_headers(reply: Reply) -> dict[str, str]:
    return {k.lower(): v for k, v in reply.headers if k.lower().startswith("access-control-")}


@pytest.mark.parametrize("path", ["/v1/messages/m1", "/v1/users/alice/messages", "/health"])
def test_preflight_from_an_allowed_origin_is_answered_without_credentials(path: str) -> None:
    h = harness(config(cors_origins=f"{ORIGIN}, http://localhost:8080"))
    reply = h.request("OPTIONS", path, token=None, headers=PREFLIGHT)
    assert reply.status == 204 and reply.body == b""
    assert cors_headers(reply) == {
        "access-control-allow-origin": ORIGIN,
        "access-control-allow-methods": ", ".join(ALLOWED_METHODS),
        "access-control-allow-headers": ", ".join(ALLOWED_REQUEST_HEADERS),
        "access-control-max-age": "600",
    }
    assert reply.header("vary") == "Origin"
    assert "PATCH" in ALLOWED_METHODS and "authorization" in ALLOWED_REQUEST_HEADERS


@pytest.mark.parametrize("origin", ["https://evil.example", "http://app.example",
                                    "https://app.example:8443", "null"])
def test_preflight_from_another_origin_gets_no_cors_headers(origin: str) -> None:
    h = harness(config(cors_origins=ORIGIN))
    headers = {**PREFLIGHT, "Origin": origin}
    reply = h.request("OPTIONS", "/v1/messages", token=None, headers=headers)
    assert reply.status == 204 and reply.body == b""
    assert cors_headers(reply) == {}


def test_denied_preflight_still_varies_on_origin() -> None:
    """cors.py and the OpenAPI description: once any origin is configured, *every* response
    carries ``Vary: Origin`` (allowed or not); a denied preflight answer is no exception."""
    h = harness(config(cors_origins=ORIGIN))
    reply = h.request("OPTIONS", "/v1/messages", token=None,
                      headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert reply.status == 204
    assert reply.header("vary") == "Origin"


def test_preflight_under_v1_is_no_store_like_every_v1_response() -> None:
    """The OpenAPI description: "every `/v1` response carries `Cache-Control: no-store`"."""
    h = harness(config(cors_origins=ORIGIN))
    for origin in (ORIGIN, "https://evil.example"):
        reply = h.request("OPTIONS", "/v1/messages", token=None,
                          headers={**PREFLIGHT, "Origin": origin})
        assert reply.status == 204
        assert reply.header("cache-control") == "no-store", origin


def _decorated_replies(origin: str) -> dict[str, Reply]:
    """One reply of each kind, success and error, all sent with ``Origin: origin``."""
    limiter = CountingLimiter(allowed=1_000)
    w = make_world(config(cors_origins=ORIGIN), limiter=limiter)
    hdr = {"Origin": origin}

    def alice(method: str, path: str, query: str = "", **kwargs: Any) -> Reply:
        return w.h.request(method, path, query, token=ALICE_TOKEN, headers=hdr, **kwargs)

    replies = {
        "200-list": alice("GET", "/v1/users/alice/messages"),
        "201-create": alice("POST", "/v1/messages", json_body=_create(ALICE)),
        "204-delete": alice("DELETE", f"/v1/messages/{ALICE_SOLO}"),
        "400": alice("GET", "/v1/users/alice/messages", "limit=0"),
        "401": w.h.request("GET", "/v1/users/alice/messages", token="guess", headers=hdr),
        "403": alice("GET", "/v1/users/bob/messages"),
        "404": alice("GET", f"/v1/messages/{BOB_SOLO}"),
        "405": alice("PUT", "/v1/messages"),
        "health": w.h.request("GET", "/health", token=None, headers=hdr),
    }
    limiter.allowed = 0
    replies["429"] = alice("GET", "/v1/users/alice/messages")
    return replies


def test_allowed_origin_is_decorated_on_normal_and_error_responses() -> None:
    replies = _decorated_replies(ORIGIN)
    for name, reply in replies.items():
        assert name.split("-")[0] in (str(reply.status), "health"), (name, reply.status)
        assert cors_headers(reply) == {
            "access-control-allow-origin": ORIGIN,
            "access-control-expose-headers": "retry-after, chat-store-next-cursor, link",
        }, name
        assert reply.header("vary") == "Origin", name
        assert reply.header("access-control-allow-credentials") is None
    assert replies["429"].header("retry-after") == str(RETRY_AFTER)


def test_other_origin_gets_no_cors_headers_but_vary() -> None:
    for name, reply in _decorated_replies("https://evil.example").items():
        assert cors_headers(reply) == {}, name
        assert reply.header("vary") == "Origin", name


def test_nothing_is_allowed_when_cors_origins_is_unset() -> None:
    h = harness(config(cors_origins=None))
    preflight = h.request("OPTIONS", "/v1/messages", token=None, headers=PREFLIGHT)
    assert preflight.status == 204 and cors_headers(preflight) == {}
    for reply in (
        h.request("GET", "/v1/users/alice/messages", token=ALICE_TOKEN, headers={"Origin": ORIGIN}),
        h.request("GET", "/v1/users/alice/messages", token=None, headers={"Origin": ORIGIN}),
        h.request("GET", "/health", token=None, headers={"Origin": ORIGIN}),
    ):
        assert cors_headers(reply) == {}
        assert reply.header("vary") is None
    assert Config.from_env({}).cors_origins is None


# --- every 401 is the same 401 -------------------------------------------------------------------


def _alg_none() -> str:
    claims = {"sub": ALICE, "exp": int(time.time()) + 3600}
    return f"{b64_json({'alg': 'none', 'typ': 'JWT'})}.{b64_json(claims)}."


def _forged_sub() -> str:
    """Alice's valid token with the payload swapped for Bob's: the signature no longer fits."""
    header, _, signature = ALICE_TOKEN.split(".")
    return f"{header}.{user_token(BOB).split('.')[1]}.{signature}"


UNAUTHORIZED: list[Any] = [
    pytest.param({}, id="no-credentials"),
    pytest.param({"Authorization": "Bearer not-the-token"}, id="wrong-service-token"),
    pytest.param({"Authorization": f"Basic {TOKEN}"}, id="wrong-scheme"),
    pytest.param({"Authorization": "Bearer"}, id="scheme-only"),
    pytest.param({"Authorization": f"Bearer {user_token(exp=int(time.time()) - 3600)}"},
                 id="expired-jwt"),
    pytest.param({"Authorization": f"Bearer {user_token(exp=None)}"}, id="jwt-without-exp"),
    pytest.param({"Authorization": f"Bearer {_alg_none()}"}, id="alg-none"),
    pytest.param({"Authorization": f"Bearer {_forged_sub()}"}, id="bad-signature"),
    pytest.param({"Authorization": "Bearer " + sign_hs256(
        {"sub": ALICE, "exp": int(time.time()) + 3600}, b"another-secret-of-32-bytes-length!")},
        id="other-secret"),
    pytest.param({"Authorization": f"Bearer {user_token(sub='not valid!')}"}, id="invalid-sub"),
    pytest.param({"Authorization": f"Bearer {user_token(aud='someone-else')}"},
                 id="unexpected-aud"),
    pytest.param({"Authorization": "Bearer a.b.c"}, id="garbage-jwt"),
    pytest.param({"Cf-Access-Jwt-Assertion": access_token(OTHER_KEY)}, id="access-other-key"),
    pytest.param({"Cf-Access-Jwt-Assertion": access_token(aud=["other-app"])},
                 id="access-wrong-aud"),
    pytest.param({"Cf-Access-Jwt-Assertion": access_token(iss="https://evil.cloudflareaccess.com")},
                 id="access-wrong-iss"),
    pytest.param({"Cf-Access-Jwt-Assertion": access_token(exp=int(time.time()) - 3600)},
                 id="access-expired"),
    pytest.param({"Cf-Access-Jwt-Assertion": access_token(sub="")}, id="access-service-token"),
    pytest.param({"Authorization": "Bearer wrong", "Cf-Access-Jwt-Assertion": access_token()},
                 id="wrong-bearer-beside-valid-access"),
]


@pytest.mark.parametrize("headers", UNAUTHORIZED)
@pytest.mark.parametrize("with_access", [True, False], ids=["access-on", "access-off"])
def test_every_401_is_the_same_whatever_the_reason(
    headers: dict[str, str], with_access: bool
) -> None:
    h = harness(access=access_verifier() if with_access else None)
    path = "/v1/users/alice/messages"
    baseline = h.request("GET", path, token=None)
    reply = h.request("GET", path, token=None, headers=headers)
    assert_problem(reply, 401, "unauthorized")
    assert (reply.status, reply.headers, reply.body) == (
        baseline.status, baseline.headers, baseline.body)
    assert reply.header("www-authenticate") == 'Bearer realm="chat-store"'


def test_the_401_rig_accepts_the_unbroken_credentials() -> None:
    """So each refusal above is due to its one defect, not to the rig."""
    h = harness(access=access_verifier())
    path = "/v1/users/alice/messages"
    assert h.request("GET", path, token=ALICE_TOKEN).status == 200
    access = {"Cf-Access-Jwt-Assertion": access_token()}
    assert h.request("GET", f"/v1/users/{ACCESS_SUB}/messages", token=None,
                     headers=access).status == 200
    assert h.request("GET", path).status == 200  # the service token


def test_refused_credentials_never_reach_the_store() -> None:
    w = make_world(access=access_verifier())
    before = w.h.kv.snapshot()
    w.h.kv.reset_counters()
    for case in UNAUTHORIZED:
        reply = w.h.request("DELETE", "/v1/users/bob/messages", token=None, headers=case.values[0])
        assert reply.status == 401, case.id
    assert w.h.kv.ops == 0
    assert w.h.kv.snapshot() == before

