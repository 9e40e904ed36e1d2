"""Configuration, read once at the edge into a frozen dataclass (Starlette ``config.py`` style).

``entry.py`` hands the Worker's ``env`` (anything with ``get(name)``, a dict in tests) to
:func:`Config.from_env`, which names every variable it reads; nothing else reads the
environment. A malformed value fails loudly at
start-up rather than being guessed at per request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from index.rules import Layout

KIB = 1024
MIB = 1024 * KIB


class ConfigError(ValueError):
    pass


class Vars(Protocol):
    """The Worker's variables and secrets by name (a ``dict`` will do)."""

    def get(self, name: str, /) -> str | None: ...


def _int(env: Vars, name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


# A day in milliseconds; retention below a second would hide a message as it is written.
DAY_MS = 86_400_000
MIN_RETENTION_MS = 1_000


def _days_ms(env: Vars, name: str) -> int | None:
    """A decimal number of days as milliseconds (unset or empty: None)."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    try:
        days = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of days, got {raw!r}") from None
    if not math.isfinite(days) or days * DAY_MS < MIN_RETENTION_MS:
        raise ConfigError(f"{name} must be at least {MIN_RETENTION_MS / DAY_MS:.8f} days "
                          f"(a second), got {raw!r}")
    return round(days * DAY_MS)


def _bool(env: Vars, name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _optional(env: Vars, name: str) -> str | None:
    value = env.get(name)
    return value if value else None


@dataclass(frozen=True)
class Config:
    api_token: str | None = None
    auth_disabled: bool = False
    cursor_secret: str | None = None
    max_content_bytes: int = 64 * KIB
    max_metadata_bytes: int = 16 * KIB
    max_sender_bytes: int = 4 * KIB
    # Structured content (``parts``) carries tool results and files: far more room than text.
    max_parts_bytes: int = 1 * MIB
    max_body_bytes: int = 8 * MIB
    # The settle time S of sorted_index's rules: how long a KV write may take to show in every
    # location's listings and reads. Workers KV documents "60 seconds or more" for both its read
    # cache and its listings, so the default doubles that; a shorter S than the real lag can
    # lose writes (the edge-model tests show it).
    journal_settle_ms: int = 120_000
    # Index layout, defaulting to index.rules.Layout's: small values in tests force segments.
    index_head_max: int = Layout.head_max
    index_head_keep: int = Layout.head_keep
    index_segment_max: int = Layout.segment_max
    # User tokens (HS256 JWTs) are accepted only when a secret is set.
    jwt_secret: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # Cloudflare Access (RS256) assertions are accepted only when both are set. The JWKS comes
    # from ACCESS_JWKS (a static document, e.g. for pinning or tests) or the team's certs URL.
    access_team_domain: str | None = None
    access_aud: str | None = None
    access_jwks: str | None = None
    # Comma-separated exact origins; empty means no cross-origin browser access at all.
    cors_origins: str | None = None
    # What a 429 tells clients to wait; the limiter's period is configured on the binding.
    rate_limit_retry_after: int = 60
    # RETENTION_DAYS (a decimal, so tests can use seconds): messages older than that are gone.
    # None keeps everything forever.
    retention_ms: int | None = None

    @classmethod
    def from_env(cls, env: Vars) -> Config:
        return cls(
            api_token=_optional(env, "API_TOKEN"),
            auth_disabled=_bool(env, "AUTH_DISABLED"),
            cursor_secret=_optional(env, "CURSOR_SECRET"),
            max_content_bytes=_int(env, "MAX_CONTENT_BYTES", cls.max_content_bytes, minimum=1),
            max_metadata_bytes=_int(env, "MAX_METADATA_BYTES", cls.max_metadata_bytes, minimum=2),
            max_sender_bytes=_int(env, "MAX_SENDER_BYTES", cls.max_sender_bytes, minimum=16),
            max_parts_bytes=_int(env, "MAX_PARTS_BYTES", cls.max_parts_bytes, minimum=2),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", cls.max_body_bytes, minimum=64),
            journal_settle_ms=_int(env, "JOURNAL_SETTLE_MS", cls.journal_settle_ms, minimum=100),
            index_head_max=_int(env, "INDEX_HEAD_MAX", cls.index_head_max, minimum=2),
            index_head_keep=_int(env, "INDEX_HEAD_KEEP", cls.index_head_keep, minimum=1),
            index_segment_max=_int(env, "INDEX_SEGMENT_MAX", cls.index_segment_max, minimum=2),
            jwt_secret=_optional(env, "JWT_SECRET"),
            jwt_issuer=_optional(env, "JWT_ISSUER"),
            jwt_audience=_optional(env, "JWT_AUDIENCE"),
            access_team_domain=_optional(env, "ACCESS_TEAM_DOMAIN"),
            access_aud=_optional(env, "ACCESS_AUD"),
            access_jwks=_optional(env, "ACCESS_JWKS"),
            cors_origins=_optional(env, "CORS_ORIGINS"),
            rate_limit_retry_after=_int(
                env, "RATE_LIMIT_RETRY_AFTER", cls.rate_limit_retry_after, minimum=1
            ),
            retention_ms=_days_ms(env, "RETENTION_DAYS"),
        ).checked()

    def checked(self) -> Config:
        """Refuse settings that would silently weaken or break the service."""
        # Imported here: these modules are validated by config, not needed to define it.
        from auth.hs256 import JWTSettings
        from web.cors import CorsPolicy

        if not self.index_head_keep < self.index_head_max:
            raise ConfigError("INDEX_HEAD_KEEP must be smaller than INDEX_HEAD_MAX")
        try:
            CorsPolicy.from_setting(self.cors_origins)
            if self.jwt_secret:
                JWTSettings(self.jwt_secret.encode("utf-8"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return self
