"""Live-event helpers: a graphql-transport-ws subscriber over a real WebSocket, and mutations."""

import json
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

GRAPHQL_WS = Subprotocol("graphql-transport-ws")

TASK_EVENTS = """
subscription TaskEvents($projectId: Int, $assigneeId: Int) {
  taskEvents(projectId: $projectId, assigneeId: $assigneeId) {
    kind taskId projectId changedFields taskCount message
    actor { id }
    task { id title status assignee { id } }
  }
}
"""

PROJECT_EVENTS = """
subscription ProjectEvents($projectId: Int) {
  projectEvents(projectId: $projectId) {
    kind projectId changedFields message project { id name } member { id } actor { id }
  }
}
"""


class Subscriber:
    """One WebSocket connection with one subscription, reading its messages in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(
        cls,
        stack: AsyncExitStack,
        url: str,
        token: str | None,
        query: str = TASK_EVENTS,
        variables: dict[str, Any] | None = None,
    ) -> "Subscriber":
        ws_url = url.replace("http://", "ws://") + "/graphql"
        ws = await stack.enter_async_context(connect(ws_url, subprotocols=[GRAPHQL_WS]))
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        subscriber = cls(ws)
        await subscriber.subscribe("1", query, variables)
        return subscriber

    async def subscribe(
        self, op_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        payload = {"query": query, "variables": variables or {}}
        await self.ws.send(json.dumps({"type": "subscribe", "id": op_id, "payload": payload}))

    async def message(self, seconds: float = 5) -> dict[str, Any]:
        with anyio.fail_after(seconds):
            message: dict[str, Any] = json.loads(await self.ws.recv())
        return message

    async def event(self, seconds: float = 5) -> dict[str, Any]:
        """The next event's data (fails on anything but a `next` without errors)."""
        message = await self.message(seconds)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = next(iter(message["payload"]["data"].values()))
        return data

    async def silent(self, seconds: float = 0.5) -> None:
        """Nothing arrives for `seconds`."""
        with anyio.move_on_after(seconds):
            message = await self.ws.recv()
            raise AssertionError(f"unexpected message: {message!r}")

    async def drain(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        got = []
        while True:
            with anyio.move_on_after(seconds):
                got.append(json.loads(await self.ws.recv()))
                continue
            return got


async def until_live(subscriber: Subscriber, poke: Callable[[], Awaitable[None]]) -> None:
    """Poke (a write the subscriber sees) until an event arrives: the subscription is live.

    graphql-transport-ws does not acknowledge a subscribe, so this is how a test knows."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        await poke()
        with anyio.move_on_after(0.5):
            await subscriber.event()
            await subscriber.drain()
            return
    raise AssertionError("the subscription never received an event")


async def mutate(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str
) -> dict[str, Any]:
    """Run a mutation; its data (fails on errors)."""
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


UPDATE_TASK = """
mutation($input: UpdateTaskInput!) { updateTask(input: $input) { task { id } } }
"""
CREATE_TASK = """
mutation($input: CreateTaskInput!) { createTask(input: $input) { task { id } } }
"""
DELETE_TASK = """
mutation($input: DeleteTaskInput!) { deleteTask(input: $input) { deletedId } }
"""
