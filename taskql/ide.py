"""The GraphiQL playground: TaskQL's own page (`ide_html`) and its vendored assets.

The page loads React and GraphiQL from /graphql/ide/<file> when `make ide` vendored them (see
taskql/ide_assets.py), and from a public CDN, pinned by SRI hashes, when it did not. It sends
queries to the URL it was loaded from and runs subscriptions over graphql-transport-ws there.
"""

import html
import json
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from core.settings import Settings
from taskql import ide_assets
from taskql.dependencies import ServicesDep
from taskql.ide_assets import Asset, Manifest

router = APIRouter(include_in_schema=False)

ASSET_PATH = "/graphql/ide/"
CDN = "https://unpkg.com"  # the fallback when the assets are not vendored
IMMUTABLE = "public, max-age=31536000, immutable"  # file names carry the package version
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
AUTH_PLACEHOLDER = "Bearer <paste an access token from the login mutation>"
DEFAULT_HEADERS = json.dumps({"Authorization": AUTH_PLACEHOLDER}, indent=2)

WELCOME = """\
# Welcome to TaskQL's GraphiQL.
#
# 1. Log in: put the cursor in the Login operation and
#    press Ctrl-Enter (or the run button). The first admin
#    comes from `taskql create-admin`, or from
#    TASKQL_ADMIN_EMAIL and TASKQL_ADMIN_PASSWORD.
# 2. Paste the accessToken of the result into the Headers
#    tab below, in place of the placeholder, after
#    "Bearer ". Until then requests go out anonymous.
#    A token lasts 30 minutes; the refreshToken mutation
#    trades the refresh token for a new pair.
# 3. Run Me, or anything from the Docs (the book icon).
#    Subscriptions (importJobProgress) run over WebSocket
#    at this same URL, with the same headers.
"""
OPERATIONS = """
mutation Login {
  login(input: {email: "admin@example.com", password: "a long password"}) {
    accessToken
    refreshToken
    user { id email role }
  }
}

query Me {
  me { id email fullName role }
}
"""
NO_INTROSPECTION = (
    "#\n# Introspection is off here (INTROSPECTION=false):\n# no Docs, no completion.\n"
)


def not_found(message: str) -> JSONResponse:
    """404 in GraphQL's error shape."""
    body = {"errors": [{"message": message, "extensions": {"code": "NOT_FOUND"}}]}
    return JSONResponse(body, status_code=404, headers={"Cache-Control": "no-store"})


@router.api_route(ASSET_PATH + "{name:path}", methods=["GET", "HEAD"])
def ide_asset(name: str, request: Request, services: ServicesDep) -> Response:
    """One vendored file, by the name the manifest serves it as; nothing else."""
    if not services.settings.graphiql_enabled:
        return not_found("The GraphiQL playground is turned off on this server (GRAPHIQL=false).")
    asset = ide_assets.load_manifest().assets.get(name)
    if asset is None:
        return not_found(f"No GraphiQL asset is called {name!r}.")
    path = ide_assets.VENDOR_DIR / asset.serve_as
    if not path.is_file():
        return not_found(f"{name} is not installed: run `make ide` (the page uses the CDN).")
    headers = {
        "Cache-Control": IMMUTABLE,
        "ETag": f'"{asset.integrity}"',
        "X-Content-Type-Options": "nosniff",
    }
    if headers["ETag"] in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=CONTENT_TYPES[Path(name).suffix], headers=headers)


def asset_url(asset: Asset, *, local: bool) -> str:
    """Where the page loads `asset` from: this server, or the CDN's copy of the same file."""
    if local:
        return ASSET_PATH + asset.serve_as
    return f"{CDN}/{asset.package}@{asset.version}/{asset.path}"


