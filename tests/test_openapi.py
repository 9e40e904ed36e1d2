"""The OpenAPI document (``openapi.json``) is valid, complete and honest, without a runtime.

* Valid: the official OpenAPI 3.1 schema (as shipped by the pinned schemathesis) accepts it,
  every Schema Object is valid JSON Schema 2020-12, every ``$ref`` resolves, every path
  template's parameters are declared, and schemathesis can load every operation.
* Complete and honest: the documented routes are exactly the ``Service``'s router (pattern and
  methods), the documented error codes are exactly ``errors.PROBLEMS`` (with the same
  statuses), the schema constraints are the validation rules' own constants, and the in-process
  app's answers on paths schemathesis cannot reach (no or bad credentials, user tokens, rate
  limits, wrong methods, body errors) conform to the document.
* In sync: ``src/generated/openapi_spec.py`` (what the Worker serves) is exactly what
  ``scripts/gen_openapi_module.py`` generates from ``openapi.json``, and ``GET /openapi.json``
  serves it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from schemathesis.core.result import Err
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

import chat_store
import ids
import store.model
import validation
from auth.hs256 import sign_hs256
from config import Config
from errors import PROBLEMS, ValidationError
from generated import openapi_spec
from index.zset import MAX_SCORE, MIN_SCORE
from support.app_harness import TOKEN, AppHarness, Reply, message_body
from support.openapi_support import (
    OPENAPI_JSON,
    REPO_ROOT,
    conformance_errors,
    load_document,
    operations,
    resolve,
    schema_errors,
)
from web.app import Service
from web.cors import ALLOWED_METHODS, ALLOWED_REQUEST_HEADERS

DOC = load_document()
SCHEMAS = DOC["components"]["schemas"]
PARAMETERS = DOC["components"]["parameters"]
JWT_SECRET = "s" * 32
_PARAM = re.compile(r"\{([^/{}]+)\}")


def _generator() -> ModuleType:
    path = REPO_ROOT / "scripts" / "gen_openapi_module.py"
    spec = importlib.util.spec_from_file_location("gen_openapi_module", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _walk(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{where}/{index}")


def _schema_objects() -> Iterator[tuple[str, Any]]:
    """Every Schema Object in the document (top-level ones; subschemas are checked with them)."""
    for name, schema in SCHEMAS.items():
        yield f"components/schemas/{name}", schema
    for where, node in _walk(DOC):
        if isinstance(node, dict) and isinstance(node.get("schema"), dict) and (
            "/components/schemas/" not in where
        ):
            yield f"{where}/schema", node["schema"]


def _parameters(template: str, method: str) -> list[dict[str, Any]]:
    item = DOC["paths"][template]
    return [resolve(DOC, p) for p in [*item.get("parameters", []), *item[method].get("parameters",
                                                                                      [])]]


def _normalized(template: str) -> str:
    """Path parameter names are the router's business: compare the shapes only."""
    return _PARAM.sub("{}", template)


def _codes(schema: dict[str, Any]) -> set[str]:
    code = schema["allOf"][1]["properties"]["code"]
    return {code["const"]} if "const" in code else set(code["enum"])


def _problem_responses() -> dict[str, dict[str, Any]]:
    return {
        name: response
        for name, response in DOC["components"]["responses"].items()
        if "application/problem+json" in response.get("content", {})
    }


