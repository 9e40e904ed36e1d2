"""Turns untrusted request bodies and query strings into typed values, or says exactly why not.

Every rule here is a promise in the README's API section: unknown fields, wrong types and
out-of-range values are refused (400 ``validation_error``), sizes over the configured limits are
refused (413 ``payload_too_large``). Nothing is coerced: ``"5"`` is not a timestamp and ``1.0``
is not an integer, because a chat store that guesses corrupts other systems' data quietly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from config import Config
from errors import PayloadTooLarge, ValidationError
from ids import is_valid_id
from index.zset import MAX_SCORE, MIN_SCORE
from jsonutil import dumps, has_lone_surrogate, is_int
from store.model import (
    DEFAULT_LIMIT,
    MessageDraft,
    MessagePatch,
    Parts,
    RangeQuery,
    ScopeKind,
)

MAX_BATCH = 100
# Each conversation a batch writes to is refreshed (store.activity): about ten KV operations.
MAX_BATCH_CONVERSATIONS = 20
MAX_LIMIT = 100
DEFAULT_CONVERSATION_LIMIT = 20
MAX_TITLE_CHARS = 200
CONVERSATION_PATCH_FIELDS = frozenset({"title", "metadata"})
CREATE_FIELDS = frozenset(
    {"id", "user_id", "conversation_id", "sender", "content", "parts", "timestamp", "metadata"}
)
PATCH_FIELDS = frozenset({"content", "parts", "sender", "metadata", "timestamp"})
IMMUTABLE_FIELDS = frozenset({"id", "user_id", "conversation_id"})
SENDER_FIELDS = frozenset({"id", "name", "role"})
QUERY_FIELDS = frozenset({"limit", "order", "start", "end", "cursor"})
CONTEXT_QUERY_FIELDS = frozenset({"scope", "before", "after"})
EXPORT_QUERY_FIELDS = frozenset({"limit", "cursor"})
MAX_CONTEXT = 100
DEFAULT_CONTEXT = 10
MAX_EXPORT = 500
COUNT_QUERY_FIELDS = frozenset({"start", "end"})

def _size(value: Any) -> int:
    return len(dumps(value).encode("utf-8"))


class Validator:
    def __init__(self, config: Config) -> None:
        self._config = config

    def _require_object(self, value: Any, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError(f"{what} must be a JSON object")
        if has_lone_surrogate(value):
            raise ValidationError(f"{what} contains a lone UTF-16 surrogate (not valid UTF-8)")
        return value

    def _reject_unknown(self, body: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ValidationError(f"unknown field(s) in {what}: {', '.join(unknown)}")

    def _id(self, value: Any, name: str) -> str:
        if not is_valid_id(value):
            raise ValidationError(
                f"{name} must be 1-128 characters of [A-Za-z0-9._~-], not . or .."
            )
        return str(value)

    def _sender(self, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise ValidationError("sender must be an object with a string id")
        self._reject_unknown(value, SENDER_FIELDS, "sender")
        sender_id = value.get("id")
        if not isinstance(sender_id, str) or not 1 <= len(sender_id) <= 128:
            raise ValidationError("sender.id must be a string of 1-128 characters")
        for optional in ("name", "role"):
            if optional in value and not isinstance(value[optional], str):
                raise ValidationError(f"sender.{optional} must be a string")
        if _size(value) > self._config.max_sender_bytes:
            raise PayloadTooLarge(f"sender exceeds {self._config.max_sender_bytes} bytes")
        return dict(value)

    def _content(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError("content must be a string")
        if len(value.encode("utf-8")) > self._config.max_content_bytes:
            raise PayloadTooLarge(f"content exceeds {self._config.max_content_bytes} bytes")
        return value

    def _parts(self, value: Any) -> Parts:
        """Stored verbatim: only what the store itself relies on is checked (a ``type`` on
        every part, and the text of ``text`` parts, which becomes ``content``)."""
        if not isinstance(value, list):
            raise ValidationError("parts must be an array of objects")
        for n, part in enumerate(value):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise ValidationError(f"parts[{n}] must be an object with a string type")
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                raise ValidationError(f"parts[{n}] is a text part: its text must be a string")
        limit = self._config.max_parts_bytes
        if _size(value) > limit:
            raise PayloadTooLarge(f"parts exceed {limit} bytes (MAX_PARTS_BYTES)")
        return value

    def _content_and_parts(self, body: Mapping[str, Any]) -> tuple[str, Parts | None]:
        """``content`` as given, or else the text of the ``text`` parts: every stored record
        keeps a string ``content`` for readers of the seed's format."""
        parts = self._parts(body["parts"]) if "parts" in body else None
        if "content" in body:
            return self._content(body["content"]), parts
        if parts is None:
            raise ValidationError("content or parts is required")
        return text_of(parts), parts

    def _timestamp(self, value: Any) -> int:
        if not is_int(value) or not MIN_SCORE <= value <= MAX_SCORE:
            raise ValidationError("timestamp must be an integer of Unix milliseconds, 0..2^53-1")
        return int(value)

    def _metadata(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError("metadata must be an object")
        if _size(value) > self._config.max_metadata_bytes:
            raise PayloadTooLarge(f"metadata exceeds {self._config.max_metadata_bytes} bytes")
        return value

    def message(self, body: Any, what: str = "message") -> MessageDraft:
        body = self._require_object(body, what)
        self._reject_unknown(body, CREATE_FIELDS, what)
        for required in ("user_id", "sender"):
            if required not in body:
                raise ValidationError(f"{required} is required")
        user_id = self._id(body["user_id"], "user_id")
        sender = self._sender(body["sender"])
        content, parts = self._content_and_parts(body)
        return MessageDraft(
            user_id=user_id,
            sender=sender,
            content=content,
            parts=parts,
            id=self._id(body["id"], "id") if "id" in body else None,
            conversation_id=(
                self._id(body["conversation_id"], "conversation_id")
                if "conversation_id" in body
                else None
            ),
            timestamp=self._timestamp(body["timestamp"]) if "timestamp" in body else None,
            metadata=self._metadata(body["metadata"]) if "metadata" in body else None,
        )

    def batch(self, body: Any) -> list[MessageDraft]:
        # Items are checked one by one below, so that an error names the item.
        if not isinstance(body, dict) or has_lone_surrogate(list(body)):
            raise ValidationError("batch must be a JSON object with a messages array")
        self._reject_unknown(body, frozenset({"messages"}), "batch")
        items = body.get("messages")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
            raise ValidationError(f"messages must be an array of 1-{MAX_BATCH} messages")
        drafts: list[MessageDraft] = []
        seen: set[str] = set()
        for index, item in enumerate(items):
            try:
                draft = self.message(item, "item")
            except (ValidationError, PayloadTooLarge) as exc:
                raise type(exc)(f"messages[{index}]: {exc.detail}", index=index) from None
            if draft.id is not None:
                if draft.id in seen:
                    raise ValidationError(
                        f"messages[{index}]: duplicate id {draft.id!r} in batch", index=index
                    )
                seen.add(draft.id)
            drafts.append(draft)
        conversations = {d.conversation_id for d in drafts if d.conversation_id is not None}
        if len(conversations) > MAX_BATCH_CONVERSATIONS:
            raise ValidationError(
                f"a batch may write to at most {MAX_BATCH_CONVERSATIONS} conversations, "
                f"not {len(conversations)}")
        return drafts

    def reindex_target(self, body: Any) -> tuple[Literal["user", "conversation"], str]:
        body = self._require_object(body, "reindex request")
        self._reject_unknown(body, frozenset({"user_id", "conversation_id"}), "reindex request")
        if len(body) != 1:
            raise ValidationError("send exactly one of user_id or conversation_id")
        if "user_id" in body:
            return "user", self._id(body["user_id"], "user_id")
        return "conversation", self._id(body["conversation_id"], "conversation_id")

    def conversation_patch(self, body: Any) -> dict[str, Any]:
        body = self._require_object(body, "conversation patch")
        self._reject_unknown(body, CONVERSATION_PATCH_FIELDS, "conversation patch")
        if not body:
            raise ValidationError("nothing to change: send title and/or metadata")
        changes: dict[str, Any] = {}
        if "title" in body:
            title = body["title"]
            if not isinstance(title, str) or not 1 <= len(title) <= MAX_TITLE_CHARS:
                raise ValidationError(f"title must be a string of 1-{MAX_TITLE_CHARS} characters")
            changes["title"] = title
        if "metadata" in body:
            changes["metadata"] = self._metadata(body["metadata"])
        return changes

    def patch(self, body: Any) -> MessagePatch:
        body = self._require_object(body, "patch")
        frozen = sorted(set(body) & IMMUTABLE_FIELDS)
        if frozen:
            raise ValidationError(f"cannot change {', '.join(frozen)}")
        self._reject_unknown(body, PATCH_FIELDS, "patch")
        if not body:
            fields = ", ".join(sorted(PATCH_FIELDS))
            raise ValidationError(f"nothing to change: send any of {fields}")
        changes: dict[str, Any] = {}
        if "content" in body or "parts" in body:
            changes["content"], parts = self._content_and_parts(body)
            if parts is not None:
                changes["parts"] = parts
        if "sender" in body:
            changes["sender"] = self._sender(body["sender"])
        if "metadata" in body:
            changes["metadata"] = self._metadata(body["metadata"])
        if "timestamp" in body:
            changes["timestamp"] = self._timestamp(body["timestamp"])
        return MessagePatch(changes)


def text_of(parts: Parts) -> str:
    """The text of a message's ``text`` parts, concatenated in order."""
    return "".join(part["text"] for part in parts if part["type"] == "text")


def _single_params(query: tuple[tuple[str, str], ...], allowed: frozenset[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in query:
        if name not in allowed:
            raise ValidationError(
                f"unknown query parameter {name!r}; allowed: {', '.join(sorted(allowed))}"
            )
        if name in params:
            raise ValidationError(f"query parameter {name!r} given more than once")
        params[name] = value
    return params


def _int_param(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 16:
        raise ValidationError(f"{name} must be an integer between {lo} and {hi}")
    value = int(raw)
    if not lo <= value <= hi:
        raise ValidationError(f"{name} must be an integer between {lo} and {hi}")
    return value


def _bounds(params: Mapping[str, str]) -> tuple[int, int]:
    start = _int_param(params, "start", MIN_SCORE, MIN_SCORE, MAX_SCORE)
    end = _int_param(params, "end", MAX_SCORE, MIN_SCORE, MAX_SCORE)
    if start > end:
        raise ValidationError("start must not be greater than end")
    return start, end


def range_query(
    query: tuple[tuple[str, str], ...], default_limit: int = DEFAULT_LIMIT
) -> RangeQuery:
    """A listing's query; ``default_limit`` when it names none (conversations: 20)."""
    params = _single_params(query, QUERY_FIELDS)
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ValidationError("order must be asc or desc")
    start, end = _bounds(params)
    cursor = params.get("cursor")
    if cursor == "":
        raise ValidationError("cursor must not be empty")
    return RangeQuery(
        limit=_int_param(params, "limit", default_limit, 1, MAX_LIMIT),
        order="asc" if order == "asc" else "desc",
        start=start,
        end=end,
        cursor=cursor,
    )


def count_query(query: tuple[tuple[str, str], ...]) -> tuple[int, int]:
    return _bounds(_single_params(query, COUNT_QUERY_FIELDS))


def context_query(query: tuple[tuple[str, str], ...]) -> tuple[ScopeKind | None, int, int]:
    """``scope`` (None: the message's conversation if it has one), ``before``, ``after``."""
    params = _single_params(query, CONTEXT_QUERY_FIELDS)
    scope = params.get("scope")
    if scope is not None and scope not in ("conversation", "user"):
        raise ValidationError("scope must be conversation or user")
    before = _int_param(params, "before", DEFAULT_CONTEXT, 0, MAX_CONTEXT)
    after = _int_param(params, "after", DEFAULT_CONTEXT, 0, MAX_CONTEXT)
    return ("user" if scope == "user" else "conversation" if scope else None), before, after


def export_query(query: tuple[tuple[str, str], ...]) -> tuple[int, str | None]:
    params = _single_params(query, EXPORT_QUERY_FIELDS)
    cursor = params.get("cursor")
    if cursor == "":
        raise ValidationError("cursor must not be empty")
    return _int_param(params, "limit", MAX_EXPORT, 1, MAX_EXPORT), cursor


def erase_query(query: tuple[tuple[str, str], ...], conversation: bool) -> str | None:
    """A conversation erase may name ``after``: the message after which to truncate."""
    params = _single_params(query, frozenset({"after"}) if conversation else frozenset())
    after = params.get("after")
    if after == "":
        raise ValidationError("after must name a message id")
    return after
