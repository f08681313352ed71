"""The grid registry (条例 §7–§11) over HTTP.

Everyone signed in reads divisions, grids, units, public notices, the catalog, the negative list and
routing. Grid workers' names and phones are public (they are posted at the grid, §11); nothing else about
them is, so assignment dates, past assignments and who registered them are for the process administrator
and the auditor. Filings and the §10 check are for those who supervise the registry (administrator,
auditor, platform, grid agencies). Only the process administrator changes the registry.
"""
from __future__ import annotations

from datetime import date
from urllib.parse import quote

from flask import Response, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from engine.access import scopes
from engine.clock import SYSTEM_CLOCK
from engine.execution.functions import time_limits
from engine.registry.common import EMPLOYMENT, KINDS, MAX_UPLOAD_BYTES, RegistryImportError
from rules.calendar import BEIJING
from rules.grid_codes import GRID_TYPES, household_warning

from api.http.auth import current_principal, requires
from api.http.context import current_engine
from api.http.errors import ApiError
from api.http.resources.uploads import upload_limit

blp = Blueprint("registry", __name__, url_prefix="/registry",
                description="Grid registry (网格登记, 条例 §7–§11): divisions, grids, workers, units, filings")
ADMIN = scopes.PROCESS_ADMIN
SUPERVISORS = (scopes.PROCESS_ADMIN, scopes.AUDITOR, scopes.PLATFORM, scopes.GRID_AGENCY)
# Who sees a worker's whole record (dates, past assignments, who registered them), not just the notice.
FULL_WORKER_RECORD = frozenset({scopes.PROCESS_ADMIN, scopes.AUDITOR})
upload_limit(blp, MAX_UPLOAD_BYTES + 64 * 1024)

GridCodeText = lambda **kw: fields.String(validate=validate.Length(1, 40), **kw)  # noqa: E731
ReasonText = lambda **kw: fields.String(validate=validate.Length(max=2000), **kw)  # noqa: E731


# ---- schemas -------------------------------------------------------------------------------------------

class DivisionSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    level = fields.String(required=True, metadata={"description": "county, township or community"})
    parent_code = fields.String(allow_none=True)
    supervision_phone = fields.String(allow_none=True)


class GridSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    grid_type = fields.String(required=True, metadata={"description": "U urban, R rural, E exclusive"})
    grid_type_name = fields.String(required=True)
    households = fields.Integer(required=True)
    community_code = fields.String(required=True)
    boundary = fields.String(required=True)
    effective_from = fields.Date(required=True)
    effective_to = fields.Date(allow_none=True, metadata={"description": "null while in force"})
    household_warning = fields.String(allow_none=True, metadata={"description": "条例 §8: 300–500 households"})


class GridListArgs(Schema):
    division = fields.String(validate=validate.Regexp(r"^[0-9]{4,12}$"),
                             metadata={"description": "only grids inside this county/township/community code"})


class GridArgs(Schema):
    on = fields.Date(metadata={"description": "the grid as drawn on this day (default: now)"})


class WorkerArgs(Schema):
    past = fields.Boolean(load_default=False, metadata={
        "description": "include past assignments (process administrator and auditor only)"})


class WorkerSchema(Schema):
    name = fields.String(required=True)
    role = fields.String(required=True, metadata={"description": "专职网格员 or 兼职网格员"})
    employment = fields.String(required=True, metadata={"description": "full_time or part_time"})
    phone = fields.String(required=True)
    # The whole record, for the process administrator and the auditor only:
    id = fields.Integer()
    grid_code = fields.String()
    effective_from = fields.Date()
    effective_to = fields.Date(allow_none=True)
    created_at = fields.AwareDateTime()
    created_by = fields.String()


class WorkerListSchema(Schema):
    grid_code = fields.String(required=True)
    record = fields.String(required=True, metadata={"description": "public (as on the §11 notice) or full"})
    workers = fields.List(fields.Nested(WorkerSchema), required=True)


class UnitSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "linkage_department or service_unit (条例 §16)"})
    levels = fields.List(fields.String(), required=True)


class FilingSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    grid_code = fields.String(allow_none=True)
    payload = fields.Dict(required=True)
    created_at = fields.AwareDateTime(required=True)
    created_by = fields.String(required=True)


