"""The console's main blueprint: its templates (templates/console/), its static files (/console/static/),
the hooks every console page shares (language, sign-in state, the nav) and its error pages."""
from __future__ import annotations

import logging

from flask import Blueprint, g, render_template, request
from werkzeug.exceptions import HTTPException

from engine.errors import EngineError
from engine.store.db import DATABASE_UNAVAILABLE

from api.console import i18n, nav
from api.http import errors as api_errors

log = logging.getLogger("gridflow.console")

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")


@bp.app_context_processor
def _globals():
    return {"lang": i18n.current(), "account": g.get("console_account")}


def template_globals(env) -> None:
    """Helpers every console template and macro may call (macros are imported without the context)."""
    env.globals.update(_=i18n.text, nav_items=nav.visible, when=i18n.when, status_name=i18n.status, field_name=i18n.field,
                       role_name=i18n.role)


def error_page(status: int, zh: str, en: str):
    return render_template("console/error.html", status=status, message_zh=zh, message_en=en), status


def register_error_pages(blueprint: Blueprint) -> None:
    """HTML error pages for a console blueprint's views (the API's JSON errors stay for the API)."""

    @blueprint.errorhandler(EngineError)
    def _engine(exc):
        err = api_errors.from_engine(exc)
        return error_page(err.status, err.zh, err.en)

    @blueprint.errorhandler(HTTPException)
    def _http(exc):
        err = api_errors.from_http(exc)
        return error_page(err.status, err.zh, err.en)

    @blueprint.errorhandler(Exception)
    def _defect(exc):
        if isinstance(exc, DATABASE_UNAVAILABLE):
            return error_page(503, "数据库暂时无法访问，请稍后重试", "The database is unavailable; try again shortly")
        log.exception("console defect on %s %s", request.method, request.path)
        return error_page(500, "服务器内部错误，已记录", "An internal error occurred and was logged")


register_error_pages(bp)
