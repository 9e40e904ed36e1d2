"""The HTTP API: a pure function from :class:`Request` to :class:`Response`.

A :class:`Service` is built once per isolate from the configuration: routes, validator, CORS
policy, authenticator, rate limiter, index caches and compaction pacer. Each request binds it to
what is request-scoped (KV, clock, ``waitUntil``) as an :class:`App`. Handlers validate, call
the store and return data; they signal every failure by raising from the tree in ``errors.py``,
and :meth:`App.handle` renders it through the one table there as an RFC 9457 problem document.
Nothing here knows about JavaScript: ``entry.py`` adapts the runtime's objects.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from auth.hs256 import JWTSettings
from auth.principal import Authenticator, Principal
from chat_store import ChatStore, Message, MessageDraft, Scope
from config import Config
from errors import (
    AuthNotConfigured,
    ChatStoreError,
    Forbidden,
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
from index.object_cache import ObjectCache
from index.pacer import CompactionPacer
from index.sorted_index import Defer, IndexObjects, Layout
from jsonutil import dumps, loads_strict
from storage.kv import KVStore
from validation import (
    DEFAULT_CONVERSATION_LIMIT,
    Validator,
    context_query,
    count_query,
    erase_query,
    export_query,
    range_query,
)
from web.cors import CorsPolicy
from web.ratelimit import RateLimiter
from web.routing import MatchKind, Request, Response, Router

if TYPE_CHECKING:
    from auth.access import AccessVerifier

log = logging.getLogger("chat_store")

JSON = "application/json; charset=utf-8"
NDJSON = "application/x-ndjson; charset=utf-8"
PROBLEM_JSON = "application/problem+json; charset=utf-8"
Params = dict[str, str]
Handler = Callable[["App", Request, Params, Principal], Awaitable[Response]]
FORBIDDEN = "this credential may not access that resource"
# Senders whose messages a user may truncate from a conversation besides its own.
UNOWNED_ROLES = frozenset({"assistant", "system", "tool"})


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


class Service:
    """Everything that depends only on configuration, built once per isolate (``entry.py``
    keeps one): a request builds only its :class:`App`."""

    def __init__(
        self,
        config: Config,
        *,
        access: AccessVerifier | None = None,
        rate_limiter: RateLimiter | None = None,
        index_objects: IndexObjects | None = None,
        pacer: CompactionPacer | None = None,
    ) -> None:
        self.config = config
        jwt = None
        if config.jwt_secret:
            jwt = JWTSettings(config.jwt_secret.encode("utf-8"), issuer=config.jwt_issuer,
                              audience=config.jwt_audience)
        self.authenticator = Authenticator(config.api_token, jwt, access, time.time)
        self.auth_configured = bool(config.api_token or config.jwt_secret or access)
        self.validator = Validator(config)
        self.cors = CorsPolicy.from_setting(config.cors_origins)
        self.rate_limiter = rate_limiter
        # Parsed immutable index objects and compaction pacing live as long as the isolate.
        self.index_objects: IndexObjects = (
            index_objects if index_objects is not None else ObjectCache())
        self.pacer = pacer if pacer is not None else CompactionPacer()
        self.cursor_secret = (
            config.cursor_secret or config.api_token or "chat-store-unauthenticated")
        self.layout = Layout(config.index_head_max, config.index_head_keep,
                             config.index_segment_max)
        self.router = _routes()

    def bind(self, kv: KVStore, clock_ms: Callable[[], int], defer: Defer) -> App:
        return App(self, kv, clock_ms, defer)


class App:
    """One request's view of the service: the :class:`Service` with this request's KV, clock
    and deferred work."""

    def __init__(
        self, service: Service, kv: KVStore, clock_ms: Callable[[], int], defer: Defer
    ) -> None:
        self.service = service
        self.config = service.config
        self.store = ChatStore(kv, clock_ms, defer, settle_ms=service.config.journal_settle_ms,
                               cursor_secret=service.cursor_secret, layout=service.layout,
                               index_objects=service.index_objects, pacer=service.pacer,
                               retention_ms=service.config.retention_ms)

    async def handle(self, request: Request) -> Response:
        # Browsers send preflights without credentials, so they are answered before auth.
        response = self.service.cors.preflight(request) or await self._respond(request)
        return self._finish(request, response)

    async def _respond(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except ChatStoreError as exc:
            return problem_response(exc, request.path)
        except Exception:  # the last line of defence: log it, tell the client nothing internal
            log.exception("unhandled error on %s %s", request.method, request.path)
            return problem_response(InternalError("an unexpected error occurred"), request.path)

    def _finish(self, request: Request, response: Response) -> Response:
        """What every response gets, whoever produced it."""
        if request.path.startswith("/v1/"):
            response = Response(response.status, response.body,
                                (*response.headers, ("cache-control", "no-store")))
        if request.method == "HEAD":
            response = Response(response.status, b"", response.headers)
        return self.service.cors.decorate(request, response)

    async def _dispatch(self, request: Request) -> Response:
        principal = Principal.service()  # only /v1 needs credentials
        if request.path.startswith("/v1/"):
            # Before routing, so that an anonymous caller cannot map out which routes exist.
            principal = await self._authenticate(request)
        match = self.service.router.match(request.method, request.path)
        if match.kind is MatchKind.NONE:
            raise NotFound(f"no route for {request.path}")
        if match.kind is MatchKind.WRONG_METHOD:
            raise MethodNotAllowed(match.allow)
        assert match.handler is not None
        return await match.handler(self, request, match.params, principal)

    async def _authenticate(self, request: Request) -> Principal:
        if self.config.auth_disabled:
            return Principal.service()
        if not self.service.auth_configured:
            raise AuthNotConfigured("API_TOKEN is not set; set it with `wrangler secret put`")
        try:
            principal = await self.service.authenticator.authenticate(request.headers)
        except Unauthorized:
            # Throttle credential guessing per client address as well.
            await self._limit(f"ip:{request.header('cf-connecting-ip') or 'unknown'}")
            raise
        # The service token is one trusted backend speaking for every user: limiting it would
        # throttle them all, so limits apply to end users (and to failed attempts above).
        if not principal.is_service:
            await self._limit(f"user:{principal.user_id}")
        return principal

    async def _limit(self, key: str) -> None:
        limiter = self.service.rate_limiter
        if limiter is not None and not await limiter.allow(key):
            raise RateLimited(self.config.rate_limit_retry_after)

    def _json_body(self, request: Request) -> Any:
        media_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise UnsupportedMediaType("send the body as application/json")
        if request.body_too_large or len(request.body) > self.config.max_body_bytes:
            raise PayloadTooLarge(f"request body exceeds {self.config.max_body_bytes} bytes")
        return loads_strict(request.body)

    @staticmethod
    def _scope(request: Request, params: Params, principal: Principal) -> Scope:
        scope_id = params["scope_id"]
        if not is_valid_id(scope_id):
            raise ValidationError("ids are 1-128 characters of [A-Za-z0-9._~-], not . or ..")
        if request.path.startswith("/v1/users/"):
            if not principal.can_access_user(scope_id):
                raise Forbidden(FORBIDDEN)
            return Scope("user", scope_id)
        if not principal.can_access_conversation(scope_id):
            raise Forbidden(FORBIDDEN)
        return Scope("conversation", scope_id)

    @staticmethod
    def _message_id(params: Params) -> str:
        if not is_valid_id(params["id"]):
            raise NotFound("no message has that id")  # no such id can exist
        return params["id"]

    @staticmethod
    def _owner(principal: Principal) -> str | None:
        """The user a credential is confined to; None for the service token."""
        return None if principal.is_service else principal.user_id

    @staticmethod
    def _may_create(principal: Principal, draft: MessageDraft, index: int | None = None) -> None:
        allowed = principal.can_access_user(draft.user_id) and (
            draft.conversation_id is None
            or principal.can_access_conversation(draft.conversation_id)
        )
        if not allowed and index is None:
            raise Forbidden(FORBIDDEN)
        if not allowed:
            raise Forbidden(f"messages[{index}]: {FORBIDDEN}", index=index)

    @staticmethod
    def _require_service(principal: Principal) -> None:
        if not principal.is_service:
            raise Forbidden(FORBIDDEN)

    # -- handlers ---------------------------------------------------------------------------

    async def health(self, request: Request, params: Params, principal: Principal) -> Response:
        return json_response(200, {"status": "ok"})

    async def openapi(self, request: Request, params: Params, principal: Principal) -> Response:
        # Imported on first use: most isolates never serve it, and compiling its 50 KB is part
        # of every cold start that imports it.
        from generated.openapi_spec import OPENAPI

        return json_response(200, OPENAPI)

    async def create_message(
        self, request: Request, params: Params, principal: Principal
    ) -> Response:
        draft = self.service.validator.message(self._json_body(request))
        self._may_create(principal, draft)
        message, created = await self.store.create(draft)
        return json_response(201 if created else 200, {"message": message})

    async def create_batch(
        self, request: Request, params: Params, principal: Principal
    ) -> Response:
        drafts = self.service.validator.batch(self._json_body(request))
        for index, draft in enumerate(drafts):
            self._may_create(principal, draft, index)
        messages, created = await self.store.create_many(drafts)
        return json_response(201 if any(created) else 200, {"messages": messages})

    async def get_message(self, request: Request, params: Params, principal: Principal) -> Response:
        message = await self.store.get(self._message_id(params), owner=self._owner(principal))
        return json_response(200, {"message": message})

    async def patch_message(
        self, request: Request, params: Params, principal: Principal
    ) -> Response:
        message_id = self._message_id(params)
        patch = self.service.validator.patch(self._json_body(request))
        message = await self.store.patch(message_id, patch, owner=self._owner(principal))
        return json_response(200, {"message": message})

    async def delete_message(
        self, request: Request, params: Params, principal: Principal
    ) -> Response:
        await self.store.delete(self._message_id(params), owner=self._owner(principal))
        return Response(204)

    async def list_messages(
        self, request: Request, params: Params, principal: Principal
    ) -> Response:
        scope = self._scope(request, params, principal)
        page = await self.store.list_page(scope, range_query(request.query))
        # The records as stored (our deterministic JSON): what dumps of the parsed page gives.
        body = f'{{"messages":[{",".join(page.texts)}],"next_cursor":{dumps(page.next_cursor)}}}'
        return Response(200, body.encode("utf-8"), (("content-type", JSON),))

    async def message_context(
        self, request: Request, params: Params, principal: Principal
    ) -> Response:
        kind, before, after = context_query(request.query)
        message = await self.store.get(self._message_id(params), owner=self._owner(principal))
        conversation_id = message.get("conversation_id")
        if kind is None:
            kind = "conversation" if conversation_id is not None else "user"
        if kind == "user":
            scope = Scope("user", message["user_id"])
        elif conversation_id is None:
            raise ValidationError("this message has no conversation: ask for scope=user")
        elif not principal.can_access_conversation(conversation_id):
            raise Forbidden(FORBIDDEN)  # as listing that conversation would be
        else:
            scope = Scope("conversation", conversation_id)
        found = await self.store.context(message, scope, before, after)
        return json_response(200, {
            "before": found.before, "message": found.message, "after": found.after,
            "before_cursor": found.before_cursor, "after_cursor": found.after_cursor,
        })

    async def export_messages(
        self, request: Request, params: Params, principal: Principal
    ) -> Response:
        scope = self._scope(request, params, principal)
        limit, cursor = export_query(request.query)
        page = await self.store.export_page(scope, limit, cursor)
        body = "".join(line + "\n" for line in page.lines).encode("utf-8", "backslashreplace")
        headers: list[tuple[str, str]] = [("content-type", NDJSON)]
        if page.next_cursor is not None:
            headers.append(("link", f'<{request.path}?limit={limit}&cursor={page.next_cursor}>; '
                                    'rel="next"'))
            headers.append(("chat-store-next-cursor", page.next_cursor))
        return Response(200, body, tuple(headers))

    async def count_messages(
        self, request: Request, params: Params, principal: Principal
    ) -> Response:
        scope = self._scope(request, params, principal)
        start, end = count_query(request.query)
        return json_response(200, {"count": await self.store.count(scope, start, end)})

    async def erase_messages(
        self, request: Request, params: Params, principal: Principal
    ) -> Response:
        after = erase_query(request.query, request.path.startswith("/v1/conversations/"))
        if after is not None:
            return await self._truncate(params, principal, after)
        scope = self._scope(request, params, principal)
        if scope.kind == "conversation":
            # A conversation holds other users' messages: only the service may erase it.
            self._require_service(principal)
        result = await self.store.erase(scope)
        return json_response(200, {"deleted": result.deleted, "remaining": result.remaining})

    async def _truncate(self, params: Params, principal: Principal, after_id: str) -> Response:
        """Delete the conversation's messages listed after ``after_id`` (edit and regenerate
        flows). A user token needs to be able to read the conversation, and may delete only
        its own messages and those of assistants, systems and tools."""
        conversation_id = params["scope_id"]
        if not is_valid_id(conversation_id):
            raise ValidationError("ids are 1-128 characters of [A-Za-z0-9._~-], not . or ..")
        allowed = None
        if not principal.is_service:
            user = principal.user_id
            if not principal.can_access_conversation(conversation_id) and not (
                    user is not None and await self.store.writes_in(conversation_id, user)):
                raise Forbidden(FORBIDDEN)

            def allowed(message: Message) -> bool:
                role = message.get("sender", {}).get("role")
                return message["user_id"] == user or role in UNOWNED_ROLES

        if not is_valid_id(after_id):
            raise NotFound(f"message {after_id!r} does not exist")
        message = await self.store.get(after_id)
        if message.get("conversation_id") != conversation_id:
            raise NotFound(f"message {after_id!r} is not in conversation {conversation_id!r}")
        result = await self.store.truncate(conversation_id, message, allowed)
        return json_response(200, {"deleted": result.deleted, "remaining": result.remaining})

    async def list_conversations(
        self, request: Request, params: Params, principal: Principal
    ) -> Response:
        scope = self._scope(request, params, principal)
        query = range_query(request.query, DEFAULT_CONVERSATION_LIMIT)
        page = await self.store.list_conversations(scope.id, query)
        return json_response(
            200, {"conversations": page.conversations, "next_cursor": page.next_cursor})

    def _conversation(self, params: Params, principal: Principal) -> tuple[str, str | None]:
        """The conversation id, and the user who must have a message in it (None: anyone)."""
        conversation_id = params["conversation_id"]
        if not is_valid_id(conversation_id):
            raise NotFound("no conversation has that id")  # no such id can exist
        if principal.can_access_conversation(conversation_id):
            return conversation_id, None
        return conversation_id, principal.user_id

    async def get_conversation(
        self, request: Request, params: Params, principal: Principal
    ) -> Response:
        conversation_id, viewer = self._conversation(params, principal)
        conversation = await self.store.get_conversation(conversation_id, viewer)
        return json_response(200, {"conversation": conversation})

    async def patch_conversation(
        self, request: Request, params: Params, principal: Principal
    ) -> Response:
        conversation_id, viewer = self._conversation(params, principal)
        changes = self.service.validator.conversation_patch(self._json_body(request))
        conversation = await self.store.patch_conversation(conversation_id, changes, viewer)
        return json_response(200, {"conversation": conversation})

    async def reindex(self, request: Request, params: Params, principal: Principal) -> Response:
        self._require_service(principal)
        kind, scope_id = self.service.validator.reindex_target(self._json_body(request))
        result = await self.store.reindex(Scope(kind, scope_id))
        return json_response(
            200, {"index": result.index, "entries": result.entries, "scanned": result.scanned}
        )


def _routes() -> Router[Handler]:
    r: Router[Handler] = Router()
    r.add("/health", get=App.health)
    r.add("/openapi.json", get=App.openapi)
    r.add("/v1/messages", post=App.create_message)
    r.add("/v1/messages/batch", post=App.create_batch)
    r.add("/v1/messages/{id}", get=App.get_message, patch=App.patch_message,
          delete=App.delete_message)
    r.add("/v1/messages/{id}/context", get=App.message_context)
    r.add("/v1/admin/reindex", post=App.reindex)
    r.add("/v1/users/{scope_id}/conversations", get=App.list_conversations)
    r.add("/v1/conversations/{conversation_id}", get=App.get_conversation,
          patch=App.patch_conversation)
    for kind in ("users", "conversations"):
        r.add(f"/v1/{kind}/{{scope_id}}/messages", get=App.list_messages,
              delete=App.erase_messages)
        r.add(f"/v1/{kind}/{{scope_id}}/messages/count", get=App.count_messages)
        r.add(f"/v1/{kind}/{{scope_id}}/export", get=App.export_messages)
    return r