class FilingArgs(Schema):
    grid = GridCodeText(metadata={"description": "only filings naming this grid code"})


class LineageSchema(Schema):
    code = fields.String(required=True)
    rows = fields.List(fields.Nested(GridSchema), required=True)
    filings = fields.List(fields.Nested(FilingSchema), required=True)


class NoticeArgs(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv", "html")))


class NoticesArgs(Schema):
    division = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6,12}$"),
                             metadata={"description": "county, township or community code"})


class NoticeWorkerSchema(Schema):
    name = fields.String(required=True)
    role = fields.String(required=True)
    phone = fields.String(required=True)


class NoticeSchema(Schema):
    grid_code = fields.String(required=True)
    grid_name = fields.String(required=True)
    grid_type = fields.String(required=True)
    area = fields.String(required=True)
    workers = fields.List(fields.Nested(NoticeWorkerSchema), required=True)
    duties = fields.String(required=True)
    supervision_phone = fields.String(required=True)


class CheckArgs(Schema):
    on = fields.Date(metadata={"description": "the day to check (default today, Beijing)"})


class CheckSchema(Schema):
    on = fields.Date(required=True)
    without_full_time_worker = fields.List(fields.Dict(), required=True,
                                           metadata={"description": "条例 §10: code, name, community_code, "
                                                                    "part_time_workers"})
    household_warnings = fields.List(fields.Dict(), required=True)


class ExportArgs(Schema):
    format = fields.String(load_default="csv", validate=validate.OneOf(("csv", "xlsx")))


class ImportFileSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary",
                                               "description": "a .csv (UTF-8) or .xlsx sheet with the "
                                                              "columns `export` writes"})


class ImportResultSchema(Schema):
    kind = fields.String(required=True)
    added = fields.Integer(required=True)
    unchanged = fields.Integer(required=True, metadata={"description": "rows already registered as written"})


class RecodeSchema(Schema):
    new_code = GridCodeText(required=True)
    effective_from = fields.Date(metadata={"description": "default today (Beijing)"})
    reason = ReasonText(load_default="")


class RedrawSchema(Schema):
    households = fields.Integer(required=True, strict=True, validate=validate.Range(0, 1_000_000))
    boundary = fields.String(required=True, validate=validate.Length(1, 5000))
    name = fields.String(validate=validate.Length(1, 200))
    effective_from = fields.Date()
    reason = ReasonText(load_default="")


class MergeSchema(Schema):
    codes = fields.List(GridCodeText(), required=True, validate=validate.Length(2, 50))
    into_code = GridCodeText(required=True, metadata={"description": "one of `codes`, or a new code"})
    name = fields.String(validate=validate.Length(1, 200))
    households = fields.Integer(strict=True, validate=validate.Range(0, 1_000_000),
                                metadata={"description": "default: the sources' sum"})
    boundary = fields.String(required=True, validate=validate.Length(1, 5000))
    effective_from = fields.Date()
    reason = ReasonText(required=True)


class SplitPartSchema(Schema):
    code = GridCodeText(required=True)
    name = fields.String(required=True, validate=validate.Length(1, 200))
    households = fields.Integer(required=True, strict=True, validate=validate.Range(0, 1_000_000))
    boundary = fields.String(required=True, validate=validate.Length(1, 5000))


class SplitSchema(Schema):
    parts = fields.List(fields.Nested(SplitPartSchema), required=True, validate=validate.Length(2, 50))
    workers = fields.Dict(keys=fields.String(validate=validate.Length(1, 100)), values=GridCodeText(),
                          load_default=dict, metadata={"description": "worker name (or phone) → part code"})
    effective_from = fields.Date()
    reason = ReasonText(required=True)


class GridChangeSchema(Schema):
    kind = fields.String(required=True)
    retired = fields.List(fields.Nested(GridSchema), required=True)
    opened = fields.List(fields.Nested(GridSchema), required=True)
    workers_moved = fields.List(fields.Dict(), required=True)
    workers_unassigned = fields.List(fields.Dict(), required=True)
    warnings = fields.List(fields.String(), required=True)
    filing_id = fields.Integer(required=True)


# ---- registry: reading ---------------------------------------------------------------------------------

