"""Settings: defaults, aliases, URL conversion, and the production secret guard."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import DEFAULT_DATABASE_URL, Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
IMPORT_THE_APP = """
import core.settings, graph.schema, taskql.app
print(taskql.app.create_app.__name__, core.settings.get_settings.cache_info().currsize)
"""

CLEAN_ENV = (
    "DATABASE_URL",
    "JWT_SECRET_KEY",
    "SECRET_KEY",
    "JWT_ALGORITHM",
    "ALGORITHM",
    "ENVIRONMENT",
    "CORS_ORIGINS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CLEAN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout


def test_defaults() -> None:
    settings = Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.jwt_algorithm == "HS256"
    assert settings.access_token_expire_minutes == 30
    assert settings.refresh_token_expire_days == 7
    assert settings.environment == "development"
    assert settings.introspection_enabled


def test_seed_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("ALGORITHM", "HS512")
    settings = Settings()
    assert settings.jwt_secret_key == "s" * 40
    assert settings.jwt_algorithm == "HS512"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgres://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("postgresql+asyncpg://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_database_url_conversion(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    assert Settings().database_url == expected


def test_comma_separated_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "http://a.test, http://b.test")
    assert Settings().cors_origins == ["http://a.test", "http://b.test"]


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ACCESS_TOKEN_EXPIRE_MINUTES=5\nENVIRONMENT=test\n")
    settings = Settings()
    assert settings.access_token_expire_minutes == 5
    assert settings.environment == "test"


def test_development_gets_a_random_secret(caplog: pytest.LogCaptureFixture) -> None:
    first = Settings().checked()
    second = Settings().checked()
    assert len(first.jwt_secret_key) >= 32
    assert first.jwt_secret_key != second.jwt_secret_key
    assert "JWT_SECRET_KEY is not set" in caplog.text


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("", "not set"),
        ("changeme", "placeholder"),
        ("your_secret_key", "placeholder"),
        ("too-short-secret", "shorter than 32 bytes"),
    ],
)
def test_production_refuses_weak_secrets(
    monkeypatch: pytest.MonkeyPatch, secret: str, reason: str
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("JWT_SECRET_KEY", secret)
    with pytest.raises(SettingsError, match=reason):
        Settings().checked()


def test_production_accepts_a_strong_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("JWT_SECRET_KEY", "k" * 48)
    settings = Settings().checked()
    assert settings.is_production
    assert not settings.introspection_enabled


def test_importing_the_app_needs_no_environment(tmp_path: Path) -> None:
    """A fresh interpreter imports the app where no settings can be built, so reading them at
    import time fails it (this process imported the app long ago, through conftest.py)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),  # the checkout under test, whatever is installed
        "ENVIRONMENT": "production",
        "JWT_SECRET_KEY": "changeme",  # get_settings() refuses a placeholder in production
        "BCRYPT_ROUNDS": "not a number",  # Settings() itself refuses this
        "DATABASE_URL": "not a database url",  # so does make_engine()
    }
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_THE_APP],
        env=env,
        cwd=tmp_path,  # no .env either
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["create_app", "0"], result.stdout
