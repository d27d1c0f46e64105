"""Error answers given by middleware, before GraphQL runs, in GraphQL's error shape."""

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send


async def send_error(
    scope: Scope, receive: Receive, send: Send, *, status: int, message: str, code: str
) -> None:
    """Answer `status` with `{"errors": [{"message", "extensions": {"code"}}]}`."""
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    await JSONResponse(body, status_code=status)(scope, receive, send)