@blp.route("/divisions")
class Divisions(MethodView):
    @requires()
    @blp.response(200, DivisionSchema(many=True))
    def get(self):
        """Counties, townships (streets) and communities (villages), by code."""
        return _rows("divisions")


@blp.route("/grids")
class Grids(MethodView):
    @requires()
    @blp.arguments(GridListArgs, location="query", as_kwargs=True)
    @blp.response(200, GridSchema(many=True))
    def get(self, division=None):
        """The grids in force, by code; `division` narrows to one county, township or community."""
        grids = _rows("grids")
        if division:
            grids = [g for g in grids if g["code"].startswith(scopes.area_prefix(division))]
        return [_grid_fields(g) for g in grids]


@blp.route("/grids/<grid:code>")
class GridView(MethodView):
    @requires()
    @blp.arguments(GridArgs, location="query", as_kwargs=True)
    @blp.response(200, GridSchema)
    def get(self, code, on=None):
        """One grid as it is now, or as it was drawn on a past day (`on`)."""
        return _grid(current_engine().registry.grid(code, on))


@blp.route("/grids/<grid:code>/history")
class GridHistory(MethodView):
    @requires(*SUPERVISORS)
    @blp.response(200, LineageSchema)
    def get(self, code):
        """Every row the area went through (recodes, redraws, merges, splits) with the filings (备案) that
        record each change (条例 §7)."""
        lineage = current_engine().registry.lineage(code)
        return {"code": lineage.code, "rows": [_grid(g) for g in lineage.rows],
                "filings": [_filing(f) for f in lineage.changes]}


@blp.route("/grids/<grid:code>/workers")
class GridWorkers(MethodView):
    @requires()
    @blp.arguments(WorkerArgs, location="query", as_kwargs=True)
    @blp.response(200, WorkerListSchema)
    def get(self, code, past):
        """The grid's workers. Name, role and phone are public (the §11 notice); the rest of the record is
        for the process administrator and the auditor."""
        full = current_principal().role in FULL_WORKER_RECORD
        if past and not full:
            raise ApiError(403, "forbidden", "您的角色无权查看网格员的历史记录",
                           "past assignments are for the process administrator and the auditor")
        registry = current_engine().registry
        workers = registry.workers(code, current=not past)
        if not workers and not past:
            registry.grid(code)   # no such grid → 404; a grid with no worker yet → empty list
        return {"grid_code": code, "record": "full" if full else "public",
                "workers": [_worker(w, full) for w in workers]}


@blp.route("/grids/<grid:code>/notice")
class GridNotice(MethodView):
    @requires()
    @blp.arguments(NoticeArgs, location="query", as_kwargs=True)
    @blp.response(200, NoticeSchema)
    @blp.doc(responses={"200": {"content": {"application/json": {"schema": NoticeSchema},
                                            "text/csv": {"schema": {"type": "string"}},
                                            "text/html": {"schema": {"type": "string"}}}}})
    def get(self, code, format):
        """The public notice posted at the grid (条例 §11): name, area, workers' names and phones, duties and
        a supervision phone — nothing else. `format=html` is a printable A4 page, `csv` a sheet."""
        registry = current_engine().registry
        if format == "html":
            return Response(registry.public_notice_html(code), mimetype="text/html")
        if format == "csv":
            return _download(registry.public_notice_csv([code]), f"notice-{code}.csv", "text/csv")
        return registry.public_notice(code)


@blp.route("/notices")
class Notices(MethodView):
    @requires()
    @blp.arguments(NoticesArgs, location="query", as_kwargs=True)
    @blp.doc(responses={"200": {"description": "one row per grid and worker",
                                "content": {"text/csv": {"schema": {"type": "string"}}}}})
    def get(self, division):
        """The public notices of every grid in force in a county, township or community, as one CSV."""
        codes = [g["code"] for g in _rows("grids") if g["code"].startswith(scopes.area_prefix(division))]
        if not codes:
            raise ApiError(404, "not_found", "该区划内没有网格", f"no grid in force inside {division}")
        return _download(current_engine().registry.public_notice_csv(codes), f"notices-{division}.csv", "text/csv")


