"""Sign-in, sign-out and the language switch."""
from __future__ import annotations

from flask import g, redirect, render_template, request, session, url_for

from engine.access.accounts import SignInRefused

from api.console import i18n
from api.console.blueprint import bp
from api.console.security import safe_next, sign_in_session, sign_out_session, signed_in
from api.console.nav import visible
from api.http.context import current_clock, current_engine


def _address() -> str | None:
    return (request.remote_addr or "")[:64] or None


@bp.route("/")
@signed_in()
def home():
    links = visible()
    return redirect(links[0]["href"] if links else url_for("console.registry"))


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    target = request.values.get("next")
    if request.method == "GET":
        if g.get("console_account") is not None:
            return redirect(safe_next(target))
        return render_template("console/sign_in.html", next=target or "", error=None, name="")
    name = request.form.get("name", "")
    try:
        account = current_engine().accounts.sign_in(name, request.form.get("password", ""), address=_address(),
                                                    clock=current_clock())
    except SignInRefused as exc:
        if exc.locked_until is not None and exc.locked_until > current_clock().now():
            error = i18n.text(f"登录失败次数过多，账户已暂时锁定，请于 {i18n.when(exc.locked_until, seconds=True)} 后再试",
                              f"Too many failed attempts: the account is locked until "
                              f"{i18n.when(exc.locked_until, seconds=True)}")
        elif "disabled" in str(exc):
            error = i18n.text("该账户已停用，请联系管理员", "This account is disabled; ask an administrator")
        else:
            error = i18n.text("用户名或密码错误", "Wrong name or password")
        return render_template("console/sign_in.html", next=target or "", error=error, name=name[:200]), 401
    sign_in_session(account)
    return redirect(safe_next(target))


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    account = g.get("console_account")
    if account is not None:
        current_engine().accounts.sign_out(account.name, address=_address(), clock=current_clock())
    sign_out_session()
    return redirect(url_for("console.sign_in"))


@bp.route("/language", methods=["POST"])
def language():
    lang = request.form.get("lang")
    if lang in i18n.LANGUAGES:
        session["lang"] = lang
    return redirect(safe_next(request.form.get("next")))
