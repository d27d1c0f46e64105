"""Authentication over GraphQL: register, login, refresh rotation, logout, bad tokens."""

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import sqlalchemy as sa

from auth.passwords import PasswordHasher
from db.engine import SessionFactory
from db.models import RefreshToken, Role, User
from tests.support.accounts import DEFAULT_PASSWORD, TEST_SECRET, TokenFor, UserFactory
from tests.support.graphql import Gql

REGISTER = """
mutation Register($input: RegisterInput!) {
  register(input: $input) { id email fullName role isActive }
}
"""
LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) { accessToken refreshToken tokenType user { id email role } }
}
"""
REFRESH = """
mutation Refresh($input: RefreshTokenInput!) {
  refreshToken(input: $input) { accessToken refreshToken user { id } }
}
"""
LOGOUT = """
mutation Logout($input: LogoutInput!) { logout(input: $input) { ok } }
"""
ME = "{ me { id email fullName role } }"


async def register(gql: Gql, email: str, password: str = DEFAULT_PASSWORD) -> dict[str, object]:
    data = (
        await gql(REGISTER, {"input": {"email": email, "password": password, "fullName": "Bo"}})
    ).ok()
    result: dict[str, object] = data["register"]
    return result


async def login(gql: Gql, email: str, password: str = DEFAULT_PASSWORD) -> dict[str, str]:
    data = (await gql(LOGIN, {"input": {"email": email, "password": password}})).ok()
    result: dict[str, str] = data["login"]
    return result


async def test_register_login_me_refresh_reuse_logout(gql: Gql) -> None:
    """The scripted flow of the foundation issue, end to end."""
    user = await register(gql, "Bo@Example.com")
    assert user["email"] == "bo@example.com"
    assert user["role"] == "USER"

    tokens = await login(gql, "BO@example.com")
    assert tokens["tokenType"] == "Bearer"
    me = (await gql(ME, token=tokens["accessToken"])).ok()["me"]
    assert me["email"] == "bo@example.com"

    rotated = (await gql(REFRESH, {"input": {"refreshToken": tokens["refreshToken"]}})).ok()
    rotated = rotated["refreshToken"]
    assert rotated["refreshToken"] != tokens["refreshToken"]
    assert (await gql(ME, token=rotated["accessToken"])).ok()["me"]["id"] == user["id"]

    # The spent token is refused, and its reuse revokes the whole family: the rotated one dies too.
    reuse = await gql(REFRESH, {"input": {"refreshToken": tokens["refreshToken"]}})
    assert reuse.codes == ["UNAUTHENTICATED"]
    family = await gql(REFRESH, {"input": {"refreshToken": rotated["refreshToken"]}})
    assert family.codes == ["UNAUTHENTICATED"]

    # A fresh login is a new family; logout revokes it.
    again = await login(gql, "bo@example.com")
    out = await gql(
        LOGOUT, {"input": {"refreshToken": again["refreshToken"]}}, token=again["accessToken"]
    )
    assert out.ok() == {"logout": {"ok": True}}
    after = await gql(REFRESH, {"input": {"refreshToken": again["refreshToken"]}})
    assert after.codes == ["UNAUTHENTICATED"]


async def test_refresh_family_revoked_in_database(
    gql: Gql, session_factory: SessionFactory
) -> None:
    await register(gql, "fam@example.com")
    tokens = await login(gql, "fam@example.com")
    await gql(REFRESH, {"input": {"refreshToken": tokens["refreshToken"]}})
    await gql(REFRESH, {"input": {"refreshToken": tokens["refreshToken"]}})  # reuse
    async with session_factory() as session:
        rows = (await session.execute(sa.select(RefreshToken))).scalars().all()
    assert len(rows) == 2
    assert all(row.revoked_at is not None for row in rows)


async def test_register_rejects_bad_input(gql: Gql) -> None:
    await register(gql, "taken@example.com")
    cases = [
        ({"email": "TAKEN@example.com", "password": DEFAULT_PASSWORD}, "CONFLICT", "email"),
        ({"email": "x@example.com", "password": "short"}, "BAD_USER_INPUT", "password"),
        ({"email": "x@example.com", "password": "é" * 37}, "BAD_USER_INPUT", "password"),
        ({"email": "not-an-email", "password": DEFAULT_PASSWORD}, "BAD_USER_INPUT", "email"),
        ({"email": "x@example.com", "password": "nul\x00inside"}, "BAD_USER_INPUT", "password"),
    ]
    for fields, code, field in cases:
        result = await gql(REGISTER, {"input": {**fields, "fullName": "X"}})
        assert result.codes == [code], (fields, result.body)
        assert result.errors[0]["extensions"]["field"] == field
    too_long = await gql(
        REGISTER, {"input": {"email": "y@example.com", "password": "a" * 73, "fullName": "Y"}}
    )
    assert "72 bytes" in too_long.errors[0]["message"]
    too_short = await gql(
        REGISTER, {"input": {"email": "y@example.com", "password": "a" * 7, "fullName": "Y"}}
    )
    assert "at least 8 characters" in too_short.errors[0]["message"]


async def test_wrong_password_and_unknown_email_look_the_same(gql: Gql) -> None:
    await register(gql, "real@example.com")
    wrong = await gql(LOGIN, {"input": {"email": "real@example.com", "password": "nope-nope"}})
    unknown = await gql(LOGIN, {"input": {"email": "ghost@example.com", "password": "nope-nope"}})
    assert wrong.codes == unknown.codes == ["UNAUTHENTICATED"]
    assert wrong.errors[0]["message"] == unknown.errors[0]["message"]


async def test_unknown_email_costs_a_full_bcrypt_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Timing: an unknown user is checked against a dummy hash of the same cost, not skipped."""
    checked: list[str] = []
    real = PasswordHasher._verify_sync

    def spy(self: PasswordHasher, password: str, hashed: str) -> bool:
        checked.append(hashed)
        return real(self, password, hashed)

    monkeypatch.setattr(PasswordHasher, "_verify_sync", spy)
    hasher = PasswordHasher(rounds=5)
    hashed = await hasher.hash("some password")
    assert await hasher.verify("some password", hashed)
    assert not await hasher.verify("some password", None)
    assert not await hasher.verify("x" * 100, None)
    assert len(checked) == 3
    assert all(h.startswith("$2b$05$") for h in checked)
    assert checked[1] != hashed


