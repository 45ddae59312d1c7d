"""Settings of the web dashboard (pydantic-settings, env prefix REEFGUARD_WEB_).

`get_settings()` is cached so every request shares one object; tests build
their own `WebSettings(...)` and pass it to `create_app()` (or override the
dependency). Outside development the settings refuse the placeholder secret:
a dashboard that can quarantine devices must not run with a key that is
printed in the source.
"""
from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRET = "changethis"


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REEFGUARD_WEB_", extra="ignore")

    environment: Literal["development", "production"] = "production"
    store_path: Path = Path("/var/lib/reefguard/reefguard.db")
    signatures_dir: Path = Path(__file__).resolve().parent.parent / "signatures"
    # Used to key the stored session-token hashes, so a copy of the database
    # alone does not yield usable session cookies.
    secret_key: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    # When set and no secret is given, the key is read from (or created in)
    # this file with mode 0600: the appliance gets a per-box secret with no
    # manual step.
    secret_key_file: Path | None = None
    bind_host: str = "127.0.0.1"
    port: int = 8080
    cookie_secure: bool = True
    session_idle_seconds: int = Field(default=8 * 3600, ge=60)
    session_max_seconds: int = Field(default=24 * 3600, ge=60)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)
    # Server-sent events connections end after this long; EventSource
    # reconnects by itself, so no request lives forever.
    sse_max_seconds: float = Field(default=300.0, gt=0)
    sse_poll_seconds: float = Field(default=1.0, gt=0)
    # A counter sample older than this means the engine stopped reporting.
    counters_stale_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> "WebSettings":
        if self.secret_key.get_secret_value() == PLACEHOLDER_SECRET and self.secret_key_file:
            self.secret_key = SecretStr(_load_or_create_secret(self.secret_key_file))
        value = self.secret_key.get_secret_value()
        if self.environment != "development":
            if value == PLACEHOLDER_SECRET:
                raise ValueError(
                    "REEFGUARD_WEB_SECRET_KEY is the placeholder; set a secret or "
                    "REEFGUARD_WEB_SECRET_KEY_FILE (refused outside development)")
            if len(value) < 16:
                raise ValueError("REEFGUARD_WEB_SECRET_KEY must be at least 16 characters")
        return self


def _load_or_create_secret(path: Path) -> str:
    try:
        text = path.read_text().strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


@lru_cache(maxsize=1)
def get_settings() -> WebSettings:
    return WebSettings()
