"""Exceptions: one class per problem ``code`` of the API, all under :class:`ChatStoreError`.

Every error response of chat-store is an RFC 9457 problem document with a stable ``code``; the
client raises the class of that code, carrying the document (``problem``), the HTTP ``status``
and, for 429 and 503, the server's ``Retry-After`` in seconds (``retry_after``)::

    try:
        client.get_message("m1")
    except NotFound:
        ...
    except ChatStoreError as error:
        log(error.status, error.code, error.problem)

An error response that is not a problem document (a proxy's HTML page, a newer server's unknown
code) still raises: the class of its status when one fits (``NotFound`` for a 404, ...), else
:class:`ChatStoreError` itself, with ``problem`` ``None`` (or the document, for an unknown code).
Network failures raise :class:`TransportError`, and a success response the client cannot read
raises :class:`ProtocolError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from chat_store_client.types import Problem


class ChatStoreError(Exception):
    """Base of every error this client raises."""

    code: ClassVar[str | None] = None
    """The problem ``code`` this class stands for (``None`` for the base and grouping classes)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problem: Problem | None = None,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        """The HTTP status (``None`` when no response came: :class:`TransportError`)."""
        self.problem = problem
        """The problem document, when the response carried one."""
        self.retry_after = retry_after
        """``Retry-After`` of the response, in seconds, when it had one."""
        self.headers: dict[str, str] = dict(headers or {})
        """The response's headers (lower-case names)."""
        self.body = body
        """The raw response body (for responses that are not problem documents)."""

    @property
    def detail(self) -> str | None:
        """The problem's ``detail``: what went wrong, for a person."""
        return None if self.problem is None else self.problem.get("detail")

    @property
    def problem_code(self) -> str | None:
        """The ``code`` the server sent (may be one this client does not know)."""
        return None if self.problem is None else self.problem.get("code")

    @property
    def index(self) -> int | None:
        """For a batch error, the position of the offending message."""
        return None if self.problem is None else self.problem.get("index")


class TransportError(ChatStoreError):
    """No response: the connection failed or timed out (``__cause__`` is the ``httpx``
    exception)."""

    retryable: bool = True
    """Whether the failure is transient (a timeout or a dropped connection), so worth a retry."""
    maybe_delivered: bool = True
    """Whether the request may have reached the server (False when no connection was made)."""


class ProtocolError(ChatStoreError):
    """A success response the client could not read (not the JSON the API documents)."""


class BadRequest(ChatStoreError):
    """400: the request was refused as malformed (see the subclasses)."""


class InvalidJson(BadRequest):
    code = "invalid_json"


class ValidationError(BadRequest):
    code = "validation_error"


class Unauthorized(ChatStoreError):
    code = "unauthorized"


class Forbidden(ChatStoreError):
    code = "forbidden"


class NotFound(ChatStoreError):
    code = "not_found"


class MethodNotAllowed(ChatStoreError):
    code = "method_not_allowed"


class Conflict(ChatStoreError):
    code = "conflict"


class PayloadTooLarge(ChatStoreError):
    code = "payload_too_large"


class UnsupportedMediaType(ChatStoreError):
    code = "unsupported_media_type"


class RetentionExpired(ChatStoreError):
    code = "retention_expired"


class RateLimited(ChatStoreError):
    code = "rate_limited"


class InternalError(ChatStoreError):
    code = "internal_error"


class ServiceUnavailable(ChatStoreError):
    """503 (see the subclasses)."""


class AuthNotConfigured(ServiceUnavailable):
    code = "auth_not_configured"


class StorageUnavailable(ServiceUnavailable):
    code = "storage_unavailable"


ERROR_CLASSES: dict[str, type[ChatStoreError]] = {
    cls.code: cls
    for cls in (
        InvalidJson, ValidationError, Unauthorized, Forbidden, NotFound, MethodNotAllowed,
        Conflict, PayloadTooLarge, UnsupportedMediaType, RetentionExpired, RateLimited,
        InternalError, AuthNotConfigured, StorageUnavailable,
    )
    if cls.code is not None
}
"""Problem ``code`` -> exception class (a test keeps it equal to the API's enum)."""

STATUS_CLASSES: dict[int, type[ChatStoreError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: RetentionExpired,
    429: RateLimited,
    500: InternalError,
    503: ServiceUnavailable,
}
"""For error responses without a known ``code``: the class their status stands for."""


def error_class(status: int, code: str | None) -> type[ChatStoreError]:
    """The class to raise for an error response with this status and problem code."""
    if code is not None and code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    return STATUS_CLASSES.get(status, ChatStoreError)


__all__ = [
    "ERROR_CLASSES",
    "AuthNotConfigured",
    "BadRequest",
    "ChatStoreError",
    "Conflict",
    "Forbidden",
    "InternalError",
    "InvalidJson",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "ProtocolError",
    "RateLimited",
    "RetentionExpired",
    "ServiceUnavailable",
    "StorageUnavailable",
    "TransportError",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationError",
    "error_class",
]