async def test_production_cost_is_twelve() -> None:
    hashed = await PasswordHasher().hash("a fine password")
    assert hashed.startswith("$2b$12$")


async def test_login_refused_for_deactivated_user(gql: Gql, make_user: UserFactory) -> None:
    await make_user(email="gone@example.com", is_active=False)
    result = await gql(
        LOGIN, {"input": {"email": "gone@example.com", "password": DEFAULT_PASSWORD}}
    )
    assert result.codes == ["UNAUTHENTICATED"]


async def test_tokens_of_deactivated_user_are_rejected(
    gql: Gql, make_user: UserFactory, session_factory: SessionFactory
) -> None:
    await make_user(email="soon@example.com")
    tokens = await login(gql, "soon@example.com")
    async with session_factory() as session, session.begin():
        await session.execute(sa.update(User).values(is_active=False))
    assert (await gql(ME, token=tokens["accessToken"])).codes == ["UNAUTHENTICATED"]
    refreshed = await gql(REFRESH, {"input": {"refreshToken": tokens["refreshToken"]}})
    assert refreshed.codes == ["UNAUTHENTICATED"]


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(user: User, **overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": str(user.id),
        "type": "access",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": "j1",
    }
    claims.update(overrides)
    return claims


async def test_bad_access_tokens_are_unauthenticated(
    gql: Gql, make_user: UserFactory, token_for: TokenFor
) -> None:
    user = await make_user()
    good = token_for(user)
    assert (await gql(ME, token=good)).ok()["me"]["id"] == user.id

    refresh = (await login(gql, user.email))["refreshToken"]
    head, body, sig = good.split(".")
    tampered_claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    tampered_claims["sub"] = "999"
    tampered = f"{head}.{_b64(tampered_claims)}.{sig}"
    now = datetime.now(UTC)
    expired = jwt.encode(
        _claims(user, iat=now - timedelta(hours=2), exp=now - timedelta(hours=1)),
        TEST_SECRET,
        algorithm="HS256",
    )
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(user, iat=1, exp=2**40))}."
    other_key = jwt.encode(_claims(user), "another-secret-that-is-long-enough-0000000", "HS256")
    missing_jti = jwt.encode(
        {k: v for k, v in _claims(user).items() if k != "jti"}, TEST_SECRET, "HS256"
    )
    for name, token in [
        ("refresh as access", refresh),
        ("tampered", tampered),
        ("expired", expired),
        ("alg none", alg_none),
        ("wrong key", other_key),
        ("no jti", missing_jti),
        ("garbage", "not.a.token"),
    ]:
        result = await gql(ME, token=token)
        assert result.codes == ["UNAUTHENTICATED"], (name, result.body)


