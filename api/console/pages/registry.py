"""The grid registry (条例 §7–§11): the division tree, grids with their history and lineage, workers, the §10
check, the §11 notice to print; the spreadsheet import for the process administrator, with its problems
shown by row and column. Reads follow the API's rules (api/http/resources/registry.py): everyone signed
in reads divisions, grids and public notices; history, filings and the §10 check are for supervisors;
workers' full records for the administrator and the auditor; only the administrator imports."""
from __future__ import annotations

from datetime import date

from flask import abort, flash, redirect, render_template, request, url_for

from engine.access import scopes
from engine.errors import EngineError
from engine.registry.common import EMPLOYMENT, KINDS, MAX_UPLOAD_BYTES, RegistryImportError
from rules.calendar import BEIJING
from rules.grid_codes import GRID_TYPES

from api.console import i18n
from api.console.blueprint import bp
from api.console.pages.tasks import failed
from api.console.security import principal, signed_in
from api.http.context import current_clock, current_engine

ADMIN = scopes.PROCESS_ADMIN
SUPERVISORS = (scopes.PROCESS_ADMIN, scopes.AUDITOR, scopes.PLATFORM, scopes.GRID_AGENCY)
FULL_WORKER_RECORD = frozenset({scopes.PROCESS_ADMIN, scopes.AUDITOR})
KIND_NAMES = {"divisions": ("行政区划", "divisions"), "grids": ("网格", "grids"), "workers": ("网格员", "workers")}


def _rows(kind: str) -> list[dict]:
    columns, rows = current_engine().registry.export_rows(kind)
    return [dict(zip(columns, row)) for row in rows]


def _tree(divisions: list[dict], grids: list[dict]) -> list[dict]:
    """Counties → townships → communities, each with the number of grids inside."""
    nodes = {d["code"]: {**d, "children": [], "grids": 0} for d in divisions}
    roots = []
    for node in nodes.values():
        parent = nodes.get(node.get("parent_code") or "")
        (parent["children"] if parent else roots).append(node)
    for grid in grids:
        for code in (grid["code"][:6], grid["code"][:9], grid["code"][:12]):
            if code in nodes:
                nodes[code]["grids"] += 1
    for node in nodes.values():
        node["children"].sort(key=lambda n: n["code"])
    return sorted(roots, key=lambda n: n["code"])


@bp.route("/registry")
@signed_in()
def registry():
    division = (request.args.get("division") or "").strip()[:12]
    grids = _rows("grids")
    shown = [g for g in grids if g["code"].startswith(scopes.area_prefix(division))] if division.isdigit() else grids
    return render_template("console/registry.html", tree=_tree(_rows("divisions"), grids), grids=shown[:500],
                           total=len(shown), division=division, types=GRID_TYPES,
                           supervisor=principal().role in SUPERVISORS, admin=principal().role == ADMIN)


@bp.route("/registry/grids/<string(maxlength=40):code>")
@signed_in()
def grid(code):
    p = principal()
    engine = current_engine()
    current = engine.registry.grid(code)
    full = p.role in FULL_WORKER_RECORD
    workers = engine.registry.workers(code, current=not full)
    lineage = engine.registry.lineage(code) if p.role in SUPERVISORS else None
    return render_template("console/grid.html", grid=current, types=GRID_TYPES, workers=workers, full=full,
                           employment=EMPLOYMENT, lineage=lineage)


@bp.route("/registry/grids/<string(maxlength=40):code>/notice")
@signed_in()
def notice(code):
    """The public notice (条例 §11) as a page to print: nothing about a worker beyond name, role and phone."""
    return render_template("console/notice.html", notice=current_engine().registry.public_notice(code))


@bp.route("/registry/check")
@signed_in(*SUPERVISORS)
def check():
    on = _day(request.args.get("on")) or current_clock().now().astimezone(BEIJING).date()
    registry_ = current_engine().registry
    return render_template("console/check.html", on=on, missing=registry_.grids_without_full_time_worker(on),
                           households=registry_.household_warnings())


def _day(text):
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@bp.route("/registry/import", methods=["GET", "POST"])
@signed_in(ADMIN)
def registry_import():
    problems = result = None
    kind = request.form.get("kind") if request.method == "POST" else request.args.get("kind", "grids")
    if request.method == "POST":
        upload = request.files.get("file")
        name = ((upload.filename if upload else "") or "").replace("\\", "/").rsplit("/", 1)[-1]
        suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
        if kind not in KINDS:
            abort(400)
        elif upload is None or not name:
            flash(i18n.text("请选择文件", "Choose a file"), "error")
        elif suffix not in ("csv", "xlsx"):
            problems = [{"file": name, "row": None, "column": None,
                         "reason": i18n.text("仅接受 .csv 或 .xlsx 文件", "send a .csv or .xlsx file")}]
        else:
            content = upload.read(MAX_UPLOAD_BYTES + 1)
            registry_ = current_engine().registry
            load = registry_.import_xlsx if suffix == "xlsx" else registry_.import_csv
            try:
                result = load(kind, content, principal().user, file=name)
            except RegistryImportError as exc:
                problems = [{"file": p.file, "row": p.row, "column": p.column, "reason": p.reason}
                            for p in exc.problems]
            except EngineError as exc:
                failed(exc)
    status = 422 if problems else 200
    return render_template("console/import.html", kinds=KIND_NAMES, kind=kind if kind in KINDS else "grids",
                           problems=problems, result=result), status
