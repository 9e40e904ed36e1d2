"""``routing``: Request/Response values and the pure router."""

from __future__ import annotations

import pytest

from web.routing import MatchKind, Request, Response, Router


def make_router() -> Router[str]:
    """The app's route table, with handler names standing in for handlers."""
    r: Router[str] = Router()
    r.add("/health", get="health")
    r.add("/v1/messages", post="create")
    r.add("/v1/messages/batch", post="batch")
    r.add("/v1/messages/{id}", get="get", patch="patch", delete="delete")
    for kind in ("users", "conversations"):
        r.add(f"/v1/{kind}/{{scope_id}}/messages", get=f"list-{kind}", delete=f"erase-{kind}")
        r.add(f"/v1/{kind}/{{scope_id}}/messages/count", get=f"count-{kind}")
    return r


ROUTER = make_router()


@pytest.mark.parametrize(
    ("method", "path", "handler", "params"),
    [
        pytest.param("GET", "/health", "health", {}, id="health"),
        pytest.param("POST", "/v1/messages", "create", {}, id="create"),
        pytest.param("POST", "/v1/messages/batch", "batch", {}, id="batch-literal-wins"),
        pytest.param("GET", "/v1/messages/batch", "get", {"id": "batch"},
                     id="batch-as-id-for-get"),
        pytest.param("GET", "/v1/messages/m1", "get", {"id": "m1"}, id="get"),
        pytest.param("PATCH", "/v1/messages/m1", "patch", {"id": "m1"}, id="patch"),
        pytest.param("DELETE", "/v1/messages/m1", "delete", {"id": "m1"}, id="delete"),
        pytest.param("GET", "/v1/users/u.1~x/messages", "list-users", {"scope_id": "u.1~x"},
                     id="list-user"),
        pytest.param("DELETE", "/v1/users/u1/messages", "erase-users", {"scope_id": "u1"},
                     id="erase-user"),
        pytest.param("GET", "/v1/users/u1/messages/count", "count-users", {"scope_id": "u1"},
                     id="count-user"),
        pytest.param("GET", "/v1/conversations/c1/messages", "list-conversations",
                     {"scope_id": "c1"}, id="list-conversation"),
        pytest.param("GET", "/v1/conversations/count/messages/count", "count-conversations",
                     {"scope_id": "count"}, id="count-conversation-named-count"),
        pytest.param("GET", "/v1/messages/a%20b", "get", {"id": "a%20b"},
                     id="param-is-raw-segment"),
    ],
)
def test_found(method: str, path: str, handler: str, params: dict[str, str]) -> None:
    match = ROUTER.match(method, path)
    assert match.kind is MatchKind.FOUND
    assert match.handler == handler
    assert match.params == params
    assert match.allow == ()


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        pytest.param("POST", "/health", ("GET", "HEAD"), id="health"),
        pytest.param("GET", "/v1/messages", ("POST",), id="create-route"),
        pytest.param("PUT", "/v1/messages/m1", ("DELETE", "GET", "HEAD", "PATCH"),
                     id="message-put"),
        pytest.param("POST", "/v1/messages/m1", ("DELETE", "GET", "HEAD", "PATCH"),
                     id="message-post"),
        pytest.param("PUT", "/v1/messages/batch", ("DELETE", "GET", "HEAD", "PATCH", "POST"),
                     id="two-routes-merged"),
        pytest.param("PATCH", "/v1/users/u1/messages", ("DELETE", "GET", "HEAD"), id="list"),
        pytest.param("DELETE", "/v1/users/u1/messages/count", ("GET", "HEAD"), id="count"),
        pytest.param("HEAD", "/v1/messages", ("POST",), id="head-without-get"),
        pytest.param("get", "/health", ("GET", "HEAD"), id="method-is-case-sensitive"),
    ],
)
def test_wrong_method_lists_allowed_sorted(method: str, path: str, allow: tuple[str, ...]) -> None:
    match = ROUTER.match(method, path)
    assert match.kind is MatchKind.WRONG_METHOD
    assert match.handler is None
    assert match.allow == allow
    assert list(match.allow) == sorted(set(match.allow))