def _problem_schema(response: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = response["content"]["application/problem+json"]["schema"]
    return schema


# --- valid OpenAPI 3.1 ---------------------------------------------------------------------------


def test_document_is_valid_openapi_3_1() -> None:
    assert DOC["openapi"].startswith("3.1.")
    errors = [str(e).split("\n", 1)[0] for e in OPENAPI_31_VALIDATOR.iter_errors(DOC)]
    assert errors == []


@pytest.mark.parametrize(
    ("where", "schema"), list(_schema_objects()),
    ids=lambda v: v.replace("#/", "") if isinstance(v, str) else "",
)
def test_every_schema_is_valid_json_schema_2020_12(where: str, schema: Any) -> None:
    jsonschema_rs.meta.validate({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                 **schema})


def test_every_ref_resolves() -> None:
    refs = [(w, n["$ref"]) for w, n in _walk(DOC) if isinstance(n, dict) and "$ref" in n]
    assert refs
    for where, ref in refs:
        assert isinstance(ref, str) and ref.startswith("#/"), (where, ref)
        resolve(DOC, {"$ref": ref})  # raises KeyError if dangling


def test_every_component_is_used() -> None:
    text = OPENAPI_JSON.read_text()
    for kind in ("schemas", "parameters", "headers", "responses"):
        for name in DOC["components"][kind]:
            if kind == "responses" and name == "MethodNotAllowed":
                continue  # 405 belongs to no operation: it answers the methods a path lacks
            assert f'"#/components/{kind}/{name}"' in text, f"{kind}/{name} is never used"


@pytest.mark.parametrize(("template", "method"), [(t, m) for t, m, _ in operations(DOC)])
def test_path_parameters_are_declared(template: str, method: str) -> None:
    declared = {p["name"] for p in _parameters(template, method) if p["in"] == "path"}
    assert declared == set(_PARAM.findall(template))
    for parameter in _parameters(template, method):
        if parameter["in"] == "path":
            assert parameter["required"] is True


def test_operation_ids_are_unique() -> None:
    ids_ = [op["operationId"] for _, _, op in operations(DOC)]
    assert len(ids_) == len(set(ids_))


def test_schemathesis_loads_every_operation() -> None:
    schema = schemathesis.openapi.from_dict(load_document())
    schema.validate()
    labels = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation schemathesis cannot load
            raise result.err()
        labels.append(result.ok().label)
    assert len(labels) == len(list(operations(DOC)))


# --- the document is complete: routes and error codes ---------------------------------------------


def test_documented_routes_are_exactly_the_servers_routes() -> None:
    served = {
        (_normalized(route.pattern), method.lower())
        for route in Service(Config()).router.routes
        for method in route.methods
    }
    documented = {(_normalized(t), m) for t, m, _ in operations(DOC)}
    assert sorted(documented - served) == [], "documented but not served"
    assert sorted(served - documented) == [], "served but not documented"


def test_documented_error_codes_are_exactly_the_errors_table() -> None:
    table = {(p.status, p.code) for p in PROBLEMS.values()}
    assert set(SCHEMAS["Problem"]["properties"]["code"]["enum"]) == {c for _, c in table}
    documented: set[tuple[int, str]] = set()
    for response in _problem_responses().values():
        schema = _problem_schema(response)
        status = schema["allOf"][1]["properties"]["status"]["const"]
        documented |= {(status, code) for code in _codes(schema)}
    assert documented == table


def test_operation_error_responses_have_their_status() -> None:
    for template, method, operation in operations(DOC):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            schema = _problem_schema(resolve(DOC, response))
            const = schema["allOf"][1]["properties"]["status"]["const"]
            assert const == int(status), (template, method, status)


def test_every_v1_response_declares_cache_control_no_store() -> None:
    for template, method, operation in operations(DOC):
        for status, response in operation["responses"].items():
            headers = resolve(DOC, response).get("headers", {})
            has_no_store = "Cache-Control" in headers and resolve(
                DOC, headers["Cache-Control"]
            )["schema"] == {"type": "string", "const": "no-store"}
            assert has_no_store == template.startswith("/v1/"), (template, method, status)


@pytest.mark.parametrize(
    ("response", "header"),
    [("Unauthorized", "WWW-Authenticate"), ("MethodNotAllowed", "Allow"),
     ("RateLimited", "Retry-After")],
)
def test_error_headers_are_required(response: str, header: str) -> None:
    definition = DOC["components"]["responses"][response]
    assert resolve(DOC, definition["headers"][header])["required"] is True


def test_every_v1_operation_documents_the_errors_any_request_can_get() -> None:
    for template, method, operation in operations(DOC):
        statuses = set(operation["responses"])
        always = {"413", "500"}
        if template.startswith("/v1/"):
            always |= {"401", "429", "503"}
            assert operation.get("security") is None, "/v1 uses the global security"
        else:
            assert operation.get("security") == [], f"{template} needs no credentials"
        assert always <= statuses, (template, method, sorted(always - statuses))


# --- the document is honest: constraints are the validation rules' own ---------------------------


def test_id_pattern_is_the_id_grammar() -> None:
    assert SCHEMAS["Id"]["pattern"] == f"^{ids.ID_PATTERN.pattern}$"
    for name in ("MessageId", "UserId", "ConversationId"):
        assert PARAMETERS[name]["schema"] == {"$ref": "#/components/schemas/Id"}


def test_timestamp_bounds_are_the_score_bounds() -> None:
    timestamp = SCHEMAS["Timestamp"]
    assert (timestamp["type"], timestamp["minimum"], timestamp["maximum"]) == (
        "integer", MIN_SCORE, MAX_SCORE,
    )
    for name, default in (("Start", MIN_SCORE), ("End", MAX_SCORE)):
        schema = PARAMETERS[name]["schema"]
        assert (schema["minimum"], schema["maximum"], schema["default"]) == (
            MIN_SCORE, MAX_SCORE, default,
        )


def test_query_parameters_are_the_accepted_ones() -> None:
    limit = PARAMETERS["Limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (
        1, validation.MAX_LIMIT, store.model.DEFAULT_LIMIT,
    )
    assert PARAMETERS["Order"]["schema"]["enum"] == ["asc", "desc"]
    for kind in ("users/{user_id}", "conversations/{conversation_id}"):
        listed = {p["name"] for p in _parameters(f"/v1/{kind}/messages", "get")
                  if p["in"] == "query"}
        counted = {p["name"] for p in _parameters(f"/v1/{kind}/messages/count", "get")
                   if p["in"] == "query"}
        assert listed == validation.QUERY_FIELDS
        assert counted == validation.COUNT_QUERY_FIELDS


def test_request_bodies_list_exactly_the_accepted_fields() -> None:
    create, patch, sender = SCHEMAS["MessageCreate"], SCHEMAS["MessagePatch"], SCHEMAS["Sender"]
    assert set(create["properties"]) == validation.CREATE_FIELDS
    assert set(create["required"]) == {"user_id", "sender"}
    assert create["anyOf"] == [{"required": ["content"]}, {"required": ["parts"]}]
    assert set(patch["properties"]) == validation.PATCH_FIELDS
    assert set(sender["properties"]) == validation.SENDER_FIELDS
    batch = SCHEMAS["BatchCreate"]["properties"]["messages"]
    assert (batch["minItems"], batch["maxItems"]) == (1, validation.MAX_BATCH)
    for _, node in _walk(DOC["components"]["schemas"]):
        if isinstance(node, dict) and node.get("type") == "object" and "properties" in node:
            if node is SCHEMAS["OpenAPIDocument"]:
                continue
            if node is SCHEMAS["Parts"]["items"]:  # stored verbatim: any part, any fields
                assert node["additionalProperties"] is True
                continue
            assert node.get("additionalProperties") is False, node


def test_erase_bound_and_size_limits_are_the_configured_defaults() -> None:
    assert (SCHEMAS["EraseResult"]["properties"]["deleted"]["maximum"]
            == chat_store.MAX_ERASE_PER_REQUEST)
    config = Config()
    assert f"`MAX_CONTENT_BYTES` ({config.max_content_bytes} " in SCHEMAS["Content"][
        "description"]
    assert f"({config.max_metadata_bytes} bytes" in SCHEMAS["Metadata"]["description"]
    assert f"({config.max_sender_bytes} bytes" in SCHEMAS["Sender"]["description"]
    assert f"`MAX_PARTS_BYTES` ({config.max_parts_bytes} " in SCHEMAS["Parts"]["description"]
    assert "maxLength" not in SCHEMAS["Content"], "content is limited in bytes, not characters"
    assert f"{config.max_body_bytes // 2**20} MiB" in DOC["components"]["responses"][
        "PayloadTooLarge"]["description"]


def test_cors_description_matches_the_policy() -> None:
    description = DOC["info"]["description"]
    assert f"`-Methods` ({', '.join(ALLOWED_METHODS)})" in description
    assert f"`-Headers` ({', '.join(ALLOWED_REQUEST_HEADERS)})" in description


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        (message_body(), True),
        (message_body(id="a.b~c-1", conversation_id="c", timestamp=0, metadata={"k": [1]}), True),
        (message_body(timestamp=MAX_SCORE), True),
        (message_body(sender={"id": "x" * 128}), True),
        (message_body(user_id=""), False),
        (message_body(user_id="a/b"), False),
        (message_body(user_id="x" * 129), False),
        (message_body(conversation_id=None), False),
        (message_body(timestamp=-1), False),
        (message_body(timestamp=MAX_SCORE + 1), False),
        (message_body(timestamp="5"), False),
        (message_body(timestamp=True), False),
        (message_body(sender={"id": ""}), False),
        (message_body(sender={"id": "s", "name": 1}), False),
        (message_body(sender={"id": "s", "extra": "x"}), False),
        (message_body(content=5), False),
        (message_body(metadata=[]), False),
        (message_body(extra=1), False),
        ({"sender": {"id": "s"}, "content": "c"}, False),
        ([], False),
    ],
)
def test_create_schema_agrees_with_the_validator(body: Any, accepted: bool) -> None:
    assert (schema_ok := not _body_errors("MessageCreate", body)) == accepted, body
    try:
        validation.Validator(Config()).message(body)
        validator_ok = True
    except ValidationError:
        validator_ok = False
    assert validator_ok == schema_ok


