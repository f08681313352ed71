"""The dashboard: headline figures as charts with drill-down to the cases behind them; the deadline board."""
from __future__ import annotations

from flask import render_template

from api.console.blueprint import bp
from api.console.nav import NAV
from api.console.security import signed_in

_ROLES = next(item.roles for item in NAV if item.endpoint == "console.dashboard")


@bp.route("/dashboard")
@signed_in(*_ROLES)
def dashboard():
    return render_template("console/dashboard.html")