def test_allow_is_deduplicated_across_routes() -> None:
    r: Router[str] = Router()
    r.add("/x/{a}", get="one", post="two")
    r.add("/x/{b}", post="three", put="four")
    match = r.match("DELETE", "/x/1")
    assert match.kind is MatchKind.WRONG_METHOD
    assert match.allow == ("GET", "HEAD", "POST", "PUT")


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/", id="root"),
        pytest.param("", id="empty"),
        pytest.param("/v1", id="v1"),
        pytest.param("/v1/", id="v1-slash"),
        pytest.param("/v1/messages/", id="empty-id"),
        pytest.param("/v1/messages/a/b", id="id-with-slash"),
        pytest.param("/v1/users/u1/messages/", id="trailing-slash"),
        pytest.param("/v1/users//messages", id="empty-scope"),
        pytest.param("/v1/groups/g/messages", id="unknown-kind"),
        pytest.param("/v2/messages", id="other-version"),
        pytest.param("/health/", id="health-slash"),
        pytest.param("/HEALTH", id="case-sensitive-path"),
        pytest.param("x/health", id="prefix"),
        pytest.param("/healthz", id="suffix"),
    ],
)
def test_none(path: str) -> None:
    for method in ("GET", "POST", "HEAD"):
        match = ROUTER.match(method, path)
        assert match.kind is MatchKind.NONE
        assert match.handler is None
        assert match.allow == ()


@pytest.mark.parametrize(
    ("path", "handler"),
    [
        pytest.param("/health", "health", id="health"),
        pytest.param("/v1/messages/m1", "get", id="message"),
        pytest.param("/v1/users/u1/messages", "list-users", id="list"),
    ],
)
def test_head_falls_back_to_get(path: str, handler: str) -> None:
    match = ROUTER.match("HEAD", path)
    assert match.kind is MatchKind.FOUND
    assert match.handler == handler


def test_explicit_head_handler_wins_over_get() -> None:
    r: Router[str] = Router()
    r.add("/x", get="get", head="head")
    assert r.match("HEAD", "/x").handler == "head"


def test_first_matching_route_wins() -> None:
    r: Router[str] = Router()
    r.add("/a/literal", get="literal")
    r.add("/a/{p}", get="param")
    assert r.match("GET", "/a/literal").handler == "literal"
    assert r.match("GET", "/a/other").handler == "param"


def test_routes_are_listed_in_registration_order() -> None:
    patterns = [route.pattern for route in ROUTER.routes]
    assert patterns[:4] == ["/health", "/v1/messages", "/v1/messages/batch", "/v1/messages/{id}"]
    ROUTER.routes.clear()  # a copy: the router is not affected
    assert len(ROUTER.routes) == 8


# --- Request / Response ------------------------------------------------------------------------


def test_request_build_normalizes() -> None:
    request = Request.build(
        "patch", "/v1/messages/m1", "limit=5&order=asc&cursor=&a+b=c%20d",
        {"Content-Type": "application/json", "X-Thing": "1"}, b"{}",
    )
    assert request.method == "PATCH"
    assert request.path == "/v1/messages/m1"
    assert request.query == (("limit", "5"), ("order", "asc"), ("cursor", ""), ("a b", "c d"))
    assert request.headers == {"content-type": "application/json", "x-thing": "1"}
    assert request.header("CONTENT-TYPE") == "application/json"
    assert request.header("missing") is None
    assert request.body == b"{}"


def test_request_build_keeps_repeated_query_parameters() -> None:
    request = Request.build("GET", "/", "limit=1&limit=2")
    assert request.query == (("limit", "1"), ("limit", "2"))


def test_request_defaults() -> None:
    request = Request.build("GET", "/health")
    assert request.query == ()
    assert request.headers == {}
    assert request.body == b""


def test_response_header_lookup_is_case_insensitive() -> None:
    response = Response(200, b"x", (("Content-Type", "a"), ("allow", "GET"), ("allow", "POST")))
    assert response.header("content-type") == "a"
    assert response.header("ALLOW") == "GET"  # the first of repeated headers
    assert response.header("missing") is None
    assert Response(204).body == b""
