"""The HTTP API: a Flask app with flask-smorest (OpenAPI 3 at /openapi.json), bearer-token auth, one
error shape, idempotent POSTs and Prometheus metrics. `gridflow serve` runs it under gunicorn."""
from __future__ import annotations

import os

from flask import Flask, request
from flask_smorest import Api
from werkzeug.routing import BaseConverter, ValidationError

from engine.service import Engine

from api.http import errors
from api.http import idempotency
from api.http import metrics
from api.http.auth import _KeyCache
from api.http.context import EXTENSION, current_engine  # noqa: F401  (current_engine: for resources)
from api.http.errors import ApiError
from api.http.schemas import MAX_ID, ErrorSchema

DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024  # 1 MiB: a matter, a form, a message; definitions ask for more
# Bodies the API reads: JSON everywhere, files (BPMN/DMN, spreadsheets) on the upload endpoints.
ACCEPTED_BODIES = ("application/json", "multipart/form-data", "application/octet-stream", "application/xml",
                   "text/xml", "text/csv")


class GridFlowApi(Api):
    ERROR_SCHEMA = ErrorSchema  # documents the shape errors.py answers with


class IdConverter(BaseConverter):
    """A row id: digits within the databases' integer range (a larger number is simply not found)."""

    regex = r"[1-9][0-9]{0,9}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValidationError()  # the rule does not match: a plain 404 (this runs before error handlers)
        return number

    def to_url(self, value) -> str:
        return str(int(value))


def create_app(engine: Engine | None = None, config: dict | None = None) -> Flask:
    app = Flask("gridflow")
    app.config.update(
        GRIDFLOW_DATABASE_URL=os.environ.get("GRIDFLOW_DATABASE_URL"),
        GRIDFLOW_JWT_KEY=os.environ.get("GRIDFLOW_JWT_KEY"),
        MAX_CONTENT_LENGTH=DEFAULT_MAX_CONTENT_LENGTH,
        API_TITLE="GridFlow",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
        API_SPEC_OPTIONS={
            "info": {"description": "The workflow engine under the grid-based social governance platform "
                                    "(网格化服务管理). Authenticate with `Authorization: Bearer <JWT or API key>`."},
            "security": [{"bearerAuth": []}],
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                              "bearerFormat": "JWT or gfk_ API key"}}},
        },
    )
    app.config.update(config or {})
    app.json.ensure_ascii = False  # Chinese stays readable in responses
    app.json.sort_keys = False
    app.url_map.converters["id"] = IdConverter
    app.url_map.strict_slashes = False

    if engine is None:
        engine = Engine(app.config["GRIDFLOW_DATABASE_URL"])
    app.extensions[EXTENSION] = engine
    app.extensions["gridflow.api_keys"] = _KeyCache()

    api = GridFlowApi(app)
    api.register_converter(IdConverter, lambda _: {"type": "integer", "minimum": 1, "maximum": MAX_ID})
    from api.http.resources import BLUEPRINTS
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    app.extensions["gridflow.api"] = api

    metrics.register(app)  # first, so refused and replayed requests are timed too

    @app.before_request
    def _body_type():
        if request.method in ("POST", "PUT", "PATCH") and request.content_length:
            if request.path.startswith("/console/"):
                return  # the web console's pages post HTML forms; it checks them itself (CSRF included)
            if request.mimetype not in ACCEPTED_BODIES:
                raise ApiError(415, "unsupported_media_type", "请求内容须为 JSON",
                               f"send the body as application/json, not {request.mimetype or 'untyped'}")

    idempotency.register(app)
    errors.register(app)
    return app