@pytest.mark.parametrize(
    ("schema", "body", "accepted"),
    [
        ("MessagePatch", {"content": "x"}, True),
        ("MessagePatch", {}, False),
        ("MessagePatch", {"user_id": "u"}, False),
        ("ReindexRequest", {"user_id": "u"}, True),
        ("ReindexRequest", {"conversation_id": "c"}, True),
        ("ReindexRequest", {"user_id": "u", "conversation_id": "c"}, False),
        ("ReindexRequest", {}, False),
        ("BatchCreate", {"messages": [message_body()]}, True),
        ("BatchCreate", {"messages": []}, False),
        ("BatchCreate", {"messages": [message_body()] * 101}, False),
        ("BatchCreate", {"messages": [message_body()], "x": 1}, False),
    ],
)
def test_other_body_schemas_agree_with_the_validator(
    schema: str, body: Any, accepted: bool
) -> None:
    assert (not _body_errors(schema, body)) == accepted
    check = {
        "MessagePatch": validation.Validator(Config()).patch,
        "ReindexRequest": validation.Validator(Config()).reindex_target,
        "BatchCreate": validation.Validator(Config()).batch,
    }[schema]
    try:
        check(body)
        validator_ok = True
    except ValidationError:
        validator_ok = False
    assert validator_ok == accepted