def asset_tags(manifest: Manifest, *, local: bool) -> tuple[str, str]:
    """The page's stylesheet links and script tags, each pinned by the file's hash."""
    styles, scripts = [], []
    for asset in manifest.assets.values():
        url = html.escape(asset_url(asset, local=local))
        pinned = f'integrity="{asset.integrity}" crossorigin="anonymous"'
        if asset.is_script:
            scripts.append(f'<script src="{url}" {pinned}></script>')
        else:
            styles.append(f'<link rel="stylesheet" href="{url}" {pinned}>')
    return "\n    ".join(styles), "\n    ".join(scripts)


def ide_html(settings: Settings, assets_dir: Path | None = None) -> str:
    """TaskQL's GraphiQL page, on the vendored assets when installed, else on the CDN."""
    manifest = ide_assets.load_manifest()
    local = ide_assets.is_installed(manifest, assets_dir or ide_assets.VENDOR_DIR)
    styles, scripts = asset_tags(manifest, local=local)
    note = "" if settings.introspection_enabled else NO_INTROSPECTION
    config = {
        "defaultQuery": WELCOME + note + OPERATIONS,
        "defaultHeaders": DEFAULT_HEADERS,
        "placeholder": AUTH_PLACEHOLDER,
        "label": "TaskQL" if settings.is_production else f"TaskQL · {settings.environment}",
    }
    # Inside <script>, "</" could close the element: JSON allows it escaped.
    config_json = json.dumps(config).replace("</", "<\\/")
    mode = "local" if local else "cdn"
    return PAGE.format(styles=styles, scripts=scripts, config=config_json, assets=mode)


PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="robots" content="noindex">
    <title>TaskQL · GraphiQL</title>
    <style>
      html, body, #graphiql {{ height: 100%; margin: 0; }}
      #graphiql > .loading {{ font: 16px system-ui, sans-serif; padding: 2rem; color: #555; }}
      .graphiql-container .graphiql-logo {{ font-weight: 600; }}
    </style>
    {styles}
  </head>
  <body>
    <div id="graphiql" data-assets="{assets}">
      <div class="loading">Loading TaskQL's GraphiQL…</div>
    </div>
    <noscript>GraphiQL needs JavaScript.</noscript>
    {scripts}
    <script type="application/json" id="taskql-ide-config">{config}</script>
    <script>
      (function () {{
        "use strict";
        var config = JSON.parse(document.getElementById("taskql-ide-config").textContent);
        var root = document.getElementById("graphiql");
        if (!window.React || !window.ReactDOM || !window.GraphiQL) {{
          root.firstElementChild.textContent =
            "GraphiQL's scripts did not load (offline, and not vendored? run `make ide`).";
          return;
        }}
        // The URL this page came from answers queries; the same URL over ws(s) subscriptions.
        var url = window.location.origin + window.location.pathname;
        var fetcher = GraphiQL.createFetcher({{
          url: url,
          subscriptionUrl: url.replace(/^http/, "ws"),
        }});
        function isPlaceholder(value) {{
          return typeof value === "string" && (value === config.placeholder ||
            value.indexOf("<") !== -1 || /^\\s*bearer\\s*$/i.test(value));
        }}
        // Until a token replaces the template, queries go out anonymous.
        function withoutPlaceholder(headers) {{
          if (!headers || typeof headers !== "object") return headers;
          var kept = {{}};
          Object.keys(headers).forEach(function (name) {{
            if (name.toLowerCase() === "authorization" && isPlaceholder(headers[name])) return;
            kept[name] = headers[name];
          }});
          return kept;
        }}
        function taskqlFetcher(params, options) {{
          var opts = Object.assign({{}}, options);
          opts.headers = withoutPlaceholder(opts.headers);
          return fetcher(params, opts);
        }}
        ReactDOM.createRoot(root).render(
          React.createElement(
            GraphiQL,
            {{
              fetcher: taskqlFetcher,
              defaultQuery: config.defaultQuery,
              defaultHeaders: config.defaultHeaders,
              defaultEditorToolsVisibility: "headers",
              storage: GraphiQL.createLocalStorage({{ namespace: "taskql" }}),
            }},
            React.createElement(GraphiQL.Logo, null, config.label)
          )
        );
      }})();
    </script>
  </body>
</html>
"""
