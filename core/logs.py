"""Log lines: plain text (the default) or one JSON object per line (`LOG_FORMAT=json`).

Every line carries the request id, and inside a GraphQL request the caller's user id and the
operation name (`bind_request` holds them). Values under keys that name secrets (REDACTED_KEYS)
are replaced with "[redacted]" wherever they appear in a line's extra fields, and bearer tokens
in messages are cut, so no password, token or Authorization header reaches a log.
"""

import logging
import re
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from core.request_id import current_request_id

REDACTED = "[redacted]"
REDACTED_KEYS = frozenset(
    {
        "password",
        "currentpassword",
        "newpassword",
        "token",
        "accesstoken",
        "refreshtoken",
        "authorization",
        "secret",
        "jwtsecretkey",
        "metricstoken",
        "variables",
    }
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# LogRecord's own attributes: whatever else a record holds came in `extra`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


@dataclass(slots=True)
class RequestFacts:
    """What log lines of one request say about it; filled in as the request learns it."""

    user_id: int | None = None
    operation: str | None = None
    span: Any = None  # the request's span, while tracing is on


_facts: ContextVar[RequestFacts | None] = ContextVar("log_request_facts", default=None)


def bind_request() -> RequestFacts:
    """Fresh facts for the request running in this context (set them as they become known)."""
    facts = RequestFacts()
    _facts.set(facts)
    return facts


def request_facts() -> RequestFacts | None:
    """The facts of the request in this context, if one is bound."""
    return _facts.get()


def _normalized(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def redact(value: Any) -> Any:
    """`value` with secrets replaced: by key in mappings, bearer tokens and JWTs in text."""
    if isinstance(value, dict):
        return {
            k: REDACTED if _normalized(str(k)) in REDACTED_KEYS else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def scrub(text: str) -> str:
    """`text` without bearer tokens or JWTs."""
    if "earer" not in text and "eyJ" not in text:
        return text
    return _JWT.sub(REDACTED, _BEARER.sub(r"\1" + REDACTED, text))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, user_id,
    operation, then the record's extra fields (redacted) and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "request_id": current_request_id(),
        }
        facts = _facts.get()
        if facts is not None:
            line["user_id"] = facts.user_id
            line["operation"] = facts.operation
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = REDACTED if _normalized(key) in REDACTED_KEYS else redact(value)
        if record.exc_info:
            line["exception"] = scrub(self.formatException(record.exc_info))
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """The plain development format, with bearer tokens and JWTs cut from messages."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure(level: str, format: Literal["text", "json"] = "text") -> None:
    """Log to stderr at `level` in `format`, replacing earlier handlers of the root logger."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # aiosqlite's debug lines print every statement's bound values (password hashes, emails).
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root.level))
    # uvicorn's loggers carry their own handlers and formats: send them through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