def _body_errors(name: str, body: Any) -> list[str]:
    return schema_errors({"$ref": f"#/components/schemas/{name}"}, body)


# --- in sync: the generated module and the served document ----------------------------------------


def test_generated_module_equals_the_json_file() -> None:
    assert json.loads(OPENAPI_JSON.read_text(encoding="utf-8")) == openapi_spec.OPENAPI


def test_generated_module_is_the_generators_output() -> None:
    generator = _generator()
    wanted = generator.render(json.loads(OPENAPI_JSON.read_text(encoding="utf-8")))
    module = REPO_ROOT / "src" / "generated" / "openapi_spec.py"
    assert module.read_text(encoding="utf-8") == wanted, (
        "src/generated/openapi_spec.py is stale: run .venv/bin/python scripts/gen_openapi_module.py"
    )


def test_get_openapi_json_serves_the_document_without_credentials() -> None:
    reply = AppHarness().request("GET", "/openapi.json", token=None)
    assert reply.status == 200, reply.body
    assert reply.content_type.split(";")[0] == "application/json"
    assert reply.json == DOC
    assert _reply_errors("GET", "/openapi.json", reply) == []


def test_head_openapi_json_has_no_body() -> None:
    reply = AppHarness().request("HEAD", "/openapi.json", token=None)
    assert (reply.status, reply.body) == (200, b"")


# --- in-process answers that schemathesis cannot provoke conform to the document ------------------


