"""The API's handlers, one per route and method, and the route table that names them.

Each handler takes the request's :class:`~web.app.App` (the store and the service's validator),
the request, its path parameters and the authenticated principal; it validates, checks what the
principal may reach, calls the store and returns data, raising from the tree in ``errors.py``
for every failure (``App.handle`` renders it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from auth.principal import Principal
from chat_store import Message, MessageDraft, Scope
from errors import Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationError
from ids import is_valid_id
from jsonutil import dumps, loads_strict
from validation import (
    DEFAULT_CONVERSATION_LIMIT,
    context_query,
    count_query,
    erase_query,
    export_query,
    range_query,
)
from web.responses import JSON, NDJSON, json_response
from web.routing import Request, Response, Router

if TYPE_CHECKING:
    from web.app import App

Params = dict[str, str]
Handler = Callable[["App", Request, Params, Principal], Awaitable[Response]]
FORBIDDEN = "this credential may not access that resource"
# Senders whose messages a user may truncate from a conversation besides its own.
UNOWNED_ROLES = frozenset({"assistant", "system", "tool"})


def _json_body(app: App, request: Request) -> Any:
    media_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("send the body as application/json")
    if request.body_too_large or len(request.body) > app.config.max_body_bytes:
        raise PayloadTooLarge(f"request body exceeds {app.config.max_body_bytes} bytes")
    return loads_strict(request.body)


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


def _message_id(params: Params) -> str:
    if not is_valid_id(params["id"]):
        raise NotFound("no message has that id")  # no such id can exist
    return params["id"]


def _owner(principal: Principal) -> str | None:
    """The user a credential is confined to; None for the service token."""
    return None if principal.is_service else principal.user_id


def _may_create(principal: Principal, draft: MessageDraft, index: int | None = None) -> None:
    allowed = principal.can_access_user(draft.user_id) and (
        draft.conversation_id is None
        or principal.can_access_conversation(draft.conversation_id)
    )
    if not allowed and index is None:
        raise Forbidden(FORBIDDEN)
    if not allowed:
        raise Forbidden(f"messages[{index}]: {FORBIDDEN}", index=index)


def _require_service(principal: Principal) -> None:
    if not principal.is_service:
        raise Forbidden(FORBIDDEN)


async def health(app: App, request: Request, params: Params, principal: Principal) -> Response:
    return json_response(200, {"status": "ok"})


async def openapi(app: App, request: Request, params: Params, principal: Principal) -> Response:
    # Imported on first use: most isolates never serve it, and compiling its 50 KB is part
    # of every cold start that imports it.
    from generated.openapi_spec import OPENAPI

    return json_response(200, OPENAPI)


async def create_message(
    app: App, request: Request, params: Params, principal: Principal
) -> Response:
    draft = app.service.validator.message(_json_body(app, request))
    _may_create(principal, draft)
    message, created = await app.store.create(draft)
    return json_response(201 if created else 200, {"message": message})


async def create_batch(
    app: App, request: Request, params: Params, principal: Principal
) -> Response:
    drafts = app.service.validator.batch(_json_body(app, request))
    for index, draft in enumerate(drafts):
        _may_create(principal, draft, index)
    messages, created = await app.store.create_many(drafts)
    return json_response(201 if any(created) else 200, {"messages": messages})


async def get_message(app: App, request: Request, params: Params, principal: Principal) -> Response:
    message = await app.store.get(_message_id(params), owner=_owner(principal))
    return json_response(200, {"message": message})


async def patch_message(
    app: App, request: Request, params: Params, principal: Principal
) -> Response:
    message_id = _message_id(params)
    patch = app.service.validator.patch(_json_body(app, request))
    message = await app.store.patch(message_id, patch, owner=_owner(principal))
    return json_response(200, {"message": message})


async def delete_message(
    app: App, request: Request, params: Params, principal: Principal
) -> Response:
    await app.store.delete(_message_id(params), owner=_owner(principal))
    return Response(204)


async def list_messages(
    app: App, request: Request, params: Params, principal: Principal
) -> Response:
    scope = _scope(request, params, principal)
    page = await app.store.list_page(scope, range_query(request.query))
    # The records as stored (our deterministic JSON): what dumps of the parsed page gives.
    body = f'{{"messages":[{",".join(page.texts)}],"next_cursor":{dumps(page.next_cursor)}}}'
    return Response(200, body.encode("utf-8"), (("content-type", JSON),))


async def message_context(
    app: App, request: Request, params: Params, principal: Principal
) -> Response:
    kind, before, after = context_query(request.query)
    message = await app.store.get(_message_id(params), owner=_owner(principal))
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
    found = await app.store.context(message, scope, before, after)
    return json_response(200, {
        "before": found.before, "message": found.message, "after": found.after,
        "before_cursor": found.before_cursor, "after_cursor": found.after_cursor,
    })


async def export_messages(
    app: App, request: Request, params: Params, principal: Principal
) -> Response:
    scope = _scope(request, params, principal)
    limit, cursor = export_query(request.query)
    page = await app.store.export_page(scope, limit, cursor)
    body = "".join(line + "\n" for line in page.lines).encode("utf-8", "backslashreplace")
    headers: list[tuple[str, str]] = [("content-type", NDJSON)]
    if page.next_cursor is not None:
        headers.append(("link", f'<{request.path}?limit={limit}&cursor={page.next_cursor}>; '
                                'rel="next"'))
        headers.append(("chat-store-next-cursor", page.next_cursor))
    return Response(200, body, tuple(headers))


async def count_messages(
    app: App, request: Request, params: Params, principal: Principal
) -> Response:
    scope = _scope(request, params, principal)
    start, end = count_query(request.query)
    return json_response(200, {"count": await app.store.count(scope, start, end)})


async def erase_messages(
    app: App, request: Request, params: Params, principal: Principal
) -> Response:
    after = erase_query(request.query, request.path.startswith("/v1/conversations/"))
    if after is not None:
        return await _truncate(app, params, principal, after)
    scope = _scope(request, params, principal)
    if scope.kind == "conversation":
        # A conversation holds other users' messages: only the service may erase it.
        _require_service(principal)
    result = await app.store.erase(scope)
    return json_response(200, {"deleted": result.deleted, "remaining": result.remaining})


async def _truncate(app: App, params: Params, principal: Principal, after_id: str) -> Response:
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
                user is not None and await app.store.writes_in(conversation_id, user)):
            raise Forbidden(FORBIDDEN)

        def allowed(message: Message) -> bool:
            role = message.get("sender", {}).get("role")
            return message["user_id"] == user or role in UNOWNED_ROLES

    if not is_valid_id(after_id):
        raise NotFound(f"message {after_id!r} does not exist")
    message = await app.store.get(after_id)
    if message.get("conversation_id") != conversation_id:
        raise NotFound(f"message {after_id!r} is not in conversation {conversation_id!r}")
    result = await app.store.truncate(conversation_id, message, allowed)
    return json_response(200, {"deleted": result.deleted, "remaining": result.remaining})


async def list_conversations(
    app: App, request: Request, params: Params, principal: Principal
) -> Response:
    scope = _scope(request, params, principal)
    query = range_query(request.query, DEFAULT_CONVERSATION_LIMIT)
    page = await app.store.list_conversations(scope.id, query)
    return json_response(
        200, {"conversations": page.conversations, "next_cursor": page.next_cursor})


def _conversation(params: Params, principal: Principal) -> tuple[str, str | None]:
    """The conversation id, and the user who must have a message in it (None: anyone)."""
    conversation_id = params["conversation_id"]
    if not is_valid_id(conversation_id):
        raise NotFound("no conversation has that id")  # no such id can exist
    if principal.can_access_conversation(conversation_id):
        return conversation_id, None
    return conversation_id, principal.user_id


async def get_conversation(
    app: App, request: Request, params: Params, principal: Principal
) -> Response:
    conversation_id, viewer = _conversation(params, principal)
    conversation = await app.store.get_conversation(conversation_id, viewer)
    return json_response(200, {"conversation": conversation})


async def patch_conversation(
    app: App, request: Request, params: Params, principal: Principal
) -> Response:
    conversation_id, viewer = _conversation(params, principal)
    changes = app.service.validator.conversation_patch(_json_body(app, request))
    conversation = await app.store.patch_conversation(conversation_id, changes, viewer)
    return json_response(200, {"conversation": conversation})


async def reindex(app: App, request: Request, params: Params, principal: Principal) -> Response:
    _require_service(principal)
    kind, scope_id = app.service.validator.reindex_target(_json_body(app, request))
    result = await app.store.reindex(Scope(kind, scope_id))
    return json_response(
        200, {"index": result.index, "entries": result.entries, "scanned": result.scanned}
    )


def routes() -> Router[Handler]:
    r: Router[Handler] = Router()
    r.add("/health", get=health)
    r.add("/openapi.json", get=openapi)
    r.add("/v1/messages", post=create_message)
    r.add("/v1/messages/batch", post=create_batch)
    r.add("/v1/messages/{id}", get=get_message, patch=patch_message,
          delete=delete_message)
    r.add("/v1/messages/{id}/context", get=message_context)
    r.add("/v1/admin/reindex", post=reindex)
    r.add("/v1/users/{scope_id}/conversations", get=list_conversations)
    r.add("/v1/conversations/{conversation_id}", get=get_conversation,
          patch=patch_conversation)
    for kind in ("users", "conversations"):
        r.add(f"/v1/{kind}/{{scope_id}}/messages", get=list_messages,
              delete=erase_messages)
        r.add(f"/v1/{kind}/{{scope_id}}/messages/count", get=count_messages)
        r.add(f"/v1/{kind}/{{scope_id}}/export", get=export_messages)
    return r
