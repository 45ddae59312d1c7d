import pytest
from pydantic import ValidationError

from webui.settings import PLACEHOLDER_SECRET, WebSettings, get_settings


def test_refuses_placeholder_secret_outside_development(tmp_path):
    with pytest.raises(ValidationError, match="placeholder"):
        WebSettings(environment="production")
    with pytest.raises(ValidationError, match="16 characters"):
        WebSettings(environment="production", secret_key="short")
    assert WebSettings(environment="development").secret_key.get_secret_value() == PLACEHOLDER_SECRET


def test_secret_file_is_created_once_with_private_mode(tmp_path):
    path = tmp_path / "secret"
    first = WebSettings(environment="production", secret_key_file=path)
    second = WebSettings(environment="production", secret_key_file=path)
    assert first.secret_key.get_secret_value() == second.secret_key.get_secret_value()
    assert len(first.secret_key.get_secret_value()) >= 32
    assert path.stat().st_mode & 0o777 == 0o600


def test_defaults_bind_loopback_and_secure_cookie(monkeypatch):
    monkeypatch.setenv("REEFGUARD_WEB_SECRET_KEY", "x" * 40)
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.bind_host == "127.0.0.1"
        assert settings.cookie_secure is True
        assert get_settings() is settings
    finally:
        get_settings.cache_clear()
