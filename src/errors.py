"""Every error the store raises, and the one table that maps them to HTTP.

The tree (httpx-style: catch a branch to handle a family)::

    ChatStoreError
    ├── ClientError                    the request is at fault (4xx)
    │   ├── Unauthorized               401 unauthorized
    │   ├── Forbidden                  403 forbidden
    │   ├── NotFound                   404 not_found
    │   ├── MethodNotAllowed           405 method_not_allowed (carries the Allow list)
    │   ├── Conflict                   409 conflict
    │   ├── PayloadTooLarge            413 payload_too_large
    │   ├── UnsupportedMediaType       415 unsupported_media_type
    │   ├── InvalidJSON                400 invalid_json
    │   ├── ValidationError            400 validation_error
    │   ├── RetentionExpired           422 retention_expired (older than RETENTION_DAYS)
    │   └── RateLimited                429 rate_limited (carries Retry-After)
    └── ServerError                    the service is at fault (5xx)
        ├── AuthNotConfigured          503 auth_not_configured
        ├── StorageUnavailable         503 storage_unavailable (carries Retry-After)
        │   ├── KVRateLimited          KV said 429 (1 write/s/key at the edge): retried first
        │   └── KVTransientError       any other failed KV call: retried first
        └── InternalError              500 internal_error

``PROBLEMS`` is the only place that knows status codes; handlers raise, ``api.handle`` renders
an RFC 9457 problem document from the table. Anything that is not a ``ChatStoreError`` becomes
``InternalError`` without its message, so no stack trace or internal detail reaches a client.
"""

from __future__ import annotations

from dataclasses import dataclass


class ChatStoreError(Exception):
    """Base of the tree. ``detail`` is safe to show to the client."""

    def __init__(self, detail: str = "", **extensions: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class ClientError(ChatStoreError):
    pass


class Unauthorized(ClientError):
    pass


class Forbidden(ClientError):
    pass


class NotFound(ClientError):
    pass


class MethodNotAllowed(ClientError):
    def __init__(self, allow: tuple[str, ...], detail: str = "") -> None:
        super().__init__(detail or f"allowed methods: {', '.join(allow)}")
        self.allow = allow


class Conflict(ClientError):
    pass


class PayloadTooLarge(ClientError):
    pass


class UnsupportedMediaType(ClientError):
    pass


class InvalidJSON(ClientError):
    pass


class ValidationError(ClientError):
    pass


class RetentionExpired(ClientError):
    """A message timestamp that retention has already removed: storing it would store nothing."""


class RateLimited(ClientError):
    def __init__(self, retry_after: int, detail: str = "") -> None:
        super().__init__(detail or "too many requests")
        self.retry_after = retry_after


class ServerError(ChatStoreError):
    pass


class AuthNotConfigured(ServerError):
    pass


class StorageUnavailable(ServerError):
    def __init__(self, retry_after: int = 1, detail: str = "") -> None:
        super().__init__(detail or "storage is temporarily unavailable; retry later")
        self.retry_after = retry_after


class KVRateLimited(StorageUnavailable):
    pass


class KVTransientError(StorageUnavailable):
    pass


class InternalError(ServerError):
    pass


@dataclass(frozen=True)
class Problem:
    status: int
    code: str
    title: str


PROBLEMS: dict[type[ChatStoreError], Problem] = {
    Unauthorized: Problem(401, "unauthorized", "Unauthorized"),
    Forbidden: Problem(403, "forbidden", "Forbidden"),
    NotFound: Problem(404, "not_found", "Not Found"),
    MethodNotAllowed: Problem(405, "method_not_allowed", "Method Not Allowed"),
    Conflict: Problem(409, "conflict", "Conflict"),
    PayloadTooLarge: Problem(413, "payload_too_large", "Payload Too Large"),
    UnsupportedMediaType: Problem(415, "unsupported_media_type", "Unsupported Media Type"),
    InvalidJSON: Problem(400, "invalid_json", "Invalid JSON"),
    ValidationError: Problem(400, "validation_error", "Validation Error"),
    RetentionExpired: Problem(422, "retention_expired", "Retention Expired"),
    RateLimited: Problem(429, "rate_limited", "Too Many Requests"),
    AuthNotConfigured: Problem(503, "auth_not_configured", "Authentication Not Configured"),
    StorageUnavailable: Problem(503, "storage_unavailable", "Storage Unavailable"),
    InternalError: Problem(500, "internal_error", "Internal Server Error"),
}


def problem_for(error: ChatStoreError) -> Problem:
    """The table row for ``error``, walking up the tree for subclasses without their own row."""
    for cls in type(error).__mro__:
        if cls in PROBLEMS:
            return PROBLEMS[cls]
    return PROBLEMS[InternalError]