@blp.route("/units")
class Units(MethodView):
    @requires()
    @blp.response(200, UnitSchema(many=True))
    def get(self):
        """Responsible units: linkage departments and service units, with the agency levels that dispatch
        to them (条例 §16)."""
        return [{"code": u.code, "name": u.name, "kind": u.kind, "levels": list(u.levels)}
                for u in current_engine().registry.units()]


@blp.route("/check")
class Check(MethodView):
    @requires(*SUPERVISORS)
    @blp.arguments(CheckArgs, location="query", as_kwargs=True)
    @blp.response(200, CheckSchema)
    def get(self, on=None):
        """条例 §10: grids without a full-time worker on a day; and urban grids outside 300–500 households."""
        on = on or _today()
        registry = current_engine().registry
        return {"on": on, "without_full_time_worker": registry.grids_without_full_time_worker(on),
                "household_warnings": registry.household_warnings()}


@blp.route("/filings")
class Filings(MethodView):
    @requires(*SUPERVISORS)
    @blp.arguments(FilingArgs, location="query", as_kwargs=True)
    @blp.response(200, FilingSchema(many=True))
    def get(self, grid=None):
        """Filings (备案) sent to the city for every grid drawn or changed, oldest first."""
        return [_filing(f) for f in current_engine().registry.filings(grid)]


