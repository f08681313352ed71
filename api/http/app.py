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
from api.http.schemas import FIELD_NAME_PATTERN, MAX_ID, ErrorSchema, FieldValues

DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024  # 1 MiB: a matter, a form, a message; definitions ask for more
# Bodies the API reads: JSON everywhere, files (BPMN/DMN, spreadsheets) on the upload endpoints.
ACCEPTED_BODIES = ("application/json", "multipart/form-data", "application/octet-stream", "application/xml",
                   "text/xml", "text/csv")


class GridFlowApi(Api):
    ERROR_SCHEMA = ErrorSchema  # documents the shape errors.py answers with


class GridCodeConverter(BaseConverter):
    """A grid code in a path (12-digit division, type letter, 3-digit sequence: rules/grid_codes.py). Other
    text does not match the rule, so `/registry/grids/merge` is its own resource, not a grid."""

    regex = r"[0-9]{12}[A-Z][0-9]{3}"


class ProcessKeyConverter(BaseConverter):
    """A definition's key in a path (its process id). `check` is not a key but the resource that runs the deploy
    checks, so `/definitions/check` answers for POST alone and is not also read as a definition."""

    regex = r"(?!check(?![^/]))[^/]{1,200}"


def _field_values_property(self, field, **kwargs) -> dict:
    if isinstance(field, FieldValues):
        from engine.cases.commands import MAX_PAYLOAD_KEYS
        return {"propertyNames": {"pattern": FIELD_NAME_PATTERN}, "maxProperties": MAX_PAYLOAD_KEYS}
    return {}


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
                                    "(网格化服务管理). Authenticate with `Authorization: Bearer <JWT or API key>`. "
                                    "No text anywhere in a request (path, query, form, JSON) may hold a NUL "
                                    "character (U+0000): such a request is refused with 422."},
            "security": [{"bearerAuth": []}],
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                              "bearerFormat": "JWT or gfk_ API key"}}},
        },
    )
    app.config.update(config or {})
    app.json.ensure_ascii = False  # Chinese stays readable in responses
    app.json.sort_keys = False
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["grid"] = GridCodeConverter
    app.url_map.converters["process_key"] = ProcessKeyConverter
    app.url_map.strict_slashes = False

    if engine is None:
        engine = Engine(app.config["GRIDFLOW_DATABASE_URL"])
    app.extensions[EXTENSION] = engine
    app.extensions["gridflow.api_keys"] = _KeyCache()

    api = GridFlowApi(app)
    api.register_converter(IdConverter, lambda _: {"type": "integer", "minimum": 1, "maximum": MAX_ID})
    api.register_converter(GridCodeConverter, lambda _: {"type": "string", "pattern": f"^{GridCodeConverter.regex}$"})
    api.register_converter(ProcessKeyConverter, lambda _: {"type": "string", "maxLength": 200,
                                                           "pattern": r"^(?!check$)[^/]+$"})
    api.ma_plugin.converter.add_attribute_function(_field_values_property)
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

    @app.before_request
    def _no_nul():
        # PostgreSQL cannot store NUL in text, and no name, code or reason has one: refused here, for every
        # path, query, form and JSON string, before any of it reaches a handler or the database.
        where = _nul_in_request()
        if where is not None:
            raise ApiError(422, "validation_failed", "请求内容含有不允许的空字符（NUL）",
                           f"the request holds a NUL character (\\u0000) in {where}; no field may contain one",
                           {where: ["NUL characters are not allowed"]})

    idempotency.register(app)
    errors.register(app)
    return app


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _nul_in_request() -> str | None:
    """Where the request carries a NUL character (the path, a query or form parameter, a JSON string or an
    uploaded file's name), or None."""
    if "\x00" in request.path:
        return "path"
    for name, value in request.args.items(multi=True):
        if _has_nul(name) or _has_nul(value):
            return f"query.{name.replace(chr(0), '?')}"
    if request.method in ("POST", "PUT", "PATCH") and request.content_length:
        if request.mimetype == "multipart/form-data":
            for name, value in request.form.items(multi=True):
                if _has_nul(name) or _has_nul(value):
                    return f"form.{name.replace(chr(0), '?')}"
            for name, upload in request.files.items(multi=True):
                if _has_nul(name) or _has_nul(upload.filename or ""):
                    return "files"
        elif request.is_json:
            body = request.get_json(silent=True)
            if _has_nul(body):
                return "json"
    return None

