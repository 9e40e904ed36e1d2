"""Runtime glue: the only module that touches ``js`` and ``pyodide``.

It adapts the Workers request to :class:`routing.Request`, the KV binding to the
:class:`kv.KVStore` protocol, and :class:`routing.Response` back to a JS ``Response``. Two FFI
traps shape it: a Python dict handed to JS (response headers, KV options) must be converted with
``Object.fromEntries`` or it is silently lost or kills the isolate, and a coroutine handed to
``ctx.waitUntil`` must be wrapped in a proxy that outlives the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from js import JSON, Function, Object, Promise, Response, WritableStream, crypto, fetch
from pyodide.ffi import JsException, create_proxy, to_js

from config import Config, ConfigError
from errors import InternalError, KVRateLimited, KVTransientError
from jsonutil import dumps
from storage.kv import MAX_LIST_LIMIT, ListedKey, ListPage, Metadata, ValueWithMetadata
from storage.retrying import RetryingKV
from web.app import Service
from web.responses import problem_response
from web.routing import Request
from web.routing import Response as PyResponse

if TYPE_CHECKING:
    from auth.access import AccessVerifier

log = logging.getLogger("chat_store")


@dataclass(frozen=True)
class _Isolate:
    """What outlives a request: the service (config, routes, caches, pacer, the Access key
    cache) and the KV binding behind the storage protocol."""

    service: Service
    kv: RetryingKV


_isolate: _Isolate | None = None
MAX_JWKS_BYTES = 64 * 1024
# How long a refused body may keep its 413 waiting while it is read and dropped: long enough
# for any upload on a local connection, short enough that a client stalled mid-upload (or one
# waiting for the answer before it sends) still hears the 413 early.
UNREAD_BODY_WAIT_S = 1.0


def _kv_error(exc: JsException) -> Exception:
    """A failed KV call as our error: rate limited, transient, or (JS type errors) our bug."""
    message = str(exc)
    log.warning("KV operation failed: %s", message)
    if "429" in message or "Too Many Requests" in message:
        return KVRateLimited()
    if message.startswith(("TypeError", "RangeError", "SyntaxError")):
        bug: Exception = exc  # retrying cannot help, so it is a 500
        return bug
    return KVTransientError()


def _js_object(value: dict[str, Any]) -> Any:
    return to_js(value, dict_converter=Object.fromEntries)


class WorkersKV:
    """The ``CHAT_KV`` binding behind the ``KVStore`` protocol; JS failures become our errors.

    Results cross into Python as JSON text (one string, parsed by ``json``) rather than as JS
    proxies converted field by field, and a page's record reads are one ``Promise.all``
    (``kv.BatchReads``): each awaited JS promise costs an event-loop trip in Pyodide.
    """

    def __init__(self, binding: Any) -> None:
        self._binding = binding
        # getWithMetadata taking its arguments as one array, so that JS's own Array.map over
        # [[key], ...] makes a page's reads without a Python call per key (a plain map would
        # pass each element's index too, which getWithMetadata takes for its response type).
        # Measured: 50 reads cost about 4 ms less CPU than one FFI call per key.
        self._get_each = Function.prototype.apply.bind(binding.getWithMetadata, binding)

    async def _call(self, operation: Awaitable[Any]) -> Any:
        try:
            return await operation
        except JsException as exc:
            raise _kv_error(exc) from None

    async def get(self, key: str) -> str | None:
        value = await self._call(self._binding.get(key))
        return None if value is None else str(value)

    async def get_with_metadata(self, key: str) -> ValueWithMetadata | None:
        [found] = await self.get_many_with_metadata([key])
        return found

    async def get_many_with_metadata(
        self, keys: Sequence[str]
    ) -> list[ValueWithMetadata | None]:
        try:
            reads = Promise.all(JSON.parse(dumps([[key] for key in keys])).map(self._get_each))
        except JsException as exc:  # a key KV rejects at once (too long, say)
            raise _kv_error(exc) from None
        results = json.loads(str(JSON.stringify(await self._call(reads))))
        return [
            None if r.get("value") is None else ValueWithMetadata(r["value"], r.get("metadata"))
            for r in results
        ]

    async def put(
        self, key: str, value: str, *, metadata: Metadata | None = None,
        expiration: int | None = None,
    ) -> None:
        options: dict[str, Any] = {}
        if expiration is not None:
            options["expiration"] = expiration
        if metadata is not None:
            options["metadata"] = metadata
        # One crossing, through JSON rather than to_js: large ints (2**53-1 timestamps) would
        # become BigInts that KV cannot serialize, and None would become undefined and vanish.
        await self._call(self._binding.put(key, value, JSON.parse(dumps(options))))

    async def delete(self, key: str) -> None:
        await self._call(self._binding.delete(key))

    async def list(
        self, *, prefix: str = "", limit: int = MAX_LIST_LIMIT, cursor: str | None = None
    ) -> ListPage:
        options: dict[str, Any] = {"prefix": prefix, "limit": limit}
        if cursor:
            options["cursor"] = cursor
        listed = await self._call(self._binding.list(_js_object(options)))
        page = json.loads(str(JSON.stringify(listed)))  # one crossing, not one per key
        keys = [
            ListedKey(k["name"], k.get("metadata"), k.get("expiration")) for k in page["keys"]
        ]
        return ListPage(keys, bool(page.get("list_complete")), page.get("cursor") or None)


class WebCryptoRsaVerifier:
    """RSASSA-PKCS1-v1_5 / SHA-256 through the runtime's WebCrypto (constant-time, native)."""

    async def verify(self, jwk: dict[str, Any], signing_input: bytes, signature: bytes) -> bool:
        algorithm = _js_object({"name": "RSASSA-PKCS1-v1_5", "hash": "SHA-256"})
        key = await crypto.subtle.importKey(
            "jwk", _js_object(jwk), algorithm, False, to_js(["verify"])
        )
        ok = await crypto.subtle.verify(
            "RSASSA-PKCS1-v1_5", key, to_js(signature), to_js(signing_input)
        )
        return ok is True


