"""Checks for text that is stored or searched. PostgreSQL text cannot hold NUL characters, so they
are refused up front as BAD_USER_INPUT rather than failing in the database. Names and titles must
show something: text made only of spaces, zero-width and other format characters is refused."""

import unicodedata
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from core.errors import BadUserInput
from db.models import DESCRIPTION_MAX


def refuse_nul(value: str, *, field: str) -> str:
    """The value, unless it holds a NUL character (BAD_USER_INPUT on `field`)."""
    if "\x00" in value:
        raise BadUserInput("Text must not contain NUL characters.", field=field)
    return value


# Letters, numbers, punctuation and symbols draw something; separators (Z*), controls, format
# characters such as U+200B ZERO WIDTH SPACE (C*) and lone combining marks (M*) do not.
VISIBLE_CATEGORIES = frozenset("LNPS")


def has_visible(text: str) -> bool:
    """Whether `text` holds at least one character that draws a glyph (by Unicode category)."""
    return any(unicodedata.category(char)[0] in VISIBLE_CATEGORIES for char in text)


def clean_text(
    value: str, *, field: str, what: str, max_length: int, min_length: int = 0, trim: bool = False
) -> str:
    """`value` (trimmed when asked) if its length fits, else BAD_USER_INPUT on `field`. Text that
    is required (`min_length` 1 or more) must also hold a visible character."""
    cleaned = refuse_nul(value.strip() if trim else value, field=field)
    if min_length > 0 and value and not has_visible(cleaned):
        raise BadUserInput(
            f"{what} must contain a visible character, not only spaces or invisible ones.",
            field=field,
        )
    if not min_length <= len(cleaned) <= max_length:
        bounds = f"at most {max_length}" if min_length == 0 else f"{min_length} to {max_length}"
        raise BadUserInput(f"{what} must be {bounds} characters.", field=field)
    return cleaned


def clean_description(description: str) -> str:
    """At most DESCRIPTION_MAX characters, else BAD_USER_INPUT on `description`."""
    return clean_text(
        description, field="description", what="A description", max_length=DESCRIPTION_MAX
    )


def search_pattern(text: str) -> str:
    """The LIKE pattern of a search: `text` anywhere, its own wildcards taken literally."""
    refuse_nul(text, field="search")
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_condition(
    text: str | ColumnElement[str], *columns: sa.SQLColumnExpression[Any]
) -> ColumnElement[bool]:
    """Case-insensitive: the search anywhere in any of `columns`. `text` is the caller's text,
    or an SQL expression (a bound parameter) that holds its `search_pattern`."""
    pattern = search_pattern(text) if isinstance(text, str) else text
    return sa.or_(*(c.ilike(pattern, escape="\\") for c in columns))
