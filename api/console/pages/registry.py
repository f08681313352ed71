"""The registry: division tree, grids, workers, the §10 check, §11 notices; spreadsheet import for the
administrator with its problems by row and column."""
from __future__ import annotations

from flask import render_template

from api.console.blueprint import bp
from api.console.security import signed_in


@bp.route("/registry")
@signed_in()
def registry():
    return render_template("console/registry.html")
