"""Settings: the README's defaults, clear messages for bad values, the listen-address guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.app import check_listen_address
from router.errors import ConfigError
from router.settings import Settings, load_settings

from .history import clean_environment


@pytest.fixture(autouse=True)
def no_router_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_environment(monkeypatch, tmp_path)  # no ROUTER_* variable, no stray .env file


def test_defaults_are_those_of_the_spec() -> None:
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 9099)
    assert settings.rules_dir == Path("rules")
    assert settings.database_url == "sqlite:///data/router.db"
    assert settings.base_url == "http://127.0.0.1:9099"
    assert settings.webhook_token is None
    assert settings.max_body_bytes == 8388608
    assert settings.log_format == "text"
    assert settings.pagerduty_events_url == "https://events.pagerduty.com"
    assert settings.retention_days == 90


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ROUTER_PORT=9300\nROUTER_WEBHOOK_TOKEN=from-dotenv\n")
    monkeypatch.setenv("ROUTER_PUBLIC_URL", "https://router.example.com/")
    settings = load_settings()
    assert settings.port == 9300
    assert settings.webhook_token is not None
    assert settings.webhook_token.get_secret_value() == "from-dotenv"
    assert settings.base_url == "https://router.example.com"
    assert "from-dotenv" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "ROUTER_PORT",
            "ninety",
            "ROUTER_PORT: Input should be a valid integer, unable to parse string as an integer",
        ),
        ("ROUTER_PORT", "70000", "ROUTER_PORT: Input should be less than or equal to 65535"),
        (
            "ROUTER_DATABASE_URL",
            "mysql://db/router",
            "ROUTER_DATABASE_URL: Value error, must be sqlite:///PATH or postgresql://USER@HOST/DB",
        ),
        ("ROUTER_LOG_FORMAT", "xml", "ROUTER_LOG_FORMAT: Input should be 'text' or 'json'"),
        (
            "ROUTER_PUBLIC_URL",
            "router.example.com",
            "ROUTER_PUBLIC_URL: Value error, must be an http:// or https:// URL, got 'router.example.com'",
        ),
        (
            "ROUTER_MAX_BODY_BYTES",
            "10",
            "ROUTER_MAX_BODY_BYTES: Input should be greater than or equal to 1024",
        ),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert raised.value.problems == (message,)


def test_blank_secret_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_WEBHOOK_TOKEN", "  ")
    assert load_settings().webhook_token is None


@pytest.mark.parametrize(
    ("host", "webhook_token", "api_token", "insecure", "refused"),
    [
        ("127.0.0.1", None, None, False, None),
        ("::1", None, None, False, None),
        ("localhost", None, None, False, None),
        ("0.0.0.0", None, None, False, "ROUTER_WEBHOOK_TOKEN"),
        ("10.1.2.3", None, "api", False, "ROUTER_WEBHOOK_TOKEN"),
        ("router.internal", None, None, False, "ROUTER_WEBHOOK_TOKEN and ROUTER_API_TOKEN"),
        ("0.0.0.0", "secret", None, False, "ROUTER_API_TOKEN"),
        ("0.0.0.0", "secret", "api", False, None),
        ("0.0.0.0", None, None, True, None),
    ],
)
def test_non_loopback_address_needs_tokens_or_insecure(
    host: str, webhook_token: str | None, api_token: str | None, insecure: bool, refused: str | None
) -> None:
    settings = Settings(_env_file=None, host=host, webhook_token=webhook_token, api_token=api_token)  # type: ignore[call-arg, arg-type]
    if refused:
        with pytest.raises(ConfigError, match=f"refusing to listen on {host} without {refused}"):
            check_listen_address(settings, insecure)
    else:
        check_listen_address(settings, insecure)
