"""Login throttling: failures counted in the database per account and per client address; over a
limit, TOO_MANY_REQUESTS with a retry delay and no bcrypt work; a success resets the account."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.passwords import PasswordHasher
from auth.throttle import CLEANUP_EVERY, LoginThrottle, account_key
from core.settings import Settings
from db.engine import SessionFactory, make_engine
from db.models import LoginFailure, utcnow
from taskql.app import create_app
from tests.support.accounts import DEFAULT_PASSWORD, UserFactory

LOGIN = """
mutation Login($input: LoginInput!) { login(input: $input) { accessToken user { email } } }
"""
ACCOUNT_LIMIT = 3
ADDRESS_LIMIT = 5
WINDOW = 60
WRONG = "not the password"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "login_max_failures": ACCOUNT_LIMIT,
            "login_window_seconds": WINDOW,
            "login_address_max_failures": ADDRESS_LIMIT,
            "login_address_window_seconds": WINDOW,
        }
    )


class Answer:
    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.text
        self.body: dict[str, Any] = response.json()
        self.retry_after_header = response.headers.get("Retry-After")

    @property
    def codes(self) -> list[str | None]:
        return [e.get("extensions", {}).get("code") for e in self.body.get("errors") or []]

    @property
    def retry_after(self) -> int:
        value: int = self.body["errors"][0]["extensions"]["retryAfter"]
        return value


async def login(client: httpx.AsyncClient, email: str, password: str = WRONG) -> Answer:
    variables = {"input": {"email": email, "password": password}}
    return Answer(await client.post("/graphql", json={"query": LOGIN, "variables": variables}))


def assert_throttled(answer: Answer, *, at_most: int = WINDOW) -> None:
    assert answer.codes == ["TOO_MANY_REQUESTS"], answer.body
    assert answer.body["data"] is None
    assert 1 <= answer.retry_after <= at_most
    assert answer.retry_after_header == str(answer.retry_after)
    assert "try again in" in answer.body["errors"][0]["message"]


@asynccontextmanager
async def client_of(app: FastAPI, address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from `address` (the ASGI client host)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every bcrypt check (and dummy-hash computation) from now on."""
    calls: list[str] = []
    verify, dummy = PasswordHasher._verify_sync, PasswordHasher._dummy

    def spy_verify(self: PasswordHasher, password: str, hashed: str) -> bool:
        calls.append("verify")
        return verify(self, password, hashed)

    async def spy_dummy(self: PasswordHasher) -> str:
        calls.append("dummy")
        return await dummy(self)

    monkeypatch.setattr(PasswordHasher, "_verify_sync", spy_verify)
    monkeypatch.setattr(PasswordHasher, "_dummy", spy_dummy)
    return calls


def throttle_of(app: FastAPI) -> LoginThrottle:
    throttle: LoginThrottle = app.state.services.authenticator.throttle
    return throttle


def frozen_clock(monkeypatch: pytest.MonkeyPatch, app: FastAPI) -> Callable[[float], None]:
    """Stop the throttle's clock; the returned function moves it to `seconds` after the start."""
    start = utcnow()
    now = [start]
    monkeypatch.setattr(throttle_of(app), "clock", lambda: now[0])

    def move_to(seconds: float) -> None:
        now[0] = start + timedelta(seconds=seconds)

    return move_to


async def rows(session_factory: SessionFactory) -> list[LoginFailure]:
    async with session_factory() as session:
        return list((await session.execute(sa.select(LoginFailure))).scalars())


async def test_failures_then_throttled_even_with_the_right_password(
    client: httpx.AsyncClient, make_user: UserFactory, bcrypt_calls: list[str]
) -> None:
    await make_user(email="pat@example.com")
    for _ in range(ACCOUNT_LIMIT):
        assert (await login(client, "pat@example.com")).codes == ["UNAUTHENTICATED"]
    assert bcrypt_calls.count("verify") == ACCOUNT_LIMIT

    right = await login(client, "Pat@Example.com ", DEFAULT_PASSWORD)  # normalized: one account
    assert_throttled(right)
    assert_throttled(await login(client, "pat@example.com"))
    assert bcrypt_calls.count("verify") == ACCOUNT_LIMIT  # no bcrypt work when throttled

    # Another account from the same address is not concerned.
    await make_user(email="sam@example.com")
    ok = await login(client, "sam@example.com", DEFAULT_PASSWORD)
    assert ok.codes == [], ok.body


