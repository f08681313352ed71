"""Interactive API documentation that works without the internet: Swagger UI at /docs and ReDoc at /redoc.

Government networks are often cut off from the internet, so every asset comes from this server: Swagger UI
from the flask-swagger-ui package's bundled dist, ReDoc from `api/static/redoc` (the npm package's
standalone bundle, vendored with its licence). The pages carry a Content-Security-Policy that lets them
load nothing from elsewhere — ReDoc's footer logo, which points at a CDN, is simply not shown.
"""
from __future__ import annotations

import html
from pathlib import Path

import flask
import flask_swagger_ui
from flask import Response, abort, send_from_directory, url_for
from flask_smorest import Blueprint

blp = Blueprint("docs", __name__, description="Interactive documentation, served offline: /docs (Swagger UI), "
                                               "/redoc (ReDoc); this description is at /openapi.json")
SWAGGER_DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
STATIC = Path(__file__).resolve().parent.parent / "static"
SWAGGER_FILES = frozenset({"swagger-ui.css", "index.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
                           "favicon-16x16.png", "favicon-32x32.png", "LICENSE"})
OWN_FILES = {"swagger-init.js": (STATIC / "docs", "swagger-init.js"),
             "redoc.standalone.js": (STATIC / "redoc", "redoc.standalone.js"),
             "redoc-LICENSE": (STATIC / "redoc", "LICENSE"),
             "redoc-third-party-licenses.txt": (STATIC / "redoc", "redoc.standalone.js.LICENSE.txt")}
# 'unsafe-eval': ReDoc validates schemas with ajv, which compiles them; inline styles: both UIs set them.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'")

_SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <title>GridFlow API — Swagger UI</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}">
</head>
<body>
  <div id="swagger-ui" data-spec-url="{spec}"></div>
  <script src="{bundle}"></script>
  <script src="{preset}"></script>
  <script src="{init}"></script>
</body>
</html>
"""

_REDOC_PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>GridFlow API — ReDoc</title>
  <style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
  <redoc spec-url="{spec}"></redoc>
  <script src="{script}"></script>
</body>
</html>
"""


def _page(text: str) -> Response:
    response = Response(text, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    return response


def _asset(name: str) -> str:
    return url_for("docs.asset", name=name)


def swagger_ui():
    e = html.escape
    return _page(_SWAGGER_PAGE.format(css=e(_asset("swagger-ui.css")), icon=e(_asset("favicon-32x32.png")),
                                      spec=e(url_for("api-docs.openapi_json")),
                                      bundle=e(_asset("swagger-ui-bundle.js")),
                                      preset=e(_asset("swagger-ui-standalone-preset.js")),
                                      init=e(_asset("swagger-init.js"))))


def redoc():
    e = html.escape
    return _page(_REDOC_PAGE.format(spec=e(url_for("api-docs.openapi_json")),
                                    script=e(_asset("redoc.standalone.js"))))


def asset(name: str):
    if name in SWAGGER_FILES:
        return send_from_directory(SWAGGER_DIST, name, max_age=86400)
    if name in OWN_FILES:
        folder, file = OWN_FILES[name]
        return send_from_directory(folder, file, max_age=86400)
    abort(404)


# Added as plain Flask rules: these pages are not operations of the API, so they stay out of /openapi.json.
flask.Blueprint.add_url_rule(blp, "/docs", "swagger_ui", swagger_ui, strict_slashes=False)
flask.Blueprint.add_url_rule(blp, "/redoc", "redoc", redoc, strict_slashes=False)
flask.Blueprint.add_url_rule(blp, "/docs/assets/<string(maxlength=60):name>", "asset", asset)
