"""The GraphiQL playground over HTTP: TaskQL's page, its vendored assets, and the GRAPHIQL switch.

The real browser is in test_graphiql_browser.py.
"""

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings
from taskql.app import create_app
from taskql.ide import AUTH_PLACEHOLDER, CDN, ide_html
from taskql.ide_assets import load_manifest, sri
from tests.support.browser import require_ide_assets

HTML = {"Accept": "text/html"}
CONFIG = re.compile(r'<script type="application/json" id="taskql-ide-config">(.*?)</script>', re.S)


def page_config(page: str) -> dict[str, str]:
    """The settings the page hands to GraphiQL."""
    found = CONFIG.search(page)
    assert found is not None, page
    config: dict[str, str] = json.loads(found.group(1))
    return config


def plain_settings(**overrides: object) -> Settings:
    """Settings from these values alone, not the environment (the page needs no database)."""
    return Settings.model_validate({"environment": "test", **overrides})


async def test_the_page_loads_the_vendored_assets(client: httpx.AsyncClient) -> None:
    require_ide_assets()
    page = await client.get("/graphql", headers=HTML)

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'data-assets="local"' in page.text
    for name, asset in load_manifest().assets.items():
        assert f'"/graphql/ide/{name}" integrity="{asset.integrity}"' in page.text
    assert CDN not in page.text


async def test_each_asset_is_served_with_its_type_and_cached_for_good(
    client: httpx.AsyncClient,
) -> None:
    require_ide_assets()
    for name, asset in load_manifest().assets.items():
        answer = await client.get(f"/graphql/ide/{name}")
        assert answer.status_code == 200, name
        kind = "text/javascript" if asset.is_script else "text/css"
        assert answer.headers["content-type"].startswith(kind)
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert sri(answer.content) == asset.integrity

        again = await client.get(
            f"/graphql/ide/{name}", headers={"If-None-Match": answer.headers["etag"]}
        )
        assert again.status_code == 304
        assert again.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/graphql/ide/nope.js",
        "/graphql/ide/graphiql-3.8.3.min.js.map",
        "/graphql/ide/graphiql.min.js",
        "/graphql/ide/sub/graphiql-3.8.3.min.js",
        "/graphql/ide/..%2F..%2Fpyproject.toml",
        "/graphql/ide/.installed",
    ],
)
async def test_anything_else_is_a_coded_404(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path)

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    [error] = answer.json()["errors"]
    assert error["extensions"] == {"code": "NOT_FOUND"}
    assert error["message"]


@pytest.fixture
async def production_client(
    settings: Settings, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with the production default: GRAPHIQL off."""
    app = create_app(settings.model_copy(update={"graphiql": False}), engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_with_graphiql_off_there_is_no_page(production_client: httpx.AsyncClient) -> None:
    answer = await production_client.get("/graphql", headers=HTML)

    assert not answer.headers.get("content-type", "").startswith("text/html")
    assert "taskql-ide-config" not in answer.text
    assert answer.status_code != 200
    asset = await production_client.get("/graphql/ide/graphiql-3.8.3.min.js")
    assert asset.status_code == 404
    assert asset.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_production_turns_graphiql_off_by_default() -> None:
    assert plain_settings().graphiql_enabled
    assert not plain_settings(environment="production").graphiql_enabled
    assert plain_settings(environment="production", graphiql=True).graphiql_enabled


def test_without_vendored_assets_the_page_loads_the_cdn_pinned_by_hashes(tmp_path: Path) -> None:
    page = ide_html(plain_settings(), assets_dir=tmp_path)

    assert 'data-assets="cdn"' in page
    assert "/graphql/ide/" not in page
    for asset in load_manifest().assets.values():
        url = f"{CDN}/{asset.package}@{asset.version}/{asset.path}"
        assert f'"{url}" integrity="{asset.integrity}" crossorigin="anonymous"' in page


def test_the_page_explains_logging_in_and_offers_a_header_template(tmp_path: Path) -> None:
    page = ide_html(plain_settings(), assets_dir=tmp_path)
    config = page_config(page)

    assert "<title>TaskQL · GraphiQL</title>" in page
    assert json.loads(config["defaultHeaders"]) == {"Authorization": AUTH_PLACEHOLDER}
    assert "mutation Login" in config["defaultQuery"]
    assert "accessToken" in config["defaultQuery"]
    assert "Introspection is off" not in config["defaultQuery"]
    # Queries go where the page came from, subscriptions to the same URL over ws(s).
    assert "window.location.origin + window.location.pathname" in page
    assert 'subscriptionUrl: url.replace(/^http/, "ws")' in page

    quiet = page_config(ide_html(plain_settings(introspection=False), assets_dir=tmp_path))
    assert "Introspection is off" in quiet["defaultQuery"]