async def test_unknown_emails_count_and_look_the_same(
    app: FastAPI, make_user: UserFactory, bcrypt_calls: list[str]
) -> None:
    await make_user(email="known@example.com")
    async with client_of(app, "192.0.2.1") as one, client_of(app, "192.0.2.2") as two:
        for client, email in ((one, "known@example.com"), (two, "ghost@example.com")):
            for _ in range(ACCOUNT_LIMIT):
                assert (await login(client, email)).codes == ["UNAUTHENTICATED"]
        # The dummy hash keeps an unknown email's failure as costly as a wrong password.
        assert bcrypt_calls.count("verify") == 2 * ACCOUNT_LIMIT
        assert bcrypt_calls.count("dummy") == ACCOUNT_LIMIT
        known = await login(one, "known@example.com")
        ghost = await login(two, "ghost@example.com")
    assert_throttled(known)
    assert_throttled(ghost)
    assert known.body["errors"][0]["message"] == ghost.body["errors"][0]["message"]
    assert bcrypt_calls.count("verify") == 2 * ACCOUNT_LIMIT


async def test_a_throttled_attempt_takes_no_bcrypt_time(
    settings: Settings, engine: AsyncEngine
) -> None:
    """At the production cost a check takes a good fraction of a second; a refusal does not."""
    app = create_app(settings.model_copy(update={"bcrypt_rounds": 12}), engine)
    async with client_of(app) as client:
        loop = asyncio.get_running_loop()
        await login(client, "nobody@example.com")  # computes the cost-12 dummy hash, once
        start = loop.time()
        await login(client, "nobody@example.com")  # one cost-12 check
        bcrypt = loop.time() - start
        for _ in range(ACCOUNT_LIMIT - 2):
            await login(client, "nobody@example.com")
        start = loop.time()
        for _ in range(5):
            assert_throttled(await login(client, "nobody@example.com"))
        refusal = (loop.time() - start) / 5
    assert refusal < bcrypt / 4, (refusal, bcrypt)


async def test_a_success_resets_the_account_count_but_not_the_address_count(
    client: httpx.AsyncClient, make_user: UserFactory, session_factory: SessionFactory
) -> None:
    await make_user(email="pat@example.com")
    for _ in range(ACCOUNT_LIMIT - 1):
        await login(client, "pat@example.com")
    assert (await login(client, "pat@example.com", DEFAULT_PASSWORD)).codes == []

    stored = await rows(session_factory)
    assert len(stored) == ACCOUNT_LIMIT - 1  # the success left no row
    assert all(row.account_key is None and row.address == "127.0.0.1" for row in stored)

    for _ in range(ACCOUNT_LIMIT):
        assert (await login(client, "pat@example.com")).codes == ["UNAUTHENTICATED"]
    assert_throttled(await login(client, "pat@example.com", DEFAULT_PASSWORD))
    key = account_key("pat@example.com")
    assert sum(row.account_key == key for row in await rows(session_factory)) == ACCOUNT_LIMIT


async def test_the_address_limit_spans_accounts(
    app: FastAPI, make_user: UserFactory, bcrypt_calls: list[str]
) -> None:
    await make_user(email="victim@example.com")
    async with client_of(app, "203.0.113.7") as attacker, client_of(app, "198.51.100.2") as user:
        for i in range(ADDRESS_LIMIT):
            assert (await login(attacker, f"guess{i}@example.com")).codes == ["UNAUTHENTICATED"]
        # A fresh account, the right password: this address is done guessing for now.
        assert_throttled(await login(attacker, "victim@example.com", DEFAULT_PASSWORD))
        assert bcrypt_calls.count("verify") == ADDRESS_LIMIT
        # The same account from another address is fine.
        assert (await login(user, "victim@example.com", DEFAULT_PASSWORD)).codes == []


