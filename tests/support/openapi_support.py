"""The committed OpenAPI document, and a check that one HTTP response conforms to it.

Shared by the unit tests (responses from ``api.App`` in-process) and the integration tests
(responses from the real Worker). ``conformance_errors`` checks what schemathesis checks for
the responses it cannot provoke itself (no credentials, user tokens, rate limits, wrong
methods): the status is documented for the operation, the content type matches, the body
matches the schema, and every required header is there with a valid value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAPI_JSON = REPO_ROOT / "openapi.json"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TEMPLATE_PARAM = re.compile(r"\{[^/{}]+\}")


@cache
def _document_text() -> str:
    return OPENAPI_JSON.read_text(encoding="utf-8")


def load_document() -> dict[str, Any]:
    """A fresh copy of ``openapi.json`` (callers may mutate it)."""
    document: dict[str, Any] = json.loads(_document_text())
    return document


def operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(path template, lower-case method, operation)`` for every documented operation."""
    for template, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield template, method, item[method]


def resolve(document: Mapping[str, Any], node: Any) -> Any:
    """Follow local ``$ref`` chains (``#/a/b``) until a non-reference node."""
    seen: set[str] = set()
    while isinstance(node, Mapping) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
            raise ValueError(f"unsupported or cyclic $ref {ref!r}")
        seen.add(ref)
        node = document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def match_template(document: Mapping[str, Any], path: str) -> str | None:
    """The documented path template that ``path`` (a concrete request path) falls under."""
    segments = path.split("/")
    templates: Mapping[str, Any] = document["paths"]
    for template in templates:
        parts = template.split("/")
        if len(parts) == len(segments) and all(
            (_TEMPLATE_PARAM.fullmatch(part) is not None and seg != "") or part == seg
            for part, seg in zip(parts, segments, strict=True)
        ):
            return template
    return None


@cache
def _validator(schema_json: str) -> jsonschema_rs.Validator:
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": json.loads(_document_text())["components"],
        "allOf": [json.loads(schema_json)],
    }
    return jsonschema_rs.validator_for(root)


def schema_errors(schema: Mapping[str, Any], instance: Any) -> list[str]:
    """Why ``instance`` does not match ``schema`` (refs resolve against openapi.json)."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    return [str(e).split("\n", 1)[0] for e in validator.iter_errors(instance)]


def _coerce_header(value: str, schema: Mapping[str, Any]) -> Any:
    if schema.get("type") == "integer" and value.isascii() and value.isdigit():
        return int(value)
    return value


def conformance_errors(
    method: str,
    path: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    document: Mapping[str, Any] | None = None,
) -> list[str]:
    """Everything about this response that the document does not allow (empty: conforms).

    ``headers`` must be case-insensitive or have lower-case names. HEAD is checked against
    the GET operation, without a body.
    """
    document = document if document is not None else load_document()
    template = match_template(document, path)
    if template is None:
        return [f"{path} matches no documented path"]
    verb = "get" if method.lower() == "head" else method.lower()
    operation = document["paths"][template].get(verb)
    if operation is None:
        return [f"{method} {template} is not documented"]
    documented = operation["responses"]
    definition = documented.get(str(status)) or documented.get(f"{str(status)[0]}XX")
    if definition is None:
        return [f"{method} {template}: status {status} is not documented ({sorted(documented)})"]
    definition = resolve(document, definition)
    errors: list[str] = []
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, header in definition.get("headers", {}).items():
        header = resolve(document, header)
        value = lowered.get(name.lower())
        if value is None:
            if header.get("required", False):
                errors.append(f"required header {name} is missing")
            continue
        coerced = _coerce_header(value, header["schema"])
        errors += [f"header {name}: {e}" for e in schema_errors(header["schema"], coerced)]
    content = definition.get("content")
    if not content:
        if body:
            errors.append(f"status {status} is documented without a body, got {body[:80]!r}")
        return errors
    content_type = lowered.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in content:
        errors.append(f"content type {content_type!r} is not one of {sorted(content)}")
        return errors
    if method.upper() == "HEAD":
        return errors
    try:
        data = json.loads(body)
    except ValueError:
        return [*errors, f"body is not JSON: {body[:80]!r}"]
    errors += schema_errors(content[media_type]["schema"], data)
    return errors