@blp.route("/export/<string(maxlength=20):kind>")
class Export(MethodView):
    @requires(scopes.PROCESS_ADMIN, scopes.AUDITOR)
    @blp.arguments(ExportArgs, location="query", as_kwargs=True)
    @blp.doc(responses={"200": {"description": "the sheet `import` reads back",
                                "content": {"text/csv": {"schema": {"type": "string"}},
                                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
                                                {"schema": {"type": "string", "format": "binary"}}}}})
    def get(self, kind, format):
        """The current divisions, grids or workers as CSV (UTF-8 with BOM, opens in Excel) or XLSX."""
        _check_kind(kind)
        registry = current_engine().registry
        if format == "xlsx":
            return _download(registry.export_xlsx(kind), f"{kind}.xlsx",
                             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        return _download(registry.export_csv(kind), f"{kind}.csv", "text/csv")


# ---- registry: changing --------------------------------------------------------------------------------

@blp.route("/import/<string(maxlength=20):kind>")
class Import(MethodView):
    @requires(ADMIN)
    @blp.arguments(ImportFileSchema, location="files")
    @blp.response(201, ImportResultSchema, description="Rows were added")
    @blp.alt_response(200, schema=ImportResultSchema, description="Every row was already registered")
    @blp.alt_response(422, description="Refused, nothing changed: every problem with its row and column")
    def post(self, body, kind):
        """Import a sheet of divisions, grids or workers: all or nothing. Problems come back by spreadsheet
        row (header = row 1) and column, all at once."""
        _check_kind(kind)
        storage = body["file"]
        name = (storage.filename or "").replace("\\", "/").rsplit("/", 1)[-1] or f"{kind}.csv"
        suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
        if suffix not in ("csv", "xlsx"):
            raise ApiError(422, "registry_import_refused", "仅接受 .csv 或 .xlsx 文件",
                           f"{name!r} is neither .csv nor .xlsx", [{"file": name, "row": None, "column": None,
                                                                    "reason": "send a .csv or .xlsx file"}])
        registry = current_engine().registry
        load = registry.import_xlsx if suffix == "xlsx" else registry.import_csv
        try:
            result = load(kind, storage.read(MAX_UPLOAD_BYTES + 1), current_principal().user, file=name)
        except RegistryImportError as exc:
            raise ApiError(422, "registry_import_refused", "导入未通过检查，未作任何更改",
                           f"the import of {kind} was refused, nothing was changed: {len(exc.problems)} problem(s)",
                           [{"file": p.file, "row": p.row, "column": p.column, "reason": p.reason}
                            for p in exc.problems]) from None
        return ({"kind": result.kind, "added": result.added, "unchanged": result.unchanged},
                201 if result.added else 200)


@blp.route("/grids/<grid:code>/recode")
class Recode(MethodView):
    @requires(ADMIN)
    @blp.arguments(RecodeSchema)
    @blp.response(201, GridSchema)
    def post(self, body, code):
        """Give the grid a new code from a day; its workers follow, the old row stays as history and the
        change is filed (条例 §7)."""
        grid = current_engine().registry.recode_grid(code, body["new_code"], current_principal().user,
                                                     body.get("effective_from") or _today(), reason=body["reason"])
        return _grid(grid), 201, _location(grid.code)


@blp.route("/grids/<grid:code>/redraw")
class Redraw(MethodView):
    @requires(ADMIN)
    @blp.arguments(RedrawSchema)
    @blp.response(201, GridSchema)
    def post(self, body, code):
        """The grid's area changes from a day under the same code (调整); filed with the city."""
        grid = current_engine().registry.redraw_grid(
            code, body["households"], body["boundary"], current_principal().user,
            body.get("effective_from") or _today(), name=body.get("name"), reason=body["reason"])
        return _grid(grid), 201, _location(grid.code)


@blp.route("/grids/merge")
class Merge(MethodView):
    @requires(ADMIN)
    @blp.arguments(MergeSchema)
    @blp.response(201, GridChangeSchema)
    def post(self, body):
        """Join neighbouring grids of one community; the merged grid keeps one of their codes or takes a new
        one, the others' workers move to it, one filing names every source."""
        change = current_engine().registry.merge_grids(
            body["codes"], body["into_code"], body.get("name"), body.get("households"), body["boundary"],
            current_principal().user, body.get("effective_from") or _today(), body["reason"])
        return _change(change), 201


@blp.route("/grids/<grid:code>/split")
class Split(MethodView):
    @requires(ADMIN)
    @blp.arguments(SplitSchema)
    @blp.response(201, GridChangeSchema)
    def post(self, body, code):
        """Divide a grid into two or more of its community; `workers` says who serves which part."""
        change = current_engine().registry.split_grid(
            code, body["parts"], current_principal().user, body.get("effective_from") or _today(),
            body["reason"], workers=body["workers"])
        return _change(change), 201


# ---- helpers -------------------------------------------------------------------------------------------

def _today():
    return SYSTEM_CLOCK.now().astimezone(BEIJING).date()


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ApiError(404, "not_found", "没有该类登记数据", f"unknown registry kind {kind!r}; known: {', '.join(KINDS)}")


def _rows(kind: str) -> list[dict]:
    columns, rows = current_engine().registry.export_rows(kind)
    return [dict(zip(columns, row)) for row in rows]


def _grid_fields(row: dict) -> dict:
    """A grid from its export row (the current rows: no end date)."""
    return {**row, "grid_type_name": GRID_TYPES[row["grid_type"]], "effective_to": None,
            "effective_from": date.fromisoformat(row["effective_from"])
            if isinstance(row["effective_from"], str) else row["effective_from"],
            "household_warning": household_warning(row["grid_type"], row["households"])}


def _grid(grid) -> dict:
    return {"code": grid.code, "name": grid.name, "grid_type": grid.grid_type,
            "grid_type_name": GRID_TYPES[grid.grid_type], "households": grid.households,
            "community_code": grid.community_code, "boundary": grid.boundary,
            "effective_from": grid.effective_from, "effective_to": grid.effective_to,
            "household_warning": household_warning(grid.grid_type, grid.households)}


def _worker(worker, full: bool) -> dict:
    public = {"name": worker.name, "role": EMPLOYMENT[worker.employment], "employment": worker.employment,
              "phone": worker.phone}
    if not full:
        return public
    return {**public, "id": worker.id, "grid_code": worker.grid_code, "effective_from": worker.effective_from,
            "effective_to": worker.effective_to, "created_at": worker.created_at, "created_by": worker.created_by}


def _filing(filing) -> dict:
    return {"id": filing.id, "kind": filing.kind, "grid_code": filing.grid_code, "payload": filing.payload,
            "created_at": filing.created_at, "created_by": filing.created_by}


def _change(change) -> dict:
    return {"kind": change.kind, "retired": [_grid(g) for g in change.retired],
            "opened": [_grid(g) for g in change.opened], "workers_moved": change.workers_moved,
            "workers_unassigned": change.workers_unassigned, "warnings": change.warnings,
            "filing_id": change.filing_id}


def _location(code: str) -> dict:
    return {"Location": url_for("registry.GridView", code=code)}


def _download(data: bytes, filename: str, mimetype: str) -> Response:
    return Response(data, mimetype=mimetype,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}"})
