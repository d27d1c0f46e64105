"""A log handler that formats every record as the server would (JSON lines) and keeps the lines
that show a password, a token or an `Authorization` value."""

import logging
import re

from core.logs import JsonFormatter
from tests.support.accounts import DEFAULT_PASSWORD, TEST_SECRET

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
BEARER = re.compile(r"(?i)bearer\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{8,}")
KNOWN_SECRETS = (DEFAULT_PASSWORD, TEST_SECRET, "a long admin password", "not the password")


def leaks_in(line: str, secrets: tuple[str, ...] = KNOWN_SECRETS) -> list[str]:
    """What in `line` is a secret: a known password or key, a JWT, a bearer credential."""
    found = [secret for secret in secrets if secret in line]
    found += JWT.findall(line) + BEARER.findall(line)
    return found


class SecretScan(logging.Handler):
    """Formats every record it sees with the JSON formatter and keeps the lines that leak."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines = 0
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception as exc:  # a record the formatter cannot write is a failure too
            self.leaks.append(f"unformattable record from {record.name}: {exc!r}")
            return
        self.lines += 1
        if leaks_in(line):
            self.leaks.append(line[:500])