def _reply_errors(method: str, path: str, reply: Reply) -> list[str]:
    return conformance_errors(method, path, reply.status, dict(reply.headers), reply.body, DOC)


def _concrete(template: str) -> str:
    return _PARAM.sub("x1", template)


def _user_token(sub: str, conversations: list[str] | None = None) -> str:
    claims = {"sub": sub, "exp": int(time.time()) + 3600, "conversations": conversations or []}
    return sign_hs256(claims, JWT_SECRET.encode())


def _user_harness() -> AppHarness:
    return AppHarness(Config(api_token=TOKEN, jwt_secret=JWT_SECRET, journal_settle_ms=1_000))


ALL_OPERATIONS = [(m.upper(), t) for t, m, _ in operations(DOC)]
V1_OPERATIONS = [(m, t) for m, t in ALL_OPERATIONS if t.startswith("/v1/")]


@pytest.mark.parametrize(("method", "template"), V1_OPERATIONS)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic dA=="])
def test_refused_credentials_conform(method: str, template: str, authorization: str | None) -> None:
    path = _concrete(template)
    reply = AppHarness().request(method, path, token=None, authorization=authorization,
                                 json_body={})
    assert reply.status == 401
    assert _reply_errors(method, path, reply) == []


@pytest.mark.parametrize(("method", "template"), V1_OPERATIONS)
def test_auth_not_configured_conforms(method: str, template: str) -> None:
    path = _concrete(template)
    reply = AppHarness(Config()).request(method, path, json_body={})
    assert (reply.status, reply.json["code"]) == (503, "auth_not_configured")
    assert _reply_errors(method, path, reply) == []


class _DenyAll:
    async def allow(self, key: str) -> bool:
        return False


@pytest.mark.parametrize(("method", "template"), V1_OPERATIONS)
@pytest.mark.parametrize("caller", ["user", "bad-credential"])
def test_rate_limited_conforms(method: str, template: str, caller: str) -> None:
    h = _user_harness()
    h.serve(rate_limiter=_DenyAll())
    path = _concrete(template)
    token = _user_token("me", ["c1"]) if caller == "user" else "wrong"
    reply = h.request(method, path, json_body={}, token=token)
    assert reply.status == 429
    assert _reply_errors(method, path, reply) == []


