"""CORS for browser clients: an explicit origin allowlist, nothing allowed by default.

Why it is shaped like this:

* Origins come only from configuration (``CORS_ORIGINS``, comma-separated). ``*`` is refused on
  purpose: this API carries private chat history behind bearer tokens, and a wildcard would let
  any web page that obtains a token (or any future cookie-based auth) read it from a browser.
  ``null`` is refused too: it is what sandboxed iframes and ``file:`` pages send, so allowing
  it allows everyone.
* Entries are normalized the way browsers serialize an ``Origin`` header (lower-case scheme and
  host, default port dropped, IPv6 compressed), so matching a request is an exact string
  comparison, and anything that is not ``scheme://host[:port]`` (a path, even a trailing ``/``;
  userinfo; query) fails at start-up instead of silently never matching.
* The allowed origin is echoed exactly, never reflected from an unchecked header, and
  ``Access-Control-Allow-Credentials`` is never sent: the API authenticates with the
  ``Authorization`` header, which needs no credentials mode.
* A preflight from an origin that is not allowed gets a plain ``204`` with no CORS headers: the
  browser then blocks the real request, and the response says nothing about the allowlist.
* ``Vary: Origin`` goes on every response once any origin is configured (allowed or not, with or
  without an ``Origin`` header), because the response then depends on ``Origin``; a shared cache
  that stored a response without it could serve the wrong CORS headers to another origin
  (Fetch standard, "CORS protocol and HTTP caches").

Preflights must be answered before authentication: browsers never send ``Authorization`` on
them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from web.routing import Request, Response

__all__ = ["ALLOWED_METHODS", "ALLOWED_REQUEST_HEADERS", "EXPOSED_HEADERS", "CorsPolicy"]

ALLOWED_METHODS = ("GET", "POST", "PATCH", "DELETE")
# Listed in full on every allowed preflight. Requested headers outside this list are not
# echoed, so the browser refuses the request. Echoing the whole fixed list instead of the
# requested subset keeps the answer independent of Access-Control-Request-Headers.
ALLOWED_REQUEST_HEADERS = ("authorization", "content-type")
# Not CORS-safelisted response headers, which browser clients need: Retry-After on 429 and 503,
# and an export's next page (Chat-Store-Next-Cursor, Link).
EXPOSED_HEADERS = ("retry-after", "chat-store-next-cursor", "link")
MAX_MAX_AGE = 86_400  # Firefox's cap; Chromium caps at 7200 on its own

_DEFAULT_PORTS = {"http": 80, "https": 443}
# DNS-ish labels; "_" is allowed because the URL standard (and so browsers) allow it in hosts.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://"
    rf"(?P<host>\[[0-9a-f:.]+\]|{_LABEL}(?:\.{_LABEL})*)"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.ASCII,
)


def _normalize_origin(entry: str) -> str:
    if entry == "*":
        raise ValueError("CORS_ORIGINS: '*' is not supported; list each origin explicitly")
    if entry.lower() == "null":
        raise ValueError("CORS_ORIGINS: 'null' would allow sandboxed and file: pages")
    if not entry.isascii():
        raise ValueError(f"CORS_ORIGINS: {entry!r} is not ASCII; write the host in punycode")
    match = _ORIGIN.fullmatch(entry.lower())
    if match is None:
        raise ValueError(
            f"CORS_ORIGINS: {entry!r} is not an origin (scheme://host[:port], no path, no"
            " trailing '/')"
        )
    scheme, host, port_text = match["scheme"], match["host"], match["port"]
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"CORS_ORIGINS: {entry!r} must use http or https")
    if host.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise ValueError(f"CORS_ORIGINS: {entry!r} has an invalid IPv6 address") from None
    if port_text is None:
        return f"{scheme}://{host}"
    port = int(port_text)
    if not 0 < port <= 65535:
        raise ValueError(f"CORS_ORIGINS: {entry!r} has an invalid port")
    if port == _DEFAULT_PORTS[scheme]:  # browsers omit the default port from Origin
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _add_vary_origin(headers: list[tuple[str, str]]) -> None:
    for index, (name, value) in enumerate(headers):
        if name.lower() != "vary":
            continue
        tokens = {t.strip().lower() for t in value.split(",")}
        if "origin" not in tokens and "*" not in tokens:
            headers[index] = (name, f"{value}, Origin")
        return
    headers.append(("vary", "Origin"))


@dataclass(frozen=True)
class CorsPolicy:
    """The allowed origins (already normalized) and how long browsers may cache a preflight."""

    origins: frozenset[str]
    max_age: int = 600

    def __post_init__(self) -> None:
        if type(self.max_age) is not int or not 0 <= self.max_age <= MAX_MAX_AGE:
            raise ValueError(f"max_age must be an int in 0..{MAX_MAX_AGE}")
        for origin in self.origins:
            if _normalize_origin(origin) != origin:
                raise ValueError(f"origin {origin!r} is not normalized; use from_setting")

    @classmethod
    def from_setting(cls, raw: str | None, *, max_age: int = 600) -> CorsPolicy:
        """Parse ``CORS_ORIGINS``; unset or blank means no origin is allowed."""
        if raw is None or not raw.strip():
            return cls(frozenset(), max_age)
        origins: set[str] = set()
        for entry in raw.split(","):
            entry = entry.strip()
            if not entry:  # "a,,b" or a trailing comma: a typo that should not pass silently
                raise ValueError("CORS_ORIGINS has an empty entry")
            origins.add(_normalize_origin(entry))
        return cls(frozenset(origins), max_age)

    def allows(self, origin: str | None) -> bool:
        return origin is not None and origin in self.origins

    def preflight(self, request: Request) -> Response | None:
        """The answer to a CORS preflight, or None if ``request`` is not one."""
        origin = request.header("origin")
        if (
            request.method != "OPTIONS"
            or origin is None
            or request.header("access-control-request-method") is None
        ):
            return None
        if not self.allows(origin):
            return Response(204)
        return Response(
            204,
            b"",
            (
                ("access-control-allow-origin", origin),
                ("access-control-allow-methods", ", ".join(ALLOWED_METHODS)),
                ("access-control-allow-headers", ", ".join(ALLOWED_REQUEST_HEADERS)),
                ("access-control-max-age", str(self.max_age)),
                ("vary", "Origin"),
            ),
        )

    def decorate(self, request: Request, response: Response) -> Response:
        """``response`` with CORS headers when ``request`` comes from an allowed origin."""
        if not self.origins:
            return response
        headers = list(response.headers)
        _add_vary_origin(headers)
        origin = request.header("origin")
        # Skipped if already present (e.g. a preflight answer), so decorating twice is harmless.
        if self.allows(origin) and response.header("access-control-allow-origin") is None:
            assert origin is not None
            headers.append(("access-control-allow-origin", origin))
            headers.append(("access-control-expose-headers", ", ".join(EXPOSED_HEADERS)))
        return Response(response.status, response.body, tuple(headers))
