"""Report a matter (事件上报): the intake form with the catalog's categories and the grid preset."""
from __future__ import annotations

from flask import render_template

from engine.access import scopes

from api.console.blueprint import bp
from api.console.security import signed_in


@bp.route("/report", methods=["GET"])
@signed_in(scopes.GRID_WORKER, scopes.PLATFORM)
def report():
    return render_template("console/report.html")