def test_the_service_token_is_never_rate_limited() -> None:
    """As the RateLimited response's description says."""
    h = AppHarness()
    h.serve(rate_limiter=_DenyAll())
    assert h.request("GET", "/v1/users/u1/messages/count").status == 200
    assert "service token is never limited" in DOC["components"]["responses"]["RateLimited"][
        "description"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/messages", message_body(user_id="other"), 403),
        ("POST", "/v1/messages", message_body(user_id="me", conversation_id="c9"), 403),
        ("POST", "/v1/messages/batch", {"messages": [message_body(user_id="other")]}, 403),
        ("GET", "/v1/users/other/messages", None, 403),
        ("GET", "/v1/users/other/messages/count", None, 403),
        ("DELETE", "/v1/users/other/messages", None, 403),
        ("GET", "/v1/conversations/c9/messages", None, 403),
        ("GET", "/v1/conversations/c9/messages/count", None, 403),
        ("DELETE", "/v1/conversations/c1/messages", None, 403),
        ("POST", "/v1/admin/reindex", {"user_id": "me"}, 403),
        ("GET", "/v1/messages/theirs", None, 404),
        ("PATCH", "/v1/messages/theirs", {"content": "x"}, 404),
        ("DELETE", "/v1/messages/theirs", None, 404),
        ("GET", "/v1/users/me/messages", None, 200),
        ("GET", "/v1/conversations/c1/messages/count", None, 200),
        ("POST", "/v1/messages", message_body(user_id="me", conversation_id="c1"), 201),
    ],
)
def test_user_token_answers_conform(
    method: str, path: str, body: Any, status: int
) -> None:
    h = _user_harness()
    h.create(id="theirs", user_id="other", conversation_id="c1")
    kwargs: dict[str, Any] = {"token": _user_token("me", ["c1"])}
    if body is not None:
        kwargs["json_body"] = body
    reply = h.request(method, path, **kwargs)
    assert reply.status == status, reply.body
    assert _reply_errors(method, path, reply) == []


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/v1/messages", {"body": b"{}", "content_type": "text/plain"}, 415),
        ("POST", "/v1/messages", {"body": b"{", "content_type": "application/json"}, 400),
        ("POST", "/v1/messages", {"json_body": message_body(content="x" * 65_537)}, 413),
        ("POST", "/v1/messages/batch",
         {"json_body": {"messages": [message_body(), message_body(user_id="")]}}, 400),
        ("POST", "/v1/messages/batch", {"body": b'{"messages": [1], "messages": [2]}'}, 400),
        ("POST", "/v1/messages", {"json_body": message_body(id="dup", content="other")}, 409),
        ("PATCH", "/v1/messages/dup", {"json_body": {"id": "x"}}, 400),
        ("PATCH", "/v1/messages/bad%20id", {"json_body": {"content": "x"}}, 404),
        ("GET", "/v1/users/u1/messages", {"query": "limit=0"}, 400),
        ("GET", "/v1/users/u1/messages", {"query": "limit=1&limit=1"}, 400),
        ("GET", "/v1/users/u1/messages", {"query": "cursor=nope"}, 400),
        ("GET", "/v1/users/u1/messages/count", {"query": "limit=1"}, 400),
        ("GET", "/v1/users/bad%21/messages", {}, 400),
        ("DELETE", "/v1/conversations/bad%21/messages", {}, 400),
        ("POST", "/v1/admin/reindex", {"json_body": {"user_id": "u1"}}, 200),
        ("HEAD", "/v1/users/u1/messages", {}, 200),
        ("HEAD", "/v1/messages/nope", {}, 404),
        ("DELETE", "/v1/messages/dup", {}, 204),
        ("GET", "/health", {"token": None}, 200),
    ],
)
def test_service_answers_conform(
    method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    h = AppHarness()
    h.create(id="dup")
    options = dict(kwargs)
    query = options.pop("query", "")
    reply = h.request(method, path, query, **options)
    assert reply.status == status, reply.body
    assert _reply_errors(method, path, reply) == []


def test_method_not_allowed_matches_its_component() -> None:
    for path, method in (("/v1/messages", "PUT"), ("/health", "POST")):
        reply = AppHarness().request(method, path)
        assert reply.status == 405
        response = DOC["components"]["responses"]["MethodNotAllowed"]
        assert reply.content_type.startswith("application/problem+json")
        assert reply.header("allow")
        assert schema_errors(_problem_schema(response), reply.json) == []


def test_unknown_path_is_a_documented_problem() -> None:
    reply = AppHarness().request("GET", "/nope", token=None)
    assert reply.status == 404
    schema = _problem_schema(DOC["components"]["responses"]["RouteNotFound"])
    assert schema_errors(schema, reply.json) == []


def test_cors_behaves_as_the_description_says() -> None:
    origin = "https://app.example"
    h = AppHarness(Config(api_token=TOKEN, cors_origins=origin, journal_settle_ms=1_000))
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    for path in ("/v1/messages", "/nope"):  # any path, before authentication
        reply = h.request("OPTIONS", path, token=None, headers=preflight)
        assert reply.status == 204
        assert reply.header("access-control-allow-origin") == origin
        assert reply.header("access-control-allow-methods") == ", ".join(ALLOWED_METHODS)
        assert reply.header("access-control-allow-headers") == ", ".join(ALLOWED_REQUEST_HEADERS)
        assert reply.header("access-control-max-age")
    other = h.request("OPTIONS", "/v1/messages", token=None,
                      headers={**preflight, "Origin": "https://evil.example"})
    assert other.status == 204
    assert not [k for k, _ in other.headers if k.lower().startswith("access-control-")]
    reply = h.request("GET", "/v1/users/u1/messages", headers={"Origin": origin})
    assert reply.header("access-control-allow-origin") == origin
    assert "retry-after" in (reply.header("access-control-expose-headers") or "").lower()
    assert "Origin" in (h.request("GET", "/health", token=None).header("vary") or "")
