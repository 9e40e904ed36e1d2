"""Python client for chat-store: :class:`ChatStore` (sync) and :class:`AsyncChatStore`
(async), one method per API operation, typed results (:mod:`chat_store_client.types`), one
exception class per problem code (:mod:`chat_store_client.errors`), and, with the ``langchain``
extra, :class:`chat_store_client.langchain.ChatStoreMessageHistory`.
"""

from __future__ import annotations

from chat_store_client._core import MAX_BATCH, NO_RETRY, VERSION, RetryPolicy
from chat_store_client.aio import AsyncChatStore
from chat_store_client.client import ChatStore
from chat_store_client.errors import (
    AuthNotConfigured,
    BadRequest,
    ChatStoreError,
    Conflict,
    Forbidden,
    InternalError,
    InvalidJson,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ProtocolError,
    RateLimited,
    RetentionExpired,
    ServiceUnavailable,
    StorageUnavailable,
    TransportError,
    Unauthorized,
    UnsupportedMediaType,
    ValidationError,
)
from chat_store_client.types import (
    Conversation,
    ConversationPage,
    EraseResult,
    ExportPage,
    Message,
    MessageContext,
    MessageCreate,
    Page,
    Problem,
    ReindexResult,
    Sender,
)
from chat_store_client.ulid import new_ulid

__version__ = VERSION

__all__ = [
    "MAX_BATCH",
    "NO_RETRY",
    "AsyncChatStore",
    "AuthNotConfigured",
    "BadRequest",
    "ChatStore",
    "ChatStoreError",
    "Conflict",
    "Conversation",
    "ConversationPage",
    "EraseResult",
    "ExportPage",
    "Forbidden",
    "InternalError",
    "InvalidJson",
    "Message",
    "MessageContext",
    "MessageCreate",
    "MethodNotAllowed",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "Problem",
    "ProtocolError",
    "RateLimited",
    "ReindexResult",
    "RetentionExpired",
    "RetryPolicy",
    "Sender",
    "ServiceUnavailable",
    "StorageUnavailable",
    "TransportError",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationError",
    "__version__",
    "new_ulid",
]
