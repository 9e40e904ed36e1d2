"""Responses as the API writes them: JSON bodies, and RFC 9457 problem documents for the
exception tree in ``errors.py`` (through the one table there)."""

from __future__ import annotations

from typing import Any

from errors import (
    ChatStoreError,
    MethodNotAllowed,
    RateLimited,
    StorageUnavailable,
    Unauthorized,
    problem_for,
)
from jsonutil import dumps
from web.routing import Response

JSON = "application/json; charset=utf-8"
NDJSON = "application/x-ndjson; charset=utf-8"
PROBLEM_JSON = "application/problem+json; charset=utf-8"


def _encode(data: Any) -> bytes:
    # A lone surrogate (from a path or an echoed name) becomes a JSON \\u escape, never a crash.
    return dumps(data).encode("utf-8", "backslashreplace")


def json_response(status: int, data: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, _encode(data), (("content-type", JSON), *headers))


def problem_response(error: ChatStoreError, instance: str) -> Response:
    problem = problem_for(error)
    body: dict[str, Any] = {
        "type": f"https://chat-store.dev/problems/{problem.code}",
        "title": problem.title,
        "status": problem.status,
        "detail": error.detail or problem.title,
        "code": problem.code,
        "instance": instance,
        **error.extensions,
    }
    headers: list[tuple[str, str]] = [("content-type", PROBLEM_JSON)]
    if isinstance(error, MethodNotAllowed):
        headers.append(("allow", ", ".join(error.allow)))
    if isinstance(error, Unauthorized):
        headers.append(("www-authenticate", 'Bearer realm="chat-store"'))
    if isinstance(error, RateLimited | StorageUnavailable):
        headers.append(("retry-after", str(error.retry_after)))
    return Response(problem.status, _encode(body), tuple(headers))
