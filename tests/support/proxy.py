"""A TCP proxy between TaskQL and PostgreSQL that a test can stall, cut off and resume."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url

CHUNK = 65536


class DatabaseProxy:
    """Forwards 127.0.0.1:`port` to the database's host and port.

    - `stall()`: keeps every socket open (and accepts new ones) but forwards nothing, as a
      frozen or partitioned server would; `resume()` forwards what was held back.
    - `cut()`: closes every connection and stops listening, so connecting is refused;
      `restore()` listens again on the same port.
    """

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def url_for(self, database_url: str) -> str:
        """`database_url`, through this proxy."""
        parsed = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return parsed.render_as_string(hide_password=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    async def cut(self) -> None:
        """Refuse new connections and close the open ones."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._close_all()

    async def restore(self) -> None:
        """Listen again, on the same port, and forward."""
        self.resume()
        await self.start()

    async def stop(self) -> None:
        self.resume()
        await self.cut()

    async def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(client)
        server: asyncio.StreamWriter | None = None
        try:
            server_reader, server = await asyncio.open_connection(*self.upstream)
            self._writers.add(server)
            await asyncio.gather(self._pump(reader, server), self._pump(server_reader, client))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for writer in (client, server):
                if writer is not None:
                    writer.close()
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await writer.wait_closed()
                    self._writers.discard(writer)
            self._tasks.discard(task)

    async def _pump(self, source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(CHUNK):
                await self.flowing.wait()  # a stall holds the bytes back, sockets open
                target.write(data)
                await target.drain()
        except OSError:
            pass
        finally:
            target.close()


@asynccontextmanager
async def database_proxy(database_url: str) -> AsyncIterator[DatabaseProxy]:
    """A started proxy to the database of `database_url`, stopped on the way out."""
    parsed = make_url(database_url)
    proxy = DatabaseProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
