"""What the sync and the async client share: settings, the requests of every operation
(:class:`Call`), reading responses and errors, and the retry policy. Neither does any I/O here.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Generic, TypeVar, cast
from urllib.parse import quote

import httpx

from chat_store_client.errors import (
    AuthNotConfigured,
    ChatStoreError,
    ProtocolError,
    RateLimited,
    ServiceUnavailable,
    TransportError,
    error_class,
)
from chat_store_client.types import (
    Conversation,
    ConversationPage,
    EraseResult,
    ExportPage,
    Health,
    Message,
    MessageContext,
    MessageCreate,
    Page,
    Problem,
    ReindexResult,
)
from chat_store_client.ulid import new_ulid

T = TypeVar("T")

VERSION = "0.1.0"
URL_ENV = "CHAT_STORE_URL"
TOKEN_ENV = "CHAT_STORE_TOKEN"
NEXT_CURSOR_HEADER = "chat-store-next-cursor"
MAX_BATCH = 100
"""Messages per ``POST /v1/messages/batch``."""

Token = str | Callable[[], str]
"""A bearer token, or a function returning the current one (called before every request, so a
user JWT can be refreshed)."""


@dataclass(frozen=True)
class RetryPolicy:
    """When to send a request again.

    Retried: ``429 rate_limited``, ``503`` (except ``auth_not_configured``, which no wait
    changes) and network failures (timeouts, dropped connections). The wait is the response's
    ``Retry-After`` when it has one, else exponential backoff with full jitter. Bounded twice: at
    most ``max_attempts`` requests in all, and at most ``max_total_wait`` seconds of waiting;
    a ``Retry-After`` longer than the wait left is not waited out: the error is raised at once
    (its ``retry_after`` says how long the server asked for).

    Every request may be retried safely: creates carry a client-made id (an identical replay is
    answered with the stored message, never stored twice), the other writes are idempotent,
    and a ``DELETE`` retried after a lost response that then finds nothing counts as done.
    """

    max_attempts: int = 4
    max_total_wait: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    retry_network_errors: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_total_wait < 0 or self.backoff_initial < 0 or self.backoff_max < 0:
            raise ValueError("waits must not be negative")


NO_RETRY = RetryPolicy(max_attempts=1)


class RetryState:
    """The retry bookkeeping of one call."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng
        self.attempts = 1
        self.waited = 0.0
        self.uncertain = False
        """Whether an earlier attempt may have reached the server (a lost response)."""

    def next_delay(self, error: ChatStoreError) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to raise ``error``."""
        if isinstance(error, TransportError):
            self.uncertain = self.uncertain or error.maybe_delivered
            if not (self.policy.retry_network_errors and error.retryable):
                return None
        elif not _retryable_status(error):
            return None
        if self.attempts >= self.policy.max_attempts:
            return None
        left = self.policy.max_total_wait - self.waited
        if error.retry_after is not None:
            delay = error.retry_after
            if delay > left:
                return None
        else:
            cap = min(self.policy.backoff_max,
                      self.policy.backoff_initial * 2 ** (self.attempts - 1))
            delay = min(self.rng.uniform(0, cap), max(left, 0.0))
        self.attempts += 1
        self.waited += delay
        return delay


def _retryable_status(error: ChatStoreError) -> bool:
    if isinstance(error, AuthNotConfigured):
        return False
    return isinstance(error, RateLimited | ServiceUnavailable)


_RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures before the request could reach the server."""


def transport_error(call: Call[Any], exc: httpx.TransportError) -> TransportError:
    error = TransportError(f"{call.method} {call.path}: {type(exc).__name__}: {exc}")
    error.retryable = isinstance(exc, _RETRYABLE_TRANSPORT)
    error.maybe_delivered = not isinstance(exc, _NOT_SENT)
    error.__cause__ = exc
    return error


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and how to read its success response."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    params: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    gone_is_done: bool = False
    """A 404 after a possibly delivered earlier attempt means this call succeeded (DELETE)."""


@dataclass
class Settings:
    base_url: str
    token: Token | None
    user_agent: str


def settings(base_url: str | None, token: Token | None,
             client_base_url: httpx.URL | None = None) -> Settings:
    """Base URL and token from the arguments (the base URL also from a custom httpx client's
    own ``base_url``), else ``CHAT_STORE_URL`` / ``CHAT_STORE_TOKEN``."""
    url = base_url or (str(client_base_url) if client_base_url else "") or os.environ.get(
        URL_ENV, "")
    if not url:
        raise ValueError(f"no base URL: pass base_url=... or set {URL_ENV}")
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"base URL must be an absolute http(s) URL, got {url!r}")
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    return Settings(url.rstrip("/"), token, f"chat-store-client-python/{VERSION}")


def request_headers(settings: Settings, call: Call[Any]) -> dict[str, str]:
    headers = {"accept": "application/json, application/problem+json",
               "user-agent": settings.user_agent}
    token = settings.token() if callable(settings.token) else settings.token
    if token:
        headers["authorization"] = f"Bearer {token}"
    if call.body is not None:
        headers["content-type"] = "application/json"
    return headers