async def test_access_token_is_not_a_refresh_token(gql: Gql, make_user: UserFactory) -> None:
    await make_user(email="swap@example.com")
    tokens = await login(gql, "swap@example.com")
    result = await gql(REFRESH, {"input": {"refreshToken": tokens["accessToken"]}})
    assert result.codes == ["UNAUTHENTICATED"]


async def test_token_claims(gql: Gql, make_user: UserFactory) -> None:
    await make_user(email="claims@example.com")
    tokens = await login(gql, "claims@example.com")
    for key, kind in (("accessToken", "access"), ("refreshToken", "refresh")):
        claims = jwt.decode(tokens[key], TEST_SECRET, algorithms=["HS256"])
        assert {"sub", "type", "iat", "exp", "jti"} <= set(claims)
        assert claims["type"] == kind
    access = jwt.decode(tokens["accessToken"], TEST_SECRET, algorithms=["HS256"])
    assert access["exp"] - access["iat"] == 30 * 60


async def test_logout_needs_authentication(gql: Gql, make_user: UserFactory) -> None:
    await make_user(email="lo@example.com")
    tokens = await login(gql, "lo@example.com")
    result = await gql(LOGOUT, {"input": {"refreshToken": tokens["refreshToken"]}})
    assert result.codes == ["UNAUTHENTICATED"]


async def test_logout_of_someone_elses_token_is_refused(
    gql: Gql, make_user: UserFactory, token_for: TokenFor
) -> None:
    await make_user(email="victim@example.com")
    other = await make_user(email="other@example.com", role=Role.USER)
    victim_tokens = await login(gql, "victim@example.com")
    result = await gql(
        LOGOUT, {"input": {"refreshToken": victim_tokens["refreshToken"]}}, token=token_for(other)
    )
    assert result.codes == ["UNAUTHENTICATED"]
    still = await gql(REFRESH, {"input": {"refreshToken": victim_tokens["refreshToken"]}})
    assert still.ok()["refreshToken"]["accessToken"]


@pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Token xyz"])
async def test_malformed_authorization_header_is_anonymous(gql: Gql, header: str) -> None:
    result = await gql(ME, headers={"Authorization": header})
    assert result.codes == ["UNAUTHENTICATED"]


async def test_unexpected_errors_are_masked_with_request_id(
    gql: Gql, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auth.sessions import Authenticator

    async def boom(self: Authenticator, token: str) -> User:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(Authenticator, "user_for_access_token", boom)
    result = await gql(ME, token=admin_token, headers={"X-Request-ID": "req-123"})
    assert result.status_code == 200
    assert result.errors[0]["message"] == "Internal server error."
    assert result.errors[0]["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "requestId": "req-123",
    }
    assert "hunter2" not in json.dumps(result.body)
