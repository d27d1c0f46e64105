"""Login throttling: failed logins counted in the database, per account and per client address,
so that every replica agrees; over a limit, a login is refused before any password is checked.

An attempt is recorded (and committed) *before* its password is checked, and counts as a failure
until it succeeds: a burst of concurrent guesses cannot all pass the check before the first of
them fail. Each attempt counts only the attempts that started before it (by id), so the first
`max_failures` of a burst go on and the rest are refused. A refused attempt deletes its own row:
hammering does not extend the wait. A success deletes its row and stops counting the account's
failures; they still count for their addresses, so logging in to one's own account between
guesses at others does not reset an address.
"""

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import TooManyRequests
from db import login_failures
from db.engine import SessionFactory
from db.models import utcnow
from db.users import normalize_email

ADDRESS_MAX = 64  # the column's width; an IPv6 address with a zone fits
CLEANUP_EVERY = timedelta(minutes=1)  # per process: how often expired rows are deleted


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `max_failures` failures within `window`; 0 turns the limit off."""

    max_failures: int
    window: timedelta


@dataclass(frozen=True, slots=True)
class Attempt:
    """A login under way: its row (None when no limit is on) and its account's key."""

    id: int | None
    account_key: str


def account_key(email: str) -> str:
    """The key an email's failures count under: the sha256 of the normalized email, so what
    people type into the email field (sometimes their password) is not stored."""
    return hashlib.sha256(normalize_email(email).encode("utf-8", "surrogatepass")).hexdigest()


def address_key(address: str | None) -> str | None:
    """The key a client address's failures count under (None: no address to count)."""
    if not address:
        return None
    return address.replace("\x00", "")[:ADDRESS_MAX] or None


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds from `now` to `moment`, at least 1."""
    return max(1, math.ceil((moment - now).total_seconds()))


@dataclass
class LoginThrottle:
    """Admits, refuses and forgives login attempts, under the account and address limits."""

    session_factory: SessionFactory
    account: Limit
    address: Limit
    clock: Callable[[], datetime] = utcnow
    _next_cleanup: datetime | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return self.account.max_failures > 0 or self.address.max_failures > 0

    async def admit(self, *, email: str, address: str | None) -> Attempt:
        """Record an attempt, or refuse it with TOO_MANY_REQUESTS (and `retry_after`) when the
        failures before it reach a limit."""
        key = account_key(email)
        if not self.enabled:
            return Attempt(None, key)
        where = address_key(address)
        now = self.clock()
        async with self.session_factory.begin() as session:
            attempt_id = await login_failures.record_attempt(
                session=session, account_key=key, address=where, at=now
            )
            await self._clean(session, now)
        # Counted after the commit, so that concurrent attempts see this one.
        async with self.session_factory() as session:
            wait = max(
                await self._wait(session, "account", key, self.account, attempt_id, now),
                await self._wait(session, "address", where, self.address, attempt_id, now),
            )
        if wait:
            async with self.session_factory.begin() as session:
                await login_failures.forget_attempt(session=session, attempt_id=attempt_id)
            raise TooManyRequests(
                f"Too many failed logins: try again in {wait} seconds.", retry_after=wait
            )
        return Attempt(attempt_id, key)

    async def forgive(self, *, session: AsyncSession, attempt: Attempt) -> None:
        """The attempt succeeded: it is no failure, and its account's count starts again."""
        if attempt.id is None:
            return
        await login_failures.forget_attempt(session=session, attempt_id=attempt.id)
        await login_failures.reset_account(session=session, account_key=attempt.account_key)

    async def _wait(
        self,
        session: AsyncSession,
        scope: str,
        key: str | None,
        limit: Limit,
        attempt_id: int,
        now: datetime,
    ) -> int:
        """Seconds until the failures of `key` before this attempt fall under the limit."""
        if key is None or limit.max_failures <= 0:
            return 0
        failed = await login_failures.failures_before(
            session=session,
            scope=scope,
            key=key,
            attempt_id=attempt_id,
            since=now - limit.window,
            limit=limit.max_failures,
        )
        if len(failed) < limit.max_failures:
            return 0
        # When the oldest of the last `max_failures` leaves the window, one more may try.
        return seconds_until(failed[-1] + limit.window, now)

    async def _clean(self, session: AsyncSession, now: datetime) -> None:
        if self._next_cleanup is not None and now < self._next_cleanup:
            return
        self._next_cleanup = now + CLEANUP_EVERY
        longest = max(self.account.window, self.address.window)
        await login_failures.delete_expired(session=session, before=now - longest)