class FetchJwks:
    """GETs the Access team's certs; the verifier caches what this returns."""

    async def fetch(self, url: str) -> dict[str, Any]:
        response = await fetch(url)
        if not 200 <= int(response.status) < 300:
            raise ValueError(f"JWKS fetch answered {response.status}")
        text = str(await response.text())
        if len(text) > MAX_JWKS_BYTES:
            raise ValueError("JWKS document is too large")
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("JWKS document is not an object")
        return document


class StaticJwks:
    """A JWKS given in configuration (``ACCESS_JWKS``): pinned keys, no network."""

    def __init__(self, document: str) -> None:
        self._document = json.loads(document)

    async def fetch(self, url: str) -> dict[str, Any]:
        return dict(self._document)


class BindingRateLimiter:
    """The Workers Rate Limiting binding behind ``ratelimit.RateLimiter``."""

    def __init__(self, binding: Any) -> None:
        self._binding = binding

    async def allow(self, key: str) -> bool:
        try:
            outcome = await self._binding.limit(_js_object({"key": key}))
        except JsException:
            log.warning("rate limiter unavailable; letting the request through")
            return True  # failing open: the limiter guards abuse, not correctness
        return bool(outcome.success)


class _Vars:
    """The Worker's ``env`` as :class:`config.Vars`: a variable or secret by name."""

    def __init__(self, env: Any) -> None:
        self._env = env

    def get(self, name: str, /) -> str | None:
        return str(getattr(self._env, name)) if hasattr(self._env, name) else None


def _access_verifier(config: Config) -> AccessVerifier | None:
    if not (config.access_team_domain and config.access_aud):
        return None
    # Imported only where Access is configured: it is not part of other isolates' cold start.
    from auth.access import AccessVerifier, access_certs_url

    fetcher: FetchJwks | StaticJwks = (
        StaticJwks(config.access_jwks) if config.access_jwks else FetchJwks()
    )
    return AccessVerifier(
        access_certs_url(config.access_team_domain), config.access_aud,
        config.access_team_domain, fetcher, WebCryptoRsaVerifier(), time.time,
    )


def _isolate_for(env: Any) -> _Isolate:
    """Built on the first request (``env`` is only known then) and kept; a bad configuration
    raises ``ConfigError`` or ``ValueError`` every time instead."""
    global _isolate
    if _isolate is None:
        config = Config.from_env(_Vars(env))
        limiter = BindingRateLimiter(env.RATE_LIMITER) if hasattr(env, "RATE_LIMITER") else None
        service = Service(config, access=_access_verifier(config), rate_limiter=limiter)
        _isolate = _Isolate(service, RetryingKV(WorkersKV(env.CHAT_KV), sleep=asyncio.sleep))
    return _isolate


