"""DataLoaders, built per request. Each batch opens its own session (sibling fields run
concurrently, and one AsyncSession cannot serve two operations at once)."""

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from db import users
from db.engine import SessionFactory
from db.models import User


class Loaders:
    """Every loader of one request."""

    def __init__(self, session_factory: SessionFactory) -> None:
        self._session_factory = session_factory
        self.user_by_id = DataLoader[int, User | None](load_fn=self._users_by_id)

    async def _users_by_id(self, ids: Sequence[int]) -> list[User | None]:
        async with self._session_factory() as session:
            found = {u.id: u for u in await users.get_users(session=session, user_ids=ids)}
        return [found.get(i) for i in ids]
