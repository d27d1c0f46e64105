"""Persisted queries: Apollo's automatic persisted queries (APQ), and an allow-list mode.

A client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`, first
without the query text. A hash the server knows runs its query; an unknown one is answered
`PERSISTED_QUERY_NOT_FOUND`, and the client sends the hash again with the text, which the
server checks against the hash before it remembers it.

Where the texts live (`PERSISTED_QUERIES`):
- `auto` (the default): a least-recently-used store in each server process, bounded by entries
  and by characters. Replicas and workers do not share it: a client that meets a replica which
  has not seen its hash yet is told `PERSISTED_QUERY_NOT_FOUND` once and resends the text, so
  the cost of not sharing is one extra round trip per hash and process.
- `allowlist`: only the operations in `PERSISTED_QUERY_FILE` run, by hash or by their exact
  text; anything else is `PERSISTED_QUERY_NOT_ALLOWED`. For production deployments whose
  clients are known.
- `off`: a hash is answered `PERSISTED_QUERY_NOT_SUPPORTED`, which makes Apollo's link stop
  sending hashes.
"""

import hashlib
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

import orjson

Mode = Literal["auto", "allowlist", "off"]

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"
HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
BAD_REQUEST = "BAD_REQUEST"

# Apollo's clients recognise these two by their message as well as by their code.
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
NOT_SUPPORTED_MESSAGE = "PersistedQueryNotSupported"

_HASH = re.compile(r"^[0-9a-fA-F]{64}$")
DEFAULT_MAX_CHARS = 32 * 1024 * 1024


class PersistedQueryError(Exception):
    """A persisted-query request that cannot run: a GraphQL request error with a code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PersistedQueryFileError(ValueError):
    """The allow-list file cannot be used."""


def query_hash(query: str) -> str:
    """The APQ hash of a query text: SHA-256 of its UTF-8 bytes, in lowercase hex."""
    return hashlib.sha256(query.encode("utf-8")).hexdigest()


class RecentQueries:
    """A least-recently-used map of hash -> query text, bounded by entries and characters."""

    def __init__(self, max_entries: int, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._texts)

    def get(self, digest: str) -> str | None:
        text = self._texts.get(digest)
        if text is not None:
            self._texts.move_to_end(digest)
        return text

    def put(self, digest: str, text: str) -> None:
        if len(text) > self.max_chars:
            return
        old = self._texts.pop(digest, None)
        if old is not None:
            self._chars -= len(old)
        self._texts[digest] = text
        self._chars += len(text)
        while len(self._texts) > self.max_entries or self._chars > self.max_chars:
            _, dropped = self._texts.popitem(last=False)
            self._chars -= len(dropped)


def _hash_of(persisted: object) -> str:
    if (
        not isinstance(persisted, dict)
        or persisted.get("version") != 1
        or not isinstance(persisted.get("sha256Hash"), str)
        or not _HASH.match(persisted["sha256Hash"])
    ):
        raise PersistedQueryError(
            BAD_REQUEST,
            "`extensions.persistedQuery` must be "
            '{"version": 1, "sha256Hash": "<64 hexadecimal digits>"}.',
        )
    digest: str = persisted["sha256Hash"].lower()
    return digest


class PersistedQueries:
    """Turns a request's `query` and `extensions` into the query text to run (module docs)."""

    def __init__(
        self, mode: Mode, *, max_entries: int, allowed: dict[str, str] | None = None
    ) -> None:
        self.mode = mode
        self.recent = RecentQueries(max_entries)
        self.allowed = allowed or {}

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The query text to run (None when the request has neither text nor hash)."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            if query is not None and self.mode == "allowlist":
                self._require_allowed(query_hash(query))
            return query
        if self.mode == "off":
            raise PersistedQueryError(NOT_SUPPORTED, NOT_SUPPORTED_MESSAGE)
        digest = _hash_of(persisted)
        if query is not None:
            if query_hash(query) != digest:
                raise PersistedQueryError(
                    HASH_MISMATCH,
                    "The query's SHA-256 hash does not match `extensions.persistedQuery."
                    "sha256Hash`.",
                )
            if self.mode == "allowlist":
                self._require_allowed(digest)
            else:
                self.recent.put(digest, query)
            return query
        known = self.allowed.get(digest) if self.mode == "allowlist" else self.recent.get(digest)
        if known is None:
            raise PersistedQueryError(NOT_FOUND, NOT_FOUND_MESSAGE)
        return known

    def _require_allowed(self, digest: str) -> None:
        if digest not in self.allowed:
            raise PersistedQueryError(
                NOT_ALLOWED,
                "This server runs only the operations in its persisted-query list, "
                "and this one is not among them.",
            )


def load_allow_list(path: Path) -> dict[str, str]:
    """Read an allow-list: `{"<sha256>": "<query>", ...}`, or an Apollo persisted-query
    manifest (`{"operations": [{"id": "<sha256>", "body": "<query>"}, ...]}`). Every hash is
    checked against its text."""
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise PersistedQueryFileError(f"cannot read {path}: {exc}") from exc
    pairs: list[tuple[object, object]]
    if isinstance(document, dict) and isinstance(document.get("operations"), list):
        pairs = [
            (item.get("id"), item.get("body")) if isinstance(item, dict) else (None, None)
            for item in document["operations"]
        ]
    elif isinstance(document, dict):
        pairs = list(document.items())
    else:
        raise PersistedQueryFileError(f"{path}: expected a JSON object")
    allowed: dict[str, str] = {}
    for digest, text in pairs:
        if not isinstance(digest, str) or not isinstance(text, str):
            raise PersistedQueryFileError(f"{path}: every entry needs a hash and a query text")
        if query_hash(text) != digest.lower():
            raise PersistedQueryFileError(f"{path}: {digest} is not the SHA-256 of its query")
        allowed[digest.lower()] = text
    return allowed
