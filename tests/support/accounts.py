"""Test accounts: one password, a fast bcrypt cost, the JWT secret, and the factory types."""

from collections.abc import Awaitable, Callable

from db.models import User

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
TEST_BCRYPT_ROUNDS = 4  # the production cost (12) is checked in test_auth; tests need speed
DEFAULT_PASSWORD = "correct horse battery"

UserFactory = Callable[..., Awaitable[User]]
"""`make_user(*, email=None, full_name=None, role=Role.USER, is_active=True)`: a saved user."""

TokenFor = Callable[[User], str]
"""A valid access token for a saved user."""
