"""Who is calling: turns request headers into a :class:`Principal`, or refuses with one 401.

Three kinds of credential, tried in a fixed order:

1. ``Authorization: Bearer <API_TOKEN>``: the service token, full access (operators, backends).
2. ``Authorization: Bearer <HS256 JWT>`` signed with ``JWT_SECRET`` (when configured): a user,
   whose ``sub`` is the user id and whose ``conversations`` claim lists the conversations it
   may reach (see ``auth/hs256.py``).
3. ``Cf-Access-Jwt-Assertion: <RS256 JWT>`` from Cloudflare Access (when configured), used
   only when there is no ``Authorization`` header: a user whose id is the token's ``sub``.

Why these rules:

* An ``Authorization`` header, once sent, decides: a wrong bearer token fails even if an Access
  assertion is also present. Falling back would let a broken credential be silently replaced
  by another one, which hides misconfiguration and makes "which identity was used?" ambiguous.
* The Access user id is ``sub`` (Access's stable per-user UUID), not ``email``: an email address
  can be reassigned to another person and is not in the id grammar. A ``sub`` outside the id
  grammar (including the empty ``sub`` of Access *service* tokens) is refused, never rewritten,
  so two different identities can never map onto one user id.
* The service token is compared as SHA-256 digests with ``hmac.compare_digest``: equal-length
  inputs make the comparison's timing independent of both the token's content and its length
  (``compare_digest`` on raw bytes would still reveal the configured token's length).
* Every failure raises :class:`errors.Unauthorized` with the same :data:`UNAUTHORIZED_DETAIL`,
  whatever the reason (no header, wrong scheme, expired, bad signature, JWKS down ...), so a
  client cannot probe which check failed. The reason is logged at DEBUG level only, and never
  includes the credential itself.

The "no credential configured and auth not disabled -> 503" rule lives in ``web/app.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from auth.hs256 import InvalidToken, JWTSettings, verify_hs256
from errors import Unauthorized
from ids import is_valid_id

if TYPE_CHECKING:
    from auth.access import AccessVerifier

__all__ = ["UNAUTHORIZED_DETAIL", "Authenticator", "Principal"]

log = logging.getLogger("chat_store.auth")

UNAUTHORIZED_DETAIL = "valid credentials are required"
ACCESS_HEADER = "cf-access-jwt-assertion"
# RFC 9110 §11.1: the scheme is case-insensitive; RFC 6750 §2.1: one or more spaces, then the
# token. The token is any visible ASCII (not just token68) so an existing API_TOKEN keeps working.
# re.ASCII: without it IGNORECASE would also fold some non-ASCII letters onto ASCII ones.
_BEARER = re.compile(r"bearer +([!-~]+)", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. Build with :meth:`service` or :meth:`user`."""

    kind: Literal["service", "user"]
    user_id: str | None
    conversations: frozenset[str]

    def __post_init__(self) -> None:
        # A malformed principal would be an authorization bug; make it impossible to construct.
        if self.kind == "service":
            if self.user_id is not None or self.conversations:
                raise ValueError("a service principal has no user id or conversation list")
        elif self.kind == "user":
            if not is_valid_id(self.user_id):
                raise ValueError("a user principal needs a valid user id")
            if not all(is_valid_id(c) for c in self.conversations):
                raise ValueError("conversation ids must be valid ids")
        else:
            raise ValueError(f"unknown principal kind {self.kind!r}")

    @classmethod
    def service(cls) -> Principal:
        return cls("service", None, frozenset())

    @classmethod
    def user(cls, user_id: str, conversations: frozenset[str] = frozenset()) -> Principal:
        return cls("user", user_id, frozenset(conversations))

    @property
    def is_service(self) -> bool:
        return self.kind == "service"

    def can_access_user(self, user_id: str) -> bool:
        """The service may reach every user's messages; a user only their own."""
        return self.is_service or user_id == self.user_id

    def can_access_conversation(self, conversation_id: str) -> bool:
        """The service may reach every conversation; a user only those its token lists."""
        return self.is_service or conversation_id in self.conversations


class Authenticator:
    """Checks credentials against whatever is configured; ``None`` turns a kind off."""

    def __init__(
        self,
        api_token: str | None,
        jwt: JWTSettings | None,
        access: AccessVerifier | None,
        clock: Callable[[], float],
    ) -> None:
        # "" means unset, as in config.py: it must never become a token that "Bearer " matches
        # (the bearer grammar already needs one character, this keeps it true by construction).
        self._service_digest = (
            hashlib.sha256(api_token.encode("utf-8")).digest() if api_token else None
        )
        self._jwt = jwt
        self._access = access
        self._clock = clock

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller's principal; raises Unauthorized (always the same detail) otherwise.

        ``headers`` must have lower-cased names, as ``routing.Request.headers`` does.
        """
        try:
            return await self._authenticate(headers)
        except InvalidToken as exc:
            log.debug("authentication refused: %s", exc)
            raise Unauthorized(UNAUTHORIZED_DETAIL) from None

    async def _authenticate(self, headers: Mapping[str, str]) -> Principal:
        authorization = headers.get("authorization")
        if authorization is not None:
            token = _bearer_token(authorization)
            if self._is_service_token(token):
                return Principal.service()
            if self._jwt is None:
                raise InvalidToken("bearer token is not the service token; user JWTs are off")
            claims = verify_hs256(token, self._jwt, self._clock())
            return Principal.user(claims.sub, claims.conversations)
        assertion = headers.get(ACCESS_HEADER)
        if assertion is not None:
            if self._access is None:
                raise InvalidToken("Cloudflare Access assertion sent but Access is not configured")
            access_claims = await self._access.verify(assertion)
            if not is_valid_id(access_claims.sub):
                raise InvalidToken("Access sub is not a valid user id (Access service token?)")
            return Principal.user(access_claims.sub)
        raise InvalidToken("no credentials")

    def _is_service_token(self, token: str) -> bool:
        if self._service_digest is None:
            return False
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        return hmac.compare_digest(presented, self._service_digest)


def _bearer_token(value: str) -> str:
    # Only optional whitespace around a field value is insignificant (RFC 9110 §5.5).
    match = _BEARER.fullmatch(value.strip(" \t"))
    if match is None:
        raise InvalidToken("Authorization is not 'Bearer <token>'")
    return match.group(1)
