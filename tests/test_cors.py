"""``cors.CorsPolicy``: parsing CORS_ORIGINS strictly, answering preflights, decorating responses.

Nothing is allowed by default, and an origin that is not allowed never sees a CORS header."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from web.cors import CorsPolicy
from web.routing import Request, Response

APP = "https://app.example.com"
POLICY = CorsPolicy.from_setting(f"{APP}, http://localhost:8787")


def preflight_request(
    origin: str | None = APP, method: str | None = "POST", headers: str | None = None
) -> Request:
    raw: dict[str, str] = {}
    if origin is not None:
        raw["Origin"] = origin
    if method is not None:
        raw["Access-Control-Request-Method"] = method
    if headers is not None:
        raw["Access-Control-Request-Headers"] = headers
    return Request.build("OPTIONS", "/v1/messages", headers=raw)


def cors_headers(response: Response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers if k.lower().startswith("access-control-")}


# Parsing the setting.


@pytest.mark.parametrize("raw", [None, "", "   ", "\t"])
def test_unset_allows_nothing(raw: str | None) -> None:
    policy = CorsPolicy.from_setting(raw)
    assert policy.origins == frozenset()
    assert policy.preflight(preflight_request()) == Response(204)
    response = Response(200, b"{}", (("content-type", "application/json"),))
    assert policy.decorate(Request.build("GET", "/", headers={"Origin": APP}), response) is response


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(APP, {APP}, id="plain"),
        pytest.param("HTTPS://App.Example.COM", {APP}, id="case-folded"),
        pytest.param("https://app.example.com:443", {APP}, id="default-https-port-dropped"),
        pytest.param("http://app.example.com:80", {"http://app.example.com"}, id="http-port-80"),
        pytest.param("https://app.example.com:8443", {"https://app.example.com:8443"}, id="port"),
        pytest.param("http://localhost:8787", {"http://localhost:8787"}, id="localhost"),
        pytest.param("http://127.0.0.1:3000", {"http://127.0.0.1:3000"}, id="ipv4"),
        pytest.param("http://[0:0::1]:3000", {"http://[::1]:3000"}, id="ipv6-compressed"),
        pytest.param("https://xn--bcher-kva.example", {"https://xn--bcher-kva.example"}, id="idn"),
        pytest.param(f" {APP} ,\thttp://localhost:8787 ", {APP, "http://localhost:8787"},
                     id="whitespace"),
        pytest.param(f"{APP},{APP}:443", {APP}, id="duplicates-merge"),
    ],
)
def test_setting_is_normalized(raw: str, expected: set[str]) -> None:
    assert CorsPolicy.from_setting(raw).origins == frozenset(expected)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("*", id="wildcard"),
        pytest.param(f"{APP},*", id="wildcard-in-list"),
        pytest.param("null", id="null"),
        pytest.param("https://*.example.com", id="wildcard-subdomain"),
        pytest.param(f"{APP}/", id="trailing-slash"),
        pytest.param(f"{APP}/path", id="path"),
        pytest.param(f"{APP}?q=1", id="query"),
        pytest.param(f"{APP}#frag", id="fragment"),
        pytest.param("https://user@app.example.com", id="userinfo"),
        pytest.param("app.example.com", id="no-scheme"),
        pytest.param("//app.example.com", id="scheme-relative"),
        pytest.param("ftp://app.example.com", id="ftp"),
        pytest.param("file://", id="file"),
        pytest.param("https://", id="no-host"),
        pytest.param("https://app.example.com:0", id="port-zero"),
        pytest.param("https://app.example.com:65536", id="port-too-large"),
        pytest.param("https://app.example.com:", id="empty-port"),
        pytest.param("https://app.example.com:abc", id="non-numeric-port"),
        pytest.param("https://bücher.example", id="non-ascii-host"),
        pytest.param("https://app example.com", id="space-in-host"),
        pytest.param("https://-app.example.com", id="leading-hyphen"),
        pytest.param("https://app..example.com", id="empty-label"),
        pytest.param("http://[::g]", id="bad-ipv6"),
        pytest.param(f"{APP},,http://localhost", id="empty-entry"),
        pytest.param(f"{APP},", id="trailing-comma"),
        pytest.param(f"{APP} http://localhost", id="space-separated"),
        pytest.param(f"{APP};http://localhost", id="semicolon-separated"),
    ],
)
def test_invalid_setting_is_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        CorsPolicy.from_setting(raw)


def test_constructor_requires_normalized_origins_and_sane_max_age() -> None:
    with pytest.raises(ValueError):
        CorsPolicy(frozenset({"HTTPS://APP.EXAMPLE.COM"}))
    with pytest.raises(ValueError):
        CorsPolicy(frozenset({"*"}))
    for bad in (-1, 86_401, True):
        with pytest.raises(ValueError):
            CorsPolicy(frozenset(), bad)
    assert CorsPolicy(frozenset({APP}), 0).max_age == 0


# Preflight.


def test_preflight_from_allowed_origin() -> None:
    response = POLICY.preflight(preflight_request(headers="Content-Type, Authorization"))
    assert response is not None
    assert response.status == 204
    assert response.body == b""
    assert cors_headers(response) == {
        "access-control-allow-origin": APP,
        "access-control-allow-methods": "GET, POST, PATCH, DELETE",
        "access-control-allow-headers": "authorization, content-type",
        "access-control-max-age": "600",
    }
    assert response.header("vary") == "Origin"
    assert response.header("access-control-allow-credentials") is None


def test_preflight_never_lists_headers_outside_the_allowlist() -> None:
    response = POLICY.preflight(preflight_request(headers="x-evil, cookie, authorization"))
    assert response is not None
    assert response.header("access-control-allow-headers") == "authorization, content-type"


def test_preflight_for_an_unsupported_method_does_not_list_it() -> None:
    # The answer is the same; the browser sees PUT missing from Allow-Methods and blocks.
    response = POLICY.preflight(preflight_request(method="PUT"))
    assert response is not None
    assert "PUT" not in (response.header("access-control-allow-methods") or "")


def test_preflight_max_age_is_configurable() -> None:
    policy = CorsPolicy.from_setting(APP, max_age=60)
    response = policy.preflight(preflight_request())
    assert response is not None and response.header("access-control-max-age") == "60"


@pytest.mark.parametrize(
    "origin",
    [
        pytest.param("https://evil.example", id="other-origin"),
        pytest.param("https://app.example.com.evil.example", id="suffix-attack"),
        pytest.param("https://evilapp.example.com", id="prefix-attack"),
        pytest.param("http://app.example.com", id="other-scheme"),
        pytest.param("https://app.example.com:8443", id="other-port"),
        pytest.param("HTTPS://APP.EXAMPLE.COM", id="not-browser-serialized"),
        pytest.param(f"{APP}/", id="trailing-slash"),
        pytest.param("null", id="null"),
        pytest.param("", id="empty"),
        pytest.param("*", id="wildcard"),
    ],
)
def test_preflight_from_other_origin_is_a_bare_204(origin: str) -> None:
    assert POLICY.preflight(preflight_request(origin)) == Response(204)


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(Request.build("GET", "/v1/messages", headers={"Origin": APP}), id="get"),
        pytest.param(preflight_request(origin=None), id="options-without-origin"),
        pytest.param(preflight_request(method=None), id="options-without-request-method"),
        pytest.param(
            Request.build("POST", "/v1/messages", headers={
                "Origin": APP, "Access-Control-Request-Method": "POST"}),
            id="post-with-preflight-headers",
        ),
    ],
)
def test_non_preflight_requests_are_not_answered(request_: Request) -> None:
    assert POLICY.preflight(request_) is None


# Decorating actual responses.

PROBLEM = Response(
    429, b"{}", (("content-type", "application/problem+json"), ("retry-after", "3"))
)


def test_decorate_allowed_origin() -> None:
    request = Request.build("GET", "/v1/messages/x", headers={"Origin": APP})
    response = POLICY.decorate(request, PROBLEM)
    assert response.status == 429
    assert response.body == b"{}"
    assert response.headers[:2] == PROBLEM.headers
    assert cors_headers(response) == {
        "access-control-allow-origin": APP,
        "access-control-expose-headers": "retry-after, chat-store-next-cursor, link",
    }
    assert response.header("vary") == "Origin"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": "https://evil.example"}, id="other-origin"),
        pytest.param({"Origin": "null"}, id="null-origin"),
        pytest.param({}, id="no-origin"),
    ],
)
def test_decorate_other_origins_adds_no_cors_headers(headers: dict[str, str]) -> None:
    response = POLICY.decorate(Request.build("GET", "/v1/x", headers=headers), PROBLEM)
    assert cors_headers(response) == {}
    assert response.status == PROBLEM.status and response.body == PROBLEM.body
    # Vary: Origin still, so a cache never reuses this answer for an allowed origin.
    assert response.headers == (*PROBLEM.headers, ("vary", "Origin"))


def test_decorate_merges_an_existing_vary() -> None:
    request = Request.build("GET", "/", headers={"Origin": APP})
    merged = POLICY.decorate(request, Response(200, b"", (("Vary", "Accept-Encoding"),)))
    assert merged.header("vary") == "Accept-Encoding, Origin"
    assert sum(1 for k, _ in merged.headers if k.lower() == "vary") == 1
    kept = POLICY.decorate(request, Response(200, b"", (("vary", "origin"),)))
    assert kept.header("vary") == "origin"


def test_decorate_is_idempotent_and_leaves_preflight_answers_alone() -> None:
    request = Request.build("GET", "/", headers={"Origin": APP})
    once = POLICY.decorate(request, Response(200))
    assert POLICY.decorate(request, once) == once
    answer = POLICY.preflight(preflight_request())
    assert answer is not None
    assert POLICY.decorate(preflight_request(), answer) == answer


@given(st.text(max_size=60))
def test_only_configured_origins_ever_get_allow_origin(origin: str) -> None:
    request = Request.build("GET", "/", headers={"Origin": origin})
    allowed = POLICY.decorate(request, Response(200)).header("access-control-allow-origin")
    assert allowed is None or (allowed == origin and origin in POLICY.origins)
    answer = POLICY.preflight(preflight_request(origin))
    assert answer is not None
    assert (answer.header("access-control-allow-origin") is not None) == (origin in POLICY.origins)
