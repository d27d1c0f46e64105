"""Settings read from the environment and `.env`, built on demand (never at import time)."""

import logging
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

logger = logging.getLogger("core.settings")

DATA_DIR = Path("data")
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{DATA_DIR / 'taskql.db'}"
MIN_SECRET_BYTES = 32
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "secret", "your_secret_key", "your-secret-key", "dev", "test"}
)

CommaList = Annotated[list[str], NoDecode]


class SettingsError(RuntimeError):
    """The settings cannot be used to start the server."""


def normalize_database_url(url: str) -> str:
    """Map plain driver-less URLs onto the async drivers TaskQL runs on."""
    for plain in (
        "postgresql://",
        "postgres://",
        "postgresql+psycopg2://",
        "postgresql+psycopg://",
    ):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    # How long the server waits on the database before answering SERVICE_UNAVAILABLE (db/engine.py
    # Timeouts): connecting, one statement (PostgreSQL's statement_timeout, SQLite's wait for the
    # write lock), and a free connection in the pool.
    database_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    database_statement_timeout_seconds: float = Field(default=5.0, gt=0)
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    # Connections per server process, a fixed pool (db/engine.py). Small on purpose: a database
    # runs as many statements at once as it has cores, and more backends than that only take
    # turns (bench/README.md: 4 rather than 10 per worker halved the read benchmark's p99).
    database_pool_size: int = Field(default=4, ge=1, le=1000)
    jwt_secret_key: str = Field(
        default="", validation_alias=AliasChoices("JWT_SECRET_KEY", "SECRET_KEY", "jwt_secret_key")
    )
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = Field(
        default="HS256",
        validation_alias=AliasChoices("JWT_ALGORITHM", "ALGORITHM", "jwt_algorithm"),
    )
    access_token_expire_minutes: int = Field(default=30, ge=1)
    refresh_token_expire_days: int = Field(default=7, ge=1)
    cors_origins: CommaList = Field(default_factory=list)
    ws_allowed_origins: CommaList = Field(default_factory=list)
    upload_dir: Path = DATA_DIR / "uploads"
    bcrypt_rounds: int = Field(default=12, ge=4, le=31)
    # Login throttling (auth/throttle.py): failed logins allowed per window, per account (email)
    # and per client address, counted in the database; 0 turns a limit off.
    login_max_failures: int = Field(default=5, ge=0)
    login_window_seconds: int = Field(default=900, ge=1)
    login_address_max_failures: int = Field(default=50, ge=0)
    login_address_window_seconds: int = Field(default=900, ge=1)

    admin_email: str | None = Field(
        default=None, validation_alias=AliasChoices("TASKQL_ADMIN_EMAIL", "admin_email")
    )
    admin_password: str | None = Field(
        default=None, validation_alias=AliasChoices("TASKQL_ADMIN_PASSWORD", "admin_password")
    )

    # Query limits (issue: abuse and limits).
    max_query_depth: int = Field(default=10, ge=1)
    max_aliases: int = Field(default=15, ge=1)
    max_tokens: int = Field(default=5000, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    max_request_bytes: int = Field(default=1_000_000, ge=1024)
    introspection: bool | None = None

    # The compiled read path (graph/compiled): off sends every query to the executor.
    compiled_reads: bool = True
    compiled_plan_cache_size: int = Field(default=512, ge=1)

    # CSV import.
    import_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    import_batch_size: int = Field(default=20_000, ge=1)
    run_import_worker: bool = True
    import_poll_seconds: float = Field(default=1.0, gt=0)
    import_heartbeat_seconds: float = Field(default=5.0, gt=0)
    import_stale_seconds: float = Field(default=60.0, gt=0)
    import_max_attempts: int = Field(default=5, ge=1)
    import_progress_seconds: float = Field(default=0.5, gt=0)
    import_report_url_ttl_seconds: int = Field(default=900, ge=1)

    # Live events (graph/events.py, db/listener.py): subscriptions per WebSocket connection and
    # per process, each subscriber's queue (full: dropped for one RESYNC), the LISTEN check.
    subscriptions_per_connection: int = Field(default=20, ge=1)
    subscriptions_per_process: int = Field(default=10_000, ge=1)
    event_queue_size: int = Field(default=100, ge=1)
    events_check_seconds: float = Field(default=5.0, gt=0)

    # GraphQL over HTTP (graph/http.py): batching, automatic persisted queries, the playground.
    batch_max_operations: int = Field(default=10, ge=0)  # 0 turns batching off
    persisted_queries: Literal["auto", "allowlist", "off"] = "auto"
    persisted_query_cache_size: int = Field(default=2000, ge=1)
    persisted_query_file: Path | None = None  # allow-list mode: a JSON map of hash -> query
    graphiql: bool | None = None  # None: on in development and test, off in production
    public_base_url: str | None = None  # e.g. https://tasks.example.com: absolute links

    log_level: str = "INFO"
    # Operating (README: Operating): log lines as text or JSON, the slow-operation warning, and
    # who may read GET /metrics (off; public; token: `Authorization: Bearer <METRICS_TOKEN>`).
    log_format: Literal["text", "json"] = "text"
    slow_operation_ms: int = Field(default=1000, ge=0)  # 0: no warning
    metrics: Literal["off", "public", "token"] = "off"
    metrics_token: str | None = None

    @field_validator("cors_origins", "ws_allowed_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator(
        "introspection", "graphiql", "persisted_query_file", "public_base_url", mode="before"
    )
    @classmethod
    def _empty_is_default(cls, value: object) -> object:
        # `.env.example` leaves these empty to mean "the environment's default".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("public_base_url", mode="after")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or "?" in value or "#" in value:
            raise ValueError("PUBLIC_BASE_URL must be an http(s) URL without query or fragment")
        return value.rstrip("/")

    @field_validator("database_url", mode="after")
    @classmethod
    def _normalize_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def introspection_enabled(self) -> bool:
        if self.introspection is None:
            return not self.is_production
        return self.introspection

    @property
    def graphiql_enabled(self) -> bool:
        if self.graphiql is None:
            return not self.is_production
        return self.graphiql

    def secret_problem(self) -> str | None:
        """Why the JWT secret is unfit for production, or None when it is fine."""
        key = self.jwt_secret_key
        if not key:
            return "JWT_SECRET_KEY is not set"
        if key.lower() in PLACEHOLDER_SECRETS or key.lower().startswith(("change", "your")):
            return "JWT_SECRET_KEY is a placeholder value"
        if len(key.encode()) < MIN_SECRET_BYTES:
            return f"JWT_SECRET_KEY is shorter than {MIN_SECRET_BYTES} bytes"
        return None

    def checked(self) -> "Settings":
        """Refuse unsafe production settings; give development a random secret if it has none."""
        problem = self.secret_problem()
        if problem is None:
            return self
        if self.is_production:
            raise SettingsError(
                f"Refusing to start with ENVIRONMENT=production: {problem}. "
                'Set it to a random value of 32 bytes or more, e.g. `python -c "import secrets; '
                'print(secrets.token_urlsafe(48))"`.'
            )
        if not self.jwt_secret_key:
            logger.warning(
                "JWT_SECRET_KEY is not set: using a random secret, so tokens die with this process."
            )
            return self.model_copy(update={"jwt_secret_key": secrets.token_urlsafe(48)})
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once, on first use."""
    return Settings().checked()
