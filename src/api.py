"""The HTTP API: a pure function from :class:`Request` to :class:`Response`.

Handlers validate, call the store and return data; they signal every failure by raising from the
tree in ``errors.py``, and :meth:`App.handle` renders it through the one table there as an RFC 9457
problem document. Nothing here knows about JavaScript: ``entry.py`` adapts the runtime's objects.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from chat_store import ChatStore, Defer, Scope
from config import Config
from errors import (
    AuthNotConfigured,
    ChatStoreError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    StorageUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationError,
    problem_for,
)
from ids import is_valid_id
from jsonutil import dumps, loads_strict
from kv import KVStore
from routing import MatchKind, Request, Response, Router
from validation import Validator, count_query, range_query

log = logging.getLogger("chat_store")

JSON = "application/json; charset=utf-8"
PROBLEM_JSON = "application/problem+json; charset=utf-8"
Params = dict[str, str]
Handler = Callable[[Request, Params], Awaitable[Response]]


def json_response(status: int, data: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, dumps(data).encode("utf-8"), (("content-type", JSON), *headers))


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
    return Response(problem.status, dumps(body).encode("utf-8"), tuple(headers))


class App:
    def __init__(
        self, config: Config, kv: KVStore, clock_ms: Callable[[], int], defer: Defer
    ) -> None:
        self.config = config
        secret = config.cursor_secret or config.api_token or "chat-store-unauthenticated"
        self.store = ChatStore(kv, config, clock_ms, defer, cursor_secret=secret)
        self.validator = Validator(config)
        self.router: Router[Handler] = Router()
        r = self.router
        r.add("/health", get=self.health)
        r.add("/v1/messages", post=self.create_message)
        r.add("/v1/messages/batch", post=self.create_batch)
        r.add("/v1/messages/{id}", get=self.get_message, patch=self.patch_message,
              delete=self.delete_message)
        r.add("/v1/admin/reindex", post=self.reindex)
        for kind in ("users", "conversations"):
            r.add(f"/v1/{kind}/{{scope_id}}/messages", get=self.list_messages,
                  delete=self.erase_messages)
            r.add(f"/v1/{kind}/{{scope_id}}/messages/count", get=self.count_messages)

    async def handle(self, request: Request) -> Response:
        try:
            response = await self._dispatch(request)
        except ChatStoreError as exc:
            response = problem_response(exc, request.path)
        except Exception:  # the last line of defence: log it, tell the client nothing internal
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = problem_response(InternalError("an unexpected error occurred"),
                                        request.path)
        if request.path.startswith("/v1/"):
            response = Response(response.status, response.body,
                                (*response.headers, ("cache-control", "no-store")))
        if request.method == "HEAD":
            response = Response(response.status, b"", response.headers)
        return response

    async def _dispatch(self, request: Request) -> Response:
        match = self.router.match(request.method, request.path)
        if match.kind is MatchKind.NONE:
            raise NotFound(f"no route for {request.path}")
        if request.path.startswith("/v1/"):
            self._authenticate(request)
        if match.kind is MatchKind.WRONG_METHOD:
            raise MethodNotAllowed(match.allow)
        assert match.handler is not None
        return await match.handler(request, match.params)

    def _authenticate(self, request: Request) -> None:
        if self.config.auth_disabled:
            return
        if not self.config.api_token:
            raise AuthNotConfigured("API_TOKEN is not set; set it with `wrangler secret put`")
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        expected = self.config.api_token.encode("utf-8")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode("utf-8"), expected
        ):
            raise Unauthorized("a valid bearer token is required")

    def _json_body(self, request: Request) -> Any:
        media_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise UnsupportedMediaType("send the body as application/json")
        if len(request.body) > self.config.max_body_bytes:
            raise PayloadTooLarge(f"request body exceeds {self.config.max_body_bytes} bytes")
        return loads_strict(request.body)

    @staticmethod
    def _scope(request: Request, params: Params) -> Scope:
        scope_id = params["scope_id"]
        if not is_valid_id(scope_id):
            raise ValidationError("ids are 1-128 characters of [A-Za-z0-9._~-]")
        return Scope("user" if request.path.startswith("/v1/users/") else "conversation",
                     scope_id)

    @staticmethod
    def _message_id(params: Params) -> str:
        if not is_valid_id(params["id"]):
            raise NotFound("no message has that id")  # no such id can exist
        return params["id"]

    # -- handlers ---------------------------------------------------------------------------

    async def health(self, request: Request, params: Params) -> Response:
        return json_response(200, {"status": "ok"})

    async def create_message(self, request: Request, params: Params) -> Response:
        draft = self.validator.message(self._json_body(request))
        message, created = await self.store.create(draft)
        return json_response(201 if created else 200, {"message": message})

    async def create_batch(self, request: Request, params: Params) -> Response:
        drafts = self.validator.batch(self._json_body(request))
        messages, created = await self.store.create_many(drafts)
        return json_response(201 if any(created) else 200, {"messages": messages})

    async def get_message(self, request: Request, params: Params) -> Response:
        return json_response(200, {"message": await self.store.get(self._message_id(params))})

    async def patch_message(self, request: Request, params: Params) -> Response:
        message_id = self._message_id(params)
        patch = self.validator.patch(self._json_body(request))
        return json_response(200, {"message": await self.store.patch(message_id, patch)})

    async def delete_message(self, request: Request, params: Params) -> Response:
        await self.store.delete(self._message_id(params))
        return Response(204)

    async def list_messages(self, request: Request, params: Params) -> Response:
        scope = self._scope(request, params)
        page = await self.store.list_page(scope, range_query(request.query))
        return json_response(200, {"messages": page.messages, "next_cursor": page.next_cursor})

    async def count_messages(self, request: Request, params: Params) -> Response:
        scope = self._scope(request, params)
        start, end = count_query(request.query)
        return json_response(200, {"count": await self.store.count(scope, start, end)})

    async def erase_messages(self, request: Request, params: Params) -> Response:
        result = await self.store.erase(self._scope(request, params))
        return json_response(200, {"deleted": result.deleted, "remaining": result.remaining})

    async def reindex(self, request: Request, params: Params) -> Response:
        body = self.validator.reindex_target(self._json_body(request))
        result = await self.store.reindex(Scope(*body))
        return json_response(
            200, {"index": result.index, "entries": result.entries, "scanned": result.scanned}
        )
