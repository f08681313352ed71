"""The web console for the people who run the grid: server-rendered pages (Jinja, autoescaped) on the
same Flask app and port as the API, signed in with a console account (engine/access/accounts.py).

Every page acts through `engine.acting` and reads through the engine's scoped views with the signed-in
account's `Principal`, so the console never shows or does more than the API would for that person.
May import `api.http` (its context, error texts and the masking `present`); `api.http` never imports it.

`register(app)` adds the console to an app made by `api.http.app.create_app` (`gridflow serve` and the
tests call it). Pages are blueprints in `BLUEPRINTS`; the nav is `nav.NAV`, a list others append to.
"""
from __future__ import annotations

from flask import Flask

from api.console import nav  # noqa: F401  (re-exported: extensions append to nav.NAV)
from api.console.blueprint import bp, template_globals
from api.console import security
from api.console.pages import cases, dashboard, registry, report, signin, tasks  # noqa: F401  (routes on bp)

BLUEPRINTS = [bp]

from api.console import admin, auditor  # noqa: E402  (the administrators' and auditors' pages)
BLUEPRINTS += [admin.bp, auditor.bp]


def register(app: Flask, *extra_blueprints) -> Flask:
    """Add the console (and any further console blueprints, e.g. the administrators' pages) to `app`."""
    security.configure(app)
    template_globals(app.jinja_env)
    for blueprint in [*BLUEPRINTS, *extra_blueprints]:
        app.register_blueprint(blueprint)
    return app
