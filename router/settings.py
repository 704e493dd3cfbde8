"""Settings from the environment (prefix `ROUTER_`) and an optional `.env` file.

This module is the only reader of the environment: `environment()` is the process's variables
over those of `.env` in the working directory, and it is what both the settings (`load_settings`)
and the rules' `${NAME}` secrets (`router.rules`) are read from, in `serve`, `check`, `route`,
`test-page` and every reload. Secrets are `SecretStr`, so they never print.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from router.errors import ConfigError

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com"
PREFIX = "ROUTER_"
# Read from the working directory, as a shell user expects of `.env`.
DOTENV = Path(".env")


def environment(dotenv: Path = DOTENV) -> dict[str, str]:
    """The variables runbook-router reads: the process's environment over `dotenv`'s, when there
    is such a file (a variable set in both takes the process's value, as in Docker Compose)."""
    from_file: dict[str, str] = {}
    if dotenv.is_file():
        # A line without `=` has no value (None): it sets nothing.
        values = dotenv_values(dotenv, encoding="utf-8")
        from_file = {name: value for name, value in values.items() if value is not None}
    return {**from_file, **os.environ}


class Settings(BaseSettings):
    """Every setting; the README's settings table describes each one."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=9099, ge=0, le=65535)
    rules_dir: Path = Path("rules")
    database_url: str = "sqlite:///data/router.db"
    public_url: str | None = None
    webhook_token: SecretStr | None = None
    api_token: SecretStr | None = None
    secret_key: SecretStr | None = None
    pagerduty_webhook_secret: SecretStr | None = None
    pagerduty_events_url: str = PAGERDUTY_EVENTS_URL
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # How long shutdown waits for requests and transactions in flight.
    shutdown_timeout_seconds: float = Field(default=10.0, gt=0)
    # A connection is closed when it sends no whole request head for this long (idle, slow
    # headers), and a request when its body is not whole this long after its head.
    idle_timeout_seconds: float = Field(default=15.0, gt=0)
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    # Resolved incidents, their timelines and deliveries, and resolved alerts are deleted this many
    # days after they were last touched; open incidents and firing alerts are always kept.
    retention_days: int = Field(default=90, ge=1)
    # A reload that would leave no rule, or fewer than half of those in force, is refused unless
    # this is set (router/rules/drop.py).
    allow_rule_drop: bool = False
    # A second rules directory evaluated beside the one in force, recording what it would decide
    # without paging (router/shadow.py).
    shadow_rules_dir: Path | None = None
    # Who may open the web pages: users and bcrypt hashes in the shape of the Prometheus
    # exporter-toolkit's web-config.yml, or the user an authenticating proxy names in a header.
    web_config_file: Path | None = None
    web_trusted_user_header: str | None = None
    # The bearer token of `POST /heartbeats/{name}`; the webhook token when unset.
    heartbeat_token: SecretStr | None = None
    # The router's own heartbeat: an http(s) URL it GETs, or an Apprise URL it notifies, every
    # interval while it is ready, so that an outside dead man's switch notices a dead router.
    outbound_heartbeat_url: SecretStr | None = None
    outbound_heartbeat_interval_seconds: float = Field(default=60.0, ge=1.0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the values given: `load_settings` gives those of `environment()`, so the settings
        # and the rules' secrets are read from the same variables.
        return (init_settings,)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
            return value
        if value.startswith(("postgresql://", "postgres://")):
            return value
        raise ValueError("must be sqlite:///PATH or postgresql://USER@HOST/DB")

    @field_validator("public_url", "pagerduty_events_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("web_trusted_user_header")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not all(c.isascii() and (c.isalnum() or c == "-") for c in value.strip()):
            raise ValueError(f"must be an HTTP header name such as X-Forwarded-User, got {value!r}")
        return value.strip()

    @field_validator(
        "webhook_token",
        "api_token",
        "secret_key",
        "pagerduty_webhook_secret",
        "heartbeat_token",
        "outbound_heartbeat_url",
    )
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None  # an empty variable means "unset", as in a shell
        return value

    @property
    def ping_token(self) -> SecretStr | None:
        """What `POST /heartbeats/{name}` requires: ROUTER_HEARTBEAT_TOKEN, else the webhook's."""
        return self.heartbeat_token or self.webhook_token

    @property
    def base_url(self) -> str:
        """Where people reach the router: ROUTER_PUBLIC_URL, else the listen address."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def listens_on_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name other than localhost may resolve anywhere


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from `env` (default: `environment()`), or ConfigError naming each bad variable.

    Names are read in any case (`router_port` too); an empty variable counts as unset.
    """
    env = environment() if env is None else env
    values = {
        name[len(PREFIX) :].lower(): value
        for name, value in env.items()
        if name.upper().startswith(PREFIX) and value != ""
    }
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = tuple(
            f"ROUTER_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise ConfigError("invalid settings", problems) from exc
