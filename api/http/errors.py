"""One error shape for every HTTP failure: {"error": {"code", "message": {"zh", "en"}, "details"}}.

Codes are stable (clients branch on them); messages are for people. Engine errors are mapped here and
nowhere else, and no failure — not even a defect — answers with a stack trace.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from engine.access.scopes import Forbidden, InvalidPrincipal
from engine.definitions.bundle import DefinitionRejected
from engine.store.db import DATABASE_REFUSED, DATABASE_UNAVAILABLE
from engine.errors import Conflict, EngineError, InvalidCommand, NotFound

log = logging.getLogger("gridflow.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, zh: str, en: str, details=None):
        super().__init__(en)
        self.status, self.code, self.zh, self.en, self.details = status, code, zh, en, details

    def response(self):
        body = {"error": {"code": self.code, "message": {"zh": self.zh, "en": self.en}, "details": self.details}}
        response = jsonify(body)
        if self.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="gridflow"'
        return response, self.status


# HTTP statuses Werkzeug or flask-smorest raise on their own, in the same shape.
_HTTP = {
    400: ("bad_request", "请求格式有误", "The request is malformed"),
    401: ("unauthorized", "需要有效的身份令牌", "A valid bearer token is required"),
    403: ("forbidden", "无权执行此操作", "Your role may not do this"),
    404: ("not_found", "未找到所请求的资源", "Nothing is found at this address"),
    405: ("method_not_allowed", "不支持该请求方法", "This method is not allowed here"),
    406: ("not_acceptable", "无法提供所要求的格式", "Only application/json is served here"),
    409: ("conflict", "与当前状态冲突", "The request conflicts with the current state"),
    411: ("length_required", "需要提供请求长度", "A Content-Length is required"),
    413: ("payload_too_large", "请求内容过大", "The request body is too large"),
    415: ("unsupported_media_type", "请求内容须为 JSON", "The request body must be JSON"),
    422: ("validation_failed", "请求内容未通过校验", "The request did not pass validation"),
    428: ("precondition_required", "缺少前置条件", "A precondition header is required"),
    429: ("too_many_requests", "请求过于频繁", "Too many requests"),
}

# Engine errors: (status, code, zh); the English message is the engine's own, which names the rule.
_ENGINE = [
    (NotFound, 404, "not_found", "未找到（或不在您的管辖范围内）"),
    (Conflict, 409, "conflict", "案件已被其他操作修改，本次操作未生效，请刷新后重试"),
    (Forbidden, 403, "forbidden", "您的角色无权执行此操作"),
    (InvalidPrincipal, 401, "invalid_token", "身份令牌内容不完整"),
    (InvalidCommand, 422, "invalid_command", "该操作不符合案件或任务的当前状态或规则"),
]


def from_http(exc: HTTPException) -> ApiError:
    status = exc.code or 500
    code, zh, en = _HTTP.get(status, ("http_error", "请求无法处理", exc.name or "The request cannot be handled"))
    details = None
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and "messages" in data:  # webargs/marshmallow: problems by location and field
        details = data["messages"]
        if status == 422:
            en = "The request did not pass validation: see details"
    elif status in (400, 413, 415) and exc.description:
        en = f"{en}: {exc.description}" if status != 400 else exc.description
    return ApiError(status, code, zh, en, details)


def from_engine(exc: EngineError) -> ApiError:
    for cls, status, code, zh in _ENGINE:
        if isinstance(exc, cls):
            # An error that says more precisely what happened than its class's message does carries its own.
            return ApiError(status, code, getattr(exc, "zh", None) or zh, str(exc))
    # Other engine errors (registry, calendar, ...) are refusals of the input as it stands.
    return ApiError(422, getattr(exc, "code", "engine_error"), "请求未被接受", str(exc))


def register(app: Flask) -> None:
    """Installed after flask-smorest's own handlers, so these win."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return exc.response()

    @app.errorhandler(EngineError)
    def _engine_error(exc: EngineError):
        return from_engine(exc).response()

    @app.errorhandler(DefinitionRejected)
    def _rejected(exc: DefinitionRejected):
        return ApiError(422, "definition_rejected", "流程定义未通过检查，未作任何更改",
                        "The definition was refused; nothing was changed",
                        [p.as_dict() for p in exc.problems]).response()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        response, status = from_http(exc).response()
        # Werkzeug's own headers (Allow on 405, WWW-Authenticate) survive the change of shape.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status

    def _database_unavailable(exc):
        # The server went away or refused the connection: a retry (with the same Idempotency-Key) is the cure,
        # and the pool has already dropped the broken connections.
        log.warning("database unavailable: %s", str(getattr(exc, "orig", exc)).strip().splitlines()[0:1])
        response, status = ApiError(503, "database_unavailable", "数据库暂时不可用，请稍后重试",
                                    "The database is unavailable for the moment; retry shortly").response()
        response.headers["Retry-After"] = "1"
        return response, status

    def _database_refused(exc):
        # A value the database cannot store (too long for its column, out of range): the request's fault,
        # refused whole (its transaction rolled back), not a defect of the server.
        log.warning("database refused a value: %s", str(getattr(exc, "orig", exc)).strip().splitlines()[0:1])
        return ApiError(422, "validation_failed", "请求中有数据超出允许的长度或范围，未作任何更改",
                        "a value in the request is too long or out of range for the database; nothing was "
                        "changed").response()

    for refused in DATABASE_REFUSED:
        app.register_error_handler(refused, _database_refused)

    for unavailable in DATABASE_UNAVAILABLE:
        app.register_error_handler(unavailable, _database_unavailable)

    @app.errorhandler(Exception)
    def _defect(exc: Exception):
        log.exception("unhandled error")
        return ApiError(500, "internal_error", "服务器内部错误，已记录，请稍后重试或联系管理员",
                        "Internal error; it was logged — try again later or contact the administrator").response()