async def test_the_window_slides_and_old_rows_go(
    app: FastAPI,
    make_user: UserFactory,
    session_factory: SessionFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_user(email="pat@example.com")
    move_to = frozen_clock(monkeypatch, app)
    async with client_of(app) as client:
        for second in (0, 10, 20):
            move_to(second)
            assert (await login(client, "pat@example.com")).codes == ["UNAUTHENTICATED"]
        move_to(30)
        throttled = await login(client, "pat@example.com", DEFAULT_PASSWORD)
        assert_throttled(throttled)
        assert throttled.retry_after == WINDOW - 30  # when the failure at 0 leaves the window
        move_to(WINDOW - 0.5)
        assert_throttled(await login(client, "pat@example.com", DEFAULT_PASSWORD), at_most=1)
        move_to(WINDOW)  # the failure at 0 is out: one more try
        assert (await login(client, "pat@example.com")).codes == ["UNAUTHENTICATED"]
        move_to(WINDOW + 1)
        throttled = await login(client, "pat@example.com")
        assert throttled.retry_after == 10 - 1  # now the one at 10 must leave

        # Past the window and the cleanup interval, the next attempt deletes the old rows.
        move_to(2 * WINDOW + CLEANUP_EVERY.total_seconds())
        assert (await login(client, "pat@example.com", DEFAULT_PASSWORD)).codes == []
    assert await rows(session_factory) == []


async def test_a_burst_of_concurrent_guesses_is_held_to_the_limit(
    client: httpx.AsyncClient, make_user: UserFactory, bcrypt_calls: list[str], backend: str
) -> None:
    """Attempts count from the moment they start, so a burst cannot all pass the check before
    the first of them fail."""
    await make_user(email="pat@example.com")
    answers = await asyncio.gather(*(login(client, "pat@example.com") for _ in range(12)))
    codes = [answer.codes[0] for answer in answers]
    checked = codes.count("UNAUTHENTICATED")
    assert checked + codes.count("TOO_MANY_REQUESTS") == 12
    assert bcrypt_calls.count("verify") == checked
    # SQLite serialises the writes: exact. On PostgreSQL an attempt may miss one whose insert
    # has not committed yet when it counts.
    assert checked == ACCOUNT_LIMIT if backend == "sqlite" else ACCOUNT_LIMIT <= checked <= 5


async def test_two_instances_over_one_database_agree(
    settings: Settings, engine: AsyncEngine, database_url: str, make_user: UserFactory
) -> None:
    """Two apps, each with its own engine (as two replicas would), count the same failures."""
    settings = settings.model_copy(update={"login_address_max_failures": 50})
    await make_user(email="pat@example.com")
    await make_user(email="sam@example.com")
    other_engine = make_engine(database_url)
    try:
        first, second = create_app(settings, engine), create_app(settings, other_engine)
        async with client_of(first) as one, client_of(second) as two:
            await login(one, "sam@example.com")
            await login(two, "sam@example.com")
            assert (await login(one, "sam@example.com", DEFAULT_PASSWORD)).codes == []
            await login(two, "sam@example.com")  # counted afresh after the success

            for client in (one, two, one):
                assert (await login(client, "pat@example.com")).codes == ["UNAUTHENTICATED"]
            assert_throttled(await login(two, "pat@example.com", DEFAULT_PASSWORD))
            assert_throttled(await login(one, "pat@example.com", DEFAULT_PASSWORD))

            await login(one, "sam@example.com")
            assert (await login(two, "sam@example.com")).codes == ["UNAUTHENTICATED"]
            assert_throttled(await login(one, "sam@example.com", DEFAULT_PASSWORD))
    finally:
        await other_engine.dispose()


async def test_zero_turns_the_limits_off(
    settings: Settings,
    engine: AsyncEngine,
    make_user: UserFactory,
    session_factory: SessionFactory,
) -> None:
    off = settings.model_copy(update={"login_max_failures": 0, "login_address_max_failures": 0})
    await make_user(email="pat@example.com")
    async with client_of(create_app(off, engine)) as client:
        for _ in range(ADDRESS_LIMIT + 1):
            assert (await login(client, "pat@example.com")).codes == ["UNAUTHENTICATED"]
        assert (await login(client, "pat@example.com", DEFAULT_PASSWORD)).codes == []
    assert await rows(session_factory) == []


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "LOGIN_MAX_FAILURES": "7",
        "LOGIN_WINDOW_SECONDS": "120",
        "LOGIN_ADDRESS_MAX_FAILURES": "70",
        "LOGIN_ADDRESS_WINDOW_SECONDS": "600",
    }.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert (settings.login_max_failures, settings.login_window_seconds) == (7, 120)
    assert (settings.login_address_max_failures, settings.login_address_window_seconds) == (70, 600)
    defaults = Settings.model_fields
    assert defaults["login_max_failures"].default == 5
    assert defaults["login_address_max_failures"].default == 50
    assert defaults["login_window_seconds"].default == 900


def test_the_account_key_is_the_normalized_email_hashed() -> None:
    assert account_key(" Pat@Example.COM") == account_key("pat@example.com")
    assert len(account_key("pat@example.com")) == 64
    assert "pat" not in account_key("pat@example.com")
    assert account_key("\ud800@example.com")  # a lone surrogate from JSON does not crash it
