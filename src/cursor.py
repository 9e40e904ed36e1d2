"""Opaque pagination cursors, signed so they cannot be forged or replayed on another query.

A cursor names the last entry of the previous page, ``(score, member)``, which is a position in
the sorted set rather than an offset: entries inserted elsewhere between pages cannot make a
page repeat or skip a message. It also binds the index and the query (order and bounds), and an
HMAC over all of it means a tampered, truncated or foreign cursor is a clean 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from errors import ValidationError
from index.zset import Entry
from jsonutil import dumps

_MAC_BYTES = 16


@dataclass(frozen=True)
class CursorScope:
    index: str
    order: str
    start: int
    end: int

    def as_list(self) -> list[object]:
        return [self.index, self.order, self.start, self.end]


class CursorCodec:
    def __init__(self, secret: str) -> None:
        # Derive a dedicated key so the cursor MAC never doubles as anything else.
        self._key = hashlib.sha256(b"chat-store cursor v1\x00" + secret.encode("utf-8")).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, scope: CursorScope, position: Entry) -> str:
        payload = dumps([1, position.score, position.member]).encode("utf-8")
        signed = self._mac(dumps(scope.as_list()).encode("utf-8") + b"\x00" + payload)
        return base64.urlsafe_b64encode(signed + payload).decode("ascii").rstrip("=")

    def decode(self, cursor: str, scope: CursorScope) -> Entry:
        invalid = ValidationError("cursor is invalid or belongs to another query")
        if len(cursor) > 1024:
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise invalid from None
        signature, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        expected = self._mac(dumps(scope.as_list()).encode("utf-8") + b"\x00" + payload)
        if not hmac.compare_digest(signature, expected):
            raise invalid
        try:
            version, score, member = json.loads(payload)
        except (ValueError, TypeError):
            raise invalid from None
        if version != 1 or not isinstance(score, int) or not isinstance(member, str):
            raise invalid
        return Entry(score, member)
