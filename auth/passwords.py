"""bcrypt hashing through passlib (libpass), always off the event loop."""

import os
import secrets
from functools import lru_cache

import anyio
from passlib.context import CryptContext

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 72  # bcrypt's hard limit; bcrypt 5 refuses longer input.

# bcrypt releases the GIL, so hashing in threads uses every core; leave one core to the event
# loop so that cheap requests keep answering while logins queue.
_HASHING_SLOTS = anyio.CapacityLimiter(max(1, (os.cpu_count() or 2) - 1))


class PasswordPolicyError(ValueError):
    """The password breaks a length rule."""


def password_problem(password: str) -> str | None:
    """What is wrong with a new password, or None."""
    if "\x00" in password:
        return "Password must not contain NUL characters."
    if len(password) < MIN_PASSWORD_CHARS:
        return f"Password must be at least {MIN_PASSWORD_CHARS} characters long."
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return (
            f"Password must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8 "
            "(bcrypt ignores anything longer)."
        )
    return None


class PasswordHasher:
    """Hashes and verifies passwords at a fixed bcrypt cost."""

    def __init__(self, rounds: int = 12) -> None:
        self.rounds = rounds
        self._context = CryptContext(schemes=["bcrypt"], bcrypt__rounds=rounds)
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        problem = password_problem(password)
        if problem:
            raise PasswordPolicyError(problem)
        return await anyio.to_thread.run_sync(self._context.hash, password, limiter=_HASHING_SLOTS)

    async def verify(self, password: str, hashed: str | None) -> bool:
        """Check a password. With no hash (unknown user) a dummy one is checked, for equal time."""
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            password = ""  # can never match a stored hash; still costs one bcrypt round trip
        known = hashed is not None
        target = hashed if hashed is not None else await self._dummy()
        matched = await anyio.to_thread.run_sync(
            self._verify_sync, password, target, limiter=_HASHING_SLOTS
        )
        return matched and known

    def _verify_sync(self, password: str, hashed: str) -> bool:
        try:
            return bool(self._context.verify(password, hashed))
        except ValueError:
            return False

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            dummy: str = await anyio.to_thread.run_sync(
                self._context.hash, secrets.token_urlsafe(16), limiter=_HASHING_SLOTS
            )
            self._dummy_hash = dummy
        return self._dummy_hash


@lru_cache(maxsize=8)
def hasher_for(rounds: int) -> PasswordHasher:
    """One hasher per cost, so the dummy hash is computed once per process."""
    return PasswordHasher(rounds)
