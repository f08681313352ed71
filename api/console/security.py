"""What keeps the console safe to open in a browser: the session cookie (signed, HttpOnly, SameSite=Lax,
Secure when the request came over HTTPS), a CSRF token on every form (Flask-WTF), a Content-Security-
Policy that loads nothing from another host and runs no inline script, and the signed-in account.

The session holds the account's name and its `session_version`; each request reads the account again, so
disabling it or resetting its password ends its sessions at once. An idle session ends after
`IDLE_MINUTES`; any session after `PERMANENT_SESSION_LIFETIME`.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from datetime import timedelta
from functools import wraps

from flask import Flask, abort, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from engine.access.accounts import AccountView

from api.http.context import current_engine

PREFIX = "/console"
IDLE_MINUTES = 120
SECRET_ENV = "GRIDFLOW_CONSOLE_SECRET"
# 'self' only: scripts and styles come from /console/static; bpmn-js and ECharts set inline style attributes
# on the elements they draw, which style-src-attr allows without allowing any <style> or script.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, marked Secure whenever the request came over HTTPS (directly or,
    with ProxyFix, through the proxy), so a deployment behind TLS needs no setting for it."""

    def get_cookie_secure(self, app):
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        try:
            return request.is_secure
        except RuntimeError:  # outside a request
            return False


def secret_key(config) -> str:
    """The key that signs sessions and CSRF tokens: GRIDFLOW_CONSOLE_SECRET, else one derived from the JWT
    key, else a random one for this process (`gridflow serve` sets one for all its workers)."""
    explicit = config.get(SECRET_ENV) or os.environ.get(SECRET_ENV)
    if explicit:
        return explicit
    jwt_key = config.get("GRIDFLOW_JWT_KEY")
    if jwt_key:
        return hmac.new(jwt_key.encode(), b"gridflow console sessions", hashlib.sha256).hexdigest()
    return secrets.token_urlsafe(32)


def configure(app: Flask) -> None:
    if not app.secret_key:
        app.secret_key = secret_key(app.config)
    if app.config.get("SESSION_COOKIE_NAME") in (None, "session"):
        app.config["SESSION_COOKIE_NAME"] = "gridflow_console"
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      PERMANENT_SESSION_LIFETIME=app.config.get("PERMANENT_SESSION_LIFETIME_CONSOLE",
                                                                timedelta(hours=12)),
                      WTF_CSRF_TIME_LIMIT=None)  # a token lives as long as its session
    app.session_interface = ConsoleSessionInterface()
    app.before_request(_before)
    app.after_request(_after)
    app.jinja_env.globals["csrf_token"] = generate_csrf


def _console_request() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def _before():
    if not _console_request():
        return None
    g.console_account = _signed_in_account()
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        try:
            validate_csrf(request.form.get("csrf_token"))
        except (ValidationError, CSRFError):
            abort(400, description="the form has expired or did not come from this console; reload it")
    return None


def _signed_in_account() -> AccountView | None:
    name, version = session.get("account"), session.get("version")
    if not name or not isinstance(version, int):
        return None
    last = session.get("seen", 0)
    now = int(time.time())
    if now - last > IDLE_MINUTES * 60:
        session.pop("account", None)
        return None
    account = current_engine().accounts.current(name, version)
    if account is None:
        session.pop("account", None)
        return None
    if now - last > 60:  # refresh the idle clock at most once a minute (it rewrites the cookie)
        session["seen"] = now
    return account


def sign_in_session(account: AccountView) -> None:
    lang = session.get("lang")
    session.clear()  # a fresh session (and CSRF token) on sign-in: no fixation
    session.permanent = True
    session.update(account=account.name, version=account.session_version, seen=int(time.time()))
    if lang:
        session["lang"] = lang


def sign_out_session() -> None:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def _after(response):
    if not _console_request():
        return response
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if not request.path.startswith(PREFIX + "/static/"):
        response.headers["Cache-Control"] = "no-store"  # pages hold personal data: never cached
    else:
        response.headers.setdefault("Cache-Control", "public, max-age=3600")
    return response


def principal():
    return g.console_account.principal


def signed_in(*roles: str):
    """The view needs a signed-in account (else the sign-in page, then back here), of one of `roles`."""
    allowed = frozenset(roles)

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            account = g.get("console_account")
            if account is None:
                target = request.full_path if request.method == "GET" else url_for("console.home")
                return redirect(url_for("console.sign_in", next=target.rstrip("?")))
            if allowed and account.role not in allowed:
                abort(403)
            return view(*args, **kwargs)
        wrapper.console_roles = allowed
        return wrapper
    return decorate


def safe_next(target: str | None) -> str:
    """Only a path inside the console: never another host (an open redirect)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.home")