# -- responses -------------------------------------------------------------------------------


def error_from_response(response: httpx.Response) -> ChatStoreError:
    """The exception for an error response (its body already read)."""
    status = response.status_code
    body = response.content
    problem = _problem(response)
    code = problem.get("code") if problem is not None else None
    cls = error_class(status, code)
    if problem is not None:
        message = f"{status} {code}: {problem.get('detail') or problem.get('title')}"
    else:
        text = body[:200].decode("utf-8", "replace").strip()
        message = f"{status} {response.reason_phrase}" + (f": {text}" if text else "")
    return cls(message, status=status, problem=problem,
               retry_after=retry_after_seconds(response.headers.get("retry-after")),
               headers=dict(response.headers.items()), body=body)


def _problem(response: httpx.Response) -> Problem | None:
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (media_type == "application/problem+json" or media_type.endswith("json")):
        return None
    try:
        document = json.loads(response.content)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("code"), str):
        return None
    return cast(Problem, document)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` (delay-seconds or an HTTP date) in seconds, ``None`` if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def json_body(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise ProtocolError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} response is not JSON",
            status=response.status_code, body=response.content) from exc


def _field(key: str) -> Callable[[httpx.Response], Any]:
    def decode(response: httpx.Response) -> Any:
        document = json_body(response)
        if not isinstance(document, dict) or key not in document:
            raise ProtocolError(f"response has no {key!r}", status=response.status_code,
                                body=response.content)
        return document[key]
    return decode


def _whole(response: httpx.Response) -> Any:
    document = json_body(response)
    if not isinstance(document, dict):
        raise ProtocolError("response is not a JSON object", status=response.status_code,
                            body=response.content)
    return document


def _nothing(response: httpx.Response) -> None:
    return None


def parse_ndjson(data: bytes) -> list[Message]:
    messages: list[Message] = []
    for line in data.split(b"\n"):
        if line.strip():
            try:
                messages.append(json.loads(line))
            except ValueError as exc:
                raise ProtocolError("export line is not JSON", body=data) from exc
    return messages


def _export_page(response: httpx.Response) -> ExportPage:
    return {"messages": parse_ndjson(response.content),
            "next_cursor": response.headers.get(NEXT_CURSOR_HEADER) or None}


def next_cursor_of(response: httpx.Response) -> str | None:
    return response.headers.get(NEXT_CURSOR_HEADER) or None


# -- requests --------------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    """Deterministic compact UTF-8 JSON; NaN and Infinity refused (the API refuses them too)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def segment(value: str, what: str) -> str:
    """``value`` as one path segment. Empty and dot segments are refused here: a URL would
    resolve them into another path (another route), not send them."""
    if not isinstance(value, str) or value in ("", ".", ".."):
        raise ValueError(f"{what} must be a non-empty string other than '.' and '..'")
    return quote(value, safe="")


def query(**values: str | int | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
            raise TypeError(f"{name} must be an int or a str")
        out[name] = str(value)
    return out


def _optional(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def with_id(message: Mapping[str, Any], make_id: Callable[[], str]) -> MessageCreate:
    """A copy of ``message`` with a client-made id when it has none."""
    out = dict(message)
    if out.get("id") is None:
        out["id"] = make_id()
    return cast(MessageCreate, out)


class Calls:
    """The request of every operation (one function per ``operationId``)."""

    def __init__(self, make_id: Callable[[], str] = new_ulid) -> None:
        self.make_id = make_id

    @staticmethod
    def get_health() -> Call[Health]:
        return Call("GET", "/health", _whole)

    @staticmethod
    def get_open_api() -> Call[dict[str, Any]]:
        return Call("GET", "/openapi.json", _whole)

    def create_message(self, fields: Mapping[str, Any]) -> Call[Message]:
        message = with_id(_optional(**fields), self.make_id)
        return Call("POST", "/v1/messages", _field("message"), body=dumps(message))

    def create_messages(self, messages: Iterable[Mapping[str, Any]]) -> Call[list[Message]]:
        items = [with_id(m, self.make_id) for m in messages]
        return Call("POST", "/v1/messages/batch", _field("messages"),
                    body=dumps({"messages": items}))

    @staticmethod
    def get_message(message_id: str) -> Call[Message]:
        return Call("GET", f"/v1/messages/{segment(message_id, 'message_id')}",
                    _field("message"))

    @staticmethod
    def patch_message(message_id: str, changes: Mapping[str, Any]) -> Call[Message]:
        return Call("PATCH", f"/v1/messages/{segment(message_id, 'message_id')}",
                    _field("message"), body=dumps(_optional(**changes)))

    @staticmethod
    def delete_message(message_id: str) -> Call[None]:
        return Call("DELETE", f"/v1/messages/{segment(message_id, 'message_id')}", _nothing,
                    gone_is_done=True)

    @staticmethod
    def get_message_context(message_id: str, scope: str | None, before: int | None,
                            after: int | None) -> Call[MessageContext]:
        return Call("GET", f"/v1/messages/{segment(message_id, 'message_id')}/context", _whole,
                    params=query(scope=scope, before=before, after=after))

    @staticmethod
    def list_messages(kind: str, scope_id: str, limit: int | None, order: str | None,
                      start: int | None, end: int | None, cursor: str | None) -> Call[Page]:
        return Call("GET", f"/v1/{kind}/{segment(scope_id, kind[:-1] + '_id')}/messages",
                    _whole, params=query(limit=limit, order=order, start=start, end=end,
                                         cursor=cursor))

    @staticmethod
    def erase_messages(kind: str, scope_id: str, after: str | None) -> Call[EraseResult]:
        return Call("DELETE", f"/v1/{kind}/{segment(scope_id, kind[:-1] + '_id')}/messages",
                    _whole, params=query(after=after))

    @staticmethod
    def count_messages(kind: str, scope_id: str, start: int | None,
                       end: int | None) -> Call[int]:
        return Call("GET", f"/v1/{kind}/{segment(scope_id, kind[:-1] + '_id')}/messages/count",
                    _field("count"), params=query(start=start, end=end))

    @staticmethod
    def export_messages(kind: str, scope_id: str, limit: int | None,
                        cursor: str | None) -> Call[ExportPage]:
        return Call("GET", f"/v1/{kind}/{segment(scope_id, kind[:-1] + '_id')}/export",
                    _export_page, params=query(limit=limit, cursor=cursor))

    @staticmethod
    def export_raw(kind: str, scope_id: str, limit: int | None,
                   cursor: str | None) -> Call[str | None]:
        """An export page whose body the caller streams; decodes only the next cursor."""
        return Call("GET", f"/v1/{kind}/{segment(scope_id, kind[:-1] + '_id')}/export",
                    next_cursor_of, params=query(limit=limit, cursor=cursor))

    @staticmethod
    def list_user_conversations(user_id: str, limit: int | None, order: str | None,
                                start: int | None, end: int | None,
                                cursor: str | None) -> Call[ConversationPage]:
        return Call("GET", f"/v1/users/{segment(user_id, 'user_id')}/conversations", _whole,
                    params=query(limit=limit, order=order, start=start, end=end, cursor=cursor))

    @staticmethod
    def get_conversation(conversation_id: str) -> Call[Conversation]:
        return Call("GET", f"/v1/conversations/{segment(conversation_id, 'conversation_id')}",
                    _field("conversation"))

    @staticmethod
    def patch_conversation(conversation_id: str, title: str | None,
                           metadata: Mapping[str, Any] | None) -> Call[Conversation]:
        return Call("PATCH", f"/v1/conversations/{segment(conversation_id, 'conversation_id')}",
                    _field("conversation"), body=dumps(_optional(title=title, metadata=metadata)))

    @staticmethod
    def reindex(user_id: str | None, conversation_id: str | None) -> Call[ReindexResult]:
        if (user_id is None) == (conversation_id is None):
            raise ValueError("give exactly one of user_id and conversation_id")
        return Call("POST", "/v1/admin/reindex", _whole,
                    body=dumps(_optional(user_id=user_id, conversation_id=conversation_id)))


def scope_of(user_id: str | None, conversation_id: str | None) -> tuple[str, str]:
    """``("users", id)`` or ``("conversations", id)``, from exactly one of the two."""
    if (user_id is None) == (conversation_id is None):
        raise ValueError("give exactly one of user_id and conversation_id")
    if user_id is not None:
        return "users", user_id
    assert conversation_id is not None
    return "conversations", conversation_id


class EraseLoop:
    """Repeats an erase until ``remaining`` is 0, summing ``deleted``; stops early when three
    rounds in a row leave ``remaining`` where it was (entries this location cannot take yet,
    such as a create still in flight), returning that ``remaining``."""

    STALLED_ROUNDS = 3

    def __init__(self) -> None:
        self.deleted = 0
        self.remaining: int | None = None
        self.stalled = 0

    def add(self, result: EraseResult) -> bool:
        """Records one round's result; whether another round is needed."""
        self.deleted += result["deleted"]
        if self.remaining is not None and result["remaining"] >= self.remaining:
            self.stalled += 1
        else:
            self.stalled = 0
        self.remaining = result["remaining"]
        return self.remaining > 0 and self.stalled < self.STALLED_ROUNDS

    def result(self) -> EraseResult:
        return {"deleted": self.deleted, "remaining": self.remaining or 0}

def count_lines(sink: IO[bytes]) -> int:
    """Lines in the finished export file; checks that it ends with a newline."""
    sink.seek(0)
    lines = 0
    last = b"\n"
    for chunk in iter(lambda: sink.read(1 << 16), b""):
        lines += chunk.count(b"\n")
        last = chunk[-1:]
    if last != b"\n":
        raise ProtocolError("export ended in the middle of a line")
    return lines