def _to_js_response(response: PyResponse) -> Any:
    # The status and headers cross as one JSON text (pairs, so repeated names survive), not a
    # Python dict (which kills the isolate) nor to_js of every pair.
    init = JSON.parse(dumps({"status": response.status,
                             "headers": [list(pair) for pair in response.headers]}))
    body = response.body.decode("utf-8") if response.body else None
    return Response.new(body, init)


def _misconfigured(path: str) -> Any:
    problem = problem_response(InternalError("the service is misconfigured"), path)
    headers = (*problem.headers, ("cache-control", "no-store"))
    return _to_js_response(PyResponse(problem.status, problem.body, headers))


async def _guarded(work: Awaitable[object]) -> None:
    try:
        await work
    except Exception:  # background work must never take the isolate down
        log.exception("deferred work failed")


async def _discard(body: Any) -> None:
    with contextlib.suppress(JsException):  # the client gave up its upload: nothing to drop
        await body.pipeTo(WritableStream.new())  # chunks dropped in JS, never held by Python


async def _drop_unread(body: Any, ctx: Any) -> None:
    """Read and drop what is left of a body refused before it was read whole (too large).
    Left unread, local dev's proxy (wrangler 3.91) answers the connection's next request 503
    "Your worker restarted mid-request" (workers-sdk #5095); read in the background only, it
    still does at times. So the 413 waits for the body, up to UNREAD_BODY_WAIT_S, and the rest
    is read after the answer."""
    dropping = asyncio.ensure_future(_discard(body))
    ctx.waitUntil(create_proxy(dropping))
    await asyncio.wait({dropping}, timeout=UNREAD_BODY_WAIT_S)


async def _read_at_most(stream: Any, limit: int, ctx: Any) -> bytes | None:
    """A body sent without a length (chunked), read chunk by chunk: None as soon as it passes
    ``limit``, its rest dropped as an unread one's. Read whole, a body of the 100 MB the edge
    lets through would be held twice (the JS buffer and its Python copy) by an isolate allowed
    128 MB, and the WebAssembly heap it grew never shrinks."""
    reader = stream.getReader()
    chunks: list[bytes] = []
    size = 0
    while not (chunk := await reader.read()).done:
        size += int(chunk.value.byteLength)
        if size > limit:
            reader.releaseLock()
            await _drop_unread(stream, ctx)
            return None
        chunks.append(bytes(chunk.value.to_bytes()))
    return b"".join(chunks)


def _clock_ms() -> int:
    return int(time.time() * 1000)


async def on_fetch(request: Any, env: Any, ctx: Any) -> Any:
    url = urlsplit(str(request.url))
    try:
        isolate = _isolate_for(env)
    except ConfigError as exc:
        log.error("bad configuration: %s", exc)
        return _misconfigured(url.path)
    except ValueError as exc:
        log.error("bad Access configuration: %s", exc)
        return _misconfigured(url.path)
    max_body_bytes = isolate.service.config.max_body_bytes
    # One crossing as JSON text: iterating the JS headers costs several FFI calls per header.
    headers = json.loads(str(JSON.stringify(Object.fromEntries(request.headers))))
    declared = headers.get("content-length")
    length_known = bool(declared and declared.isdigit())
    too_large = length_known and int(declared) > max_body_bytes
    body = b""
    stream = request.body
    if stream is not None and too_large:
        await _drop_unread(stream, ctx)
    elif stream is not None and length_known:  # the runtime reads no more than that length
        body = bytes((await request.arrayBuffer()).to_bytes())
    elif stream is not None:
        read = await _read_at_most(stream, max_body_bytes, ctx)
        too_large = read is None
        body = read or b""
    py_request = Request.build(
        str(request.method), url.path, url.query, headers, body, body_too_large=too_large,
    )

    def defer(work: Awaitable[object]) -> None:
        ctx.waitUntil(create_proxy(asyncio.ensure_future(_guarded(work))))

    app = isolate.service.bind(isolate.kv, _clock_ms, defer)
    return _to_js_response(await app.handle(py_request))
