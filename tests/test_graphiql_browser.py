"""GraphiQL in a real browser: a real `taskql serve`, headless Chromium, and no internet.

Every request for a host other than 127.0.0.1 is aborted and counted, so the page must work
from the vendored assets alone. The test logs in, pastes the token into the Headers tab, asks
who it is, and follows a subscription over WebSocket, as a person would: typing into editors.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Request, Route, WebSocket, sync_playwright

from taskql.ide import AUTH_PLACEHOLDER
from tests.support.browser import CHROMIUM_ARGS, require_chromium, require_ide_assets
from tests.support.database import sqlite_url
from tests.support.processes import process_env, taskql_server

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "a long admin password"
LOGIN = (
    f'mutation {{ login(input: {{email: "{ADMIN_EMAIL}", password: "{ADMIN_PASSWORD}"}}) '
    "{ accessToken } }"
)
ME = "{ me { email role } }"
NO_SUCH_JOB = "0f0f0f0f-0000-4000-8000-000000000000"
PROGRESS = f'subscription {{ importJobProgress(id: "{NO_SUCH_JOB}") {{ status }} }}'

QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
RESULT = ".result-window .CodeMirror"
TIMEOUT_MS = 30_000


@dataclass
class Traffic:
    """What the page asked for: foreign requests (aborted), GraphQL POSTs, WebSockets."""

    blocked: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`taskql serve` on a fresh SQLite file, with an admin from the environment."""
    require_ide_assets()
    tmp = tmp_path_factory.mktemp("graphiql")
    env = process_env(
        sqlite_url(tmp / "ide.db"),
        tmp / "uploads",
        LOG_LEVEL="WARNING",
        TASKQL_ADMIN_EMAIL=ADMIN_EMAIL,
        TASKQL_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    with taskql_server(env, tmp / "server.log") as url:
        yield url


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
def page(served: str, traffic: Traffic) -> Iterator[Page]:
    """Headless Chromium on the served GraphiQL page, with the editor rendered."""
    chromium = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(TIMEOUT_MS)
            watch(page, traffic)
            page.goto(f"{served}/graphql")
            page.wait_for_selector(QUERY_EDITOR)
            yield page
        finally:
            browser.close()


def watch(page: Page, traffic: Traffic) -> None:
    """Abort and count every request for another host; note POSTs, sockets and script errors."""

    def only_this_machine(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname != "127.0.0.1":
            traffic.blocked.append(request.url)
            route.abort()
        else:
            route.continue_()

    def on_request(request: Request) -> None:
        if request.method == "POST":
            traffic.authorizations.append(request.headers.get("authorization"))

    def on_socket(socket: WebSocket) -> None:
        traffic.sockets.append(socket.url)

    page.route("**/*", only_this_machine)
    page.on("request", on_request)
    page.on("websocket", on_socket)
    page.on("pageerror", lambda error: traffic.page_errors.append(str(error)))


def editor_text(page: Page, selector: str) -> str:
    text: str = page.evaluate("s => document.querySelector(s).CodeMirror.getValue()", selector)
    return text


def type_into(page: Page, selector: str, text: str) -> None:
    """Replace an editor's text by typing it (the editor closes brackets as they are typed)."""
    page.click(selector)
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(text)
    page.keyboard.press("Escape")  # close a completion list, if one is open
    assert editor_text(page, selector) == text


def run(page: Page, text: str, expect: str) -> dict[str, Any]:
    """Type `text` as the query, run it with Ctrl-Enter, read the result once it has `expect`."""
    type_into(page, QUERY_EDITOR, text)
    page.wait_for_timeout(500)  # GraphiQL re-reads the operation after a pause in typing
    page.click(QUERY_EDITOR)
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "([s, expect]) => document.querySelector(s).CodeMirror.getValue().includes(expect)",
        arg=[RESULT, expect],
        timeout=TIMEOUT_MS,
    )
    result: dict[str, Any] = json.loads(editor_text(page, RESULT))
    return result


def log_in(page: Page) -> str:
    """Run the login mutation from the editor and paste its token into the Headers tab."""
    login = run(page, LOGIN, "accessToken")
    token: str = login["data"]["login"]["accessToken"]
    type_into(page, HEADERS_EDITOR, json.dumps({"Authorization": f"Bearer {token}"}))
    return token


def test_graphiql_works_offline_in_chromium(page: Page, traffic: Traffic, tmp_path: Path) -> None:
    assert page.get_attribute("#graphiql", "data-assets") == "local"
    assert AUTH_PLACEHOLDER in editor_text(page, HEADERS_EDITOR)

    token = log_in(page)
    # The schema's introspection and the login went out without the placeholder.
    assert len(traffic.authorizations) >= 2
    assert set(traffic.authorizations) == {None}

    me = run(page, ME, ADMIN_EMAIL)
    assert me == {"data": {"me": {"email": ADMIN_EMAIL, "role": "ADMIN"}}}
    assert traffic.authorizations[-1] == f"Bearer {token}"

    screenshot = tmp_path / "graphiql.png"
    page.screenshot(path=str(screenshot))
    print(f"GraphiQL screenshot: {screenshot}")
    assert traffic.page_errors == []
    assert traffic.blocked == [], "the page asked the internet for these"


def test_graphiql_subscribes_over_websocket(page: Page, traffic: Traffic, served: str) -> None:
    log_in(page)

    progress = run(page, PROGRESS, "errors")

    assert traffic.sockets == [f"{served.replace('http', 'ws', 1)}/graphql"]
    codes = [error.get("extensions", {}).get("code") for error in progress["errors"]]
    assert codes == ["NOT_FOUND"], progress  # the server's answer, over the socket
    assert traffic.page_errors == []
    assert traffic.blocked == []
