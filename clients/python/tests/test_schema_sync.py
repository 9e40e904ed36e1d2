"""The client stays in step with the API's contract, ``openapi.json`` at the repository root:
every schema has a TypedDict with the same keys and types, every problem code an exception
class, and every operation a method (same parameters) on both clients."""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, NotRequired, Required, get_args, get_origin

import pytest

from chat_store_client import AsyncChatStore, ChatStore
from chat_store_client import types as api_types
from chat_store_client.errors import ERROR_CLASSES, STATUS_CLASSES, error_class

OPENAPI = Path(__file__).resolve().parents[3] / "openapi.json"
if not OPENAPI.exists():  # the client's sdist has no repository around it
    pytest.skip("openapi.json of the repository not found", allow_module_level=True)
SPEC: dict[str, Any] = json.loads(OPENAPI.read_text(encoding="utf-8"))
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]

# Schemas that are not objects with properties, and how the client spells them instead.
NOT_TYPED_DICTS = {
    "Id": "str parameters", "Timestamp": "int parameters", "Content": "str",
    "Metadata": "types.Metadata", "Parts": "list[types.Part]",
    "ReindexRequest": "the keyword arguments of reindex()",
}


def ref_name(schema: dict[str, Any]) -> str | None:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return ref_name(schema["allOf"][0])
    return None


def expected_type(schema: dict[str, Any]) -> Any:
    """The Python annotation a property of this schema should have."""
    name = ref_name(schema)
    if name is not None:
        if name in NOT_TYPED_DICTS:
            spelled: dict[str, Any] = {"Id": str, "Timestamp": int, "Content": str,
                                       "Metadata": dict[str, Any],
                                       "Parts": list[dict[str, Any]]}
            return spelled[name]
        return getattr(api_types, name)
    if "const" in schema:
        return Literal[schema["const"]]
    kind = schema.get("type")
    if isinstance(kind, list):
        assert kind[1:] == ["null"], kind
        return expected_type({**schema, "type": kind[0]}) | None
    if kind == "array":
        return list[expected_type(schema["items"])]  # type: ignore[misc]
    if kind == "object":
        return dict[str, Any]
    # A string enum is typed str: a newer server's value must not break an older client.
    scalars: dict[Any, type] = {"string": str, "integer": int, "boolean": bool}
    return scalars[kind]


def same_type(actual: Any, expected: Any) -> bool:
    if get_origin(actual) in (NotRequired, Required):
        actual = get_args(actual)[0]
    if get_origin(actual) in (types.UnionType, typing.Union):
        return get_origin(expected) in (types.UnionType, typing.Union) and set(
            get_args(actual)) == set(get_args(expected))
    return bool(actual == expected)


@pytest.mark.parametrize("name", sorted(set(SCHEMAS) - set(NOT_TYPED_DICTS)))
def test_every_schema_has_a_typed_dict_with_its_keys_and_types(name: str) -> None:
    schema = SCHEMAS[name]
    typed_dict = getattr(api_types, name)
    properties: dict[str, Any] = schema["properties"]
    required = set(schema.get("required", []))
    if name == "OpenAPIDocument":  # an open document: only its required keys are typed
        properties = {key: properties[key] for key in required}
    assert typed_dict.__required_keys__ == required, name
    assert typed_dict.__optional_keys__ == set(properties) - required, name
    hints = typing.get_type_hints(typed_dict, include_extras=True)
    for key, prop in properties.items():
        assert same_type(hints[key], expected_type(prop)), (name, key, hints[key])


def test_the_schemas_left_out_are_not_objects_with_properties() -> None:
    for name in NOT_TYPED_DICTS:
        assert "properties" not in SCHEMAS[name], name


def test_every_problem_code_has_its_class() -> None:
    codes = SCHEMAS["Problem"]["properties"]["code"]["enum"]
    assert set(ERROR_CLASSES) == set(codes)
    for code, cls in ERROR_CLASSES.items():
        assert cls.code == code


def test_error_responses_map_to_the_class_of_their_status() -> None:
    """Each error response in the spec (status const + code enum) maps to a class that is,
    or derives from, the class of its status."""
    for response in SPEC["components"]["responses"].values():
        for content in response.get("content", {}).values():
            narrowing = content["schema"].get("allOf", [{}, {}])[-1].get("properties", {})
            status = narrowing.get("status", {}).get("const")
            code_schema = narrowing.get("code", {})
            codes = code_schema.get("enum") or [code_schema.get("const")]
            if status is None:
                continue
            for code in codes:
                if code is None:
                    continue
                assert issubclass(error_class(status, code), STATUS_CLASSES[status]), code


def operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    found = []
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "operationId" in operation:
                found.append((operation["operationId"], method, path, operation))
    return found


def snake_case(operation_id: str) -> str:
    words = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", operation_id)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", words).lower()


def parameter_names(operation: dict[str, Any]) -> set[str]:
    names = set()
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            parameter = SPEC["components"]["parameters"][ref_name(parameter)]
        names.add("message_id" if parameter["name"] == "id" else parameter["name"])
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        schema = SCHEMAS[ref_name(body["schema"]) or ""]
        for variant in [schema, *schema.get("oneOf", [])]:
            names |= set(variant.get("properties", {}))
    return names


@pytest.mark.parametrize("operation_id", [op[0] for op in operations()])
def test_every_operation_has_a_method_on_both_clients(operation_id: str) -> None:
    (operation,) = [op[3] for op in operations() if op[0] == operation_id]
    name = snake_case(operation_id)
    wanted = parameter_names(operation)
    if operation_id == "createMessages":
        wanted = {"messages"}
    for client in (ChatStore, AsyncChatStore):
        method = getattr(client, name, None)
        assert method is not None, f"{client.__name__}.{name} is missing"
        assert inspect.iscoroutinefunction(method) == (client is AsyncChatStore), name
        accepted = set(inspect.signature(method).parameters) - {"self"}
        assert wanted <= accepted, (client.__name__, name, wanted - accepted)


def test_snake_case_names() -> None:
    assert snake_case("getOpenAPI") == "get_open_api"
    assert snake_case("listUserConversations") == "list_user_conversations"


def test_both_clients_have_the_same_methods_and_parameters() -> None:
    public = {name for name in dir(ChatStore) if not name.startswith("_")} - {"close"}
    assert public == {name for name in dir(AsyncChatStore)
                      if not name.startswith("_")} - {"aclose"}
    for name in public:
        sync, async_ = getattr(ChatStore, name), getattr(AsyncChatStore, name)
        if callable(sync):
            assert (list(inspect.signature(sync).parameters)
                    == list(inspect.signature(async_).parameters)), name
