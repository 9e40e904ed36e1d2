"""The HTTP API: a pure function from :class:`Request` to :class:`Response`.

A :class:`Service` is built once per isolate from the configuration: routes, validator, CORS
policy, authenticator, rate limiter, index caches and compaction pacer. Each request binds it to
what is request-scoped (KV, clock, ``waitUntil``) as an :class:`App`, which answers CORS
preflights, authenticates, rate-limits and routes to a handler in ``handlers.py``. Handlers
signal every failure by raising from the tree in ``errors.py``; :meth:`App.handle` renders it
through the one table there as an RFC 9457 problem document (``responses.py``).
Nothing here knows about JavaScript: ``entry.py`` adapts the runtime's objects.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from auth.hs256 import JWTSettings
from auth.principal import Authenticator, Principal
from chat_store import ChatStore
from config import Config
from errors import (
    AuthNotConfigured,
    ChatStoreError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    Unauthorized,
)
from index.object_cache import ObjectCache
from index.pacer import CompactionPacer
from index.sorted_index import Defer, IndexObjects, Layout
from storage.kv import KVStore
from validation import Validator
from web.cors import CorsPolicy
from web.handlers import routes
from web.ratelimit import RateLimiter
from web.responses import problem_response
from web.routing import MatchKind, Request, Response

if TYPE_CHECKING:
    from auth.access import AccessVerifier

log = logging.getLogger("chat_store")


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
        self.router = routes()

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
