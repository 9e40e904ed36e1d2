"""Plain HTTP values and a small pure router (in the spirit of Starlette's ``routing.py``).

``entry.py`` builds a :class:`Request` from the JS request and turns a :class:`Response` back
into a JS one; everything between them is ordinary Python that the unit tests drive directly.
Path patterns are compiled once; :meth:`Router.match` says whether a path was found, found under
another method (so the caller answers 405 with ``Allow``), or not found at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""
    # The edge declined to read a body whose Content-Length exceeds the limit; whoever needs
    # the body answers 413, so auth and routing still decide first.
    body_too_large: bool = False

    @classmethod
    def build(
        cls,
        method: str,
        path: str,
        query_string: str = "",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        *,
        body_too_large: bool = False,
    ) -> Request:
        return cls(
            method=method.upper(),
            path=path,
            query=tuple(parse_qsl(query_string, keep_blank_values=True)),
            headers={k.lower(): v for k, v in (headers or {}).items()},
            body=body,
            body_too_large=body_too_large,
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


Handler = TypeVar("Handler")

# A path parameter is one segment of the id grammar; anything else simply does not match.
_PARAM = re.compile(r"\{([a-z_]+)\}")
_SEGMENT = r"[^/]+"


class MatchKind(Enum):
    FOUND = "found"
    WRONG_METHOD = "wrong_method"
    NONE = "none"


@dataclass(frozen=True)
class Route(Generic[Handler]):
    pattern: str
    methods: dict[str, Handler]
    regex: re.Pattern[str]


@dataclass(frozen=True)
class Match(Generic[Handler]):
    kind: MatchKind
    handler: Handler | None = None
    params: dict[str, str] = field(default_factory=dict)
    allow: tuple[str, ...] = ()


class Router(Generic[Handler]):
    def __init__(self) -> None:
        self._routes: list[Route[Handler]] = []

    def add(self, pattern: str, **methods: Handler) -> None:
        regex = re.compile(
            "^" + _PARAM.sub(lambda m: f"(?P<{m.group(1)}>{_SEGMENT})", pattern) + "$"
        )
        self._routes.append(Route(pattern, {m.upper(): h for m, h in methods.items()}, regex))

    @property
    def routes(self) -> list[Route[Handler]]:
        return list(self._routes)

    def match(self, method: str, path: str) -> Match[Handler]:
        allowed: list[str] = []
        for route in self._routes:
            found = route.regex.match(path)
            if found is None:
                continue
            handler = route.methods.get(method)
            if handler is None and method == "HEAD":
                handler = route.methods.get("GET")
            if handler is not None:
                return Match(MatchKind.FOUND, handler, found.groupdict())
            allowed.extend(route.methods)
        if allowed:
            if "GET" in allowed:
                allowed.append("HEAD")  # served wherever GET is, so it is allowed there too
            return Match(MatchKind.WRONG_METHOD, allow=tuple(sorted(set(allowed))))
        return Match(MatchKind.NONE)


