"""County grid matter lists (网格事项清单, 条例 §13) over HTTP: versions, the list in force on a day, its CSV,
and applications for a change, which start the list's approval case.

Lists are published (§13: "向社会公布"), so everyone signed in reads them. A change is applied for by a
department (有关部门: a responsible unit that is a linkage department, not a service company) or by the
county's own grid authority (a county-level grid agency of that county), which draws the list up "会同有关
部门" — §13's "由有关部门提出申请". Not the process administrator (a technical role with no standing under
§13), nor the platform account. Review and agreement are the case's tasks: the county grid agency and the
county government complete them at `/tasks/{id}/complete`.
"""
from __future__ import annotations

from datetime import date
from urllib.parse import quote

from flask import Response, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from engine.registry.common import MAX_UPLOAD_BYTES
from rules.calendar import BEIJING
from rules.catalog import shipped_catalog

from api.http import present
from api.http.auth import current_principal, requires
from api.http.context import current_clock, current_engine
from api.http.errors import ApiError
from api.http.schemas import CaseSchema
from api.http.resources.uploads import upload_limit

blp = Blueprint("matter_lists", __name__, url_prefix="/matter-lists",
                description="County grid matter lists (网格事项清单, 条例 §13): versions, in force, changes")
upload_limit(blp, MAX_UPLOAD_BYTES + 64 * 1024)
APPLICANTS = ("responsible_unit", "grid_agency")
MAX_CODES = 500   # a county's list holds a few dozen matters
Code = lambda **kw: fields.String(validate=validate.Length(1, 100), **kw)  # noqa: E731
COUNTY = "<string(maxlength=20):county>"


# ---- schemas -------------------------------------------------------------------------------------------

class MatterListVersionSchema(Schema):
    county_code = fields.String(required=True)
    version = fields.String(required=True)
    effective_from = fields.Date(required=True)
    sub_categories = fields.Integer(required=True, metadata={"description": "how many matters it admits"})
    temporary = fields.Integer(required=True, metadata={"description": "how many temporary admissions"})
    case_id = fields.Integer(allow_none=True, metadata={"description": "the approval case that filed it"})
    adopted_at = fields.AwareDateTime(required=True)
    adopted_by = fields.String(required=True)


class MatterListVersionsArgs(Schema):
    county = fields.String(validate=validate.Regexp(r"^[0-9]{6}$"),
                           metadata={"description": "only this county (6-digit code)"})


class MatterListVersionsSchema(Schema):
    items = fields.List(fields.Nested(MatterListVersionSchema), required=True)


class MatterListDayArgs(Schema):
    on = fields.Date(metadata={"description": "the day (default: today, Beijing time)"})


class ListedMatterSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    category = fields.String(required=True)


class ListedTemporarySchema(ListedMatterSchema):
    reason = fields.String(required=True)
    expires_on = fields.Date(required=True, metadata={"description": "first day it no longer counts"})
    in_force = fields.Boolean(required=True, metadata={"description": "whether it counts on the day asked"})


class MatterListInForceSchema(Schema):
    county_code = fields.String(required=True)
    version = fields.String(required=True)
    effective_from = fields.Date(required=True)
    on = fields.Date(required=True)
    matters = fields.List(fields.Nested(ListedMatterSchema), required=True)
    temporary = fields.List(fields.Nested(ListedTemporarySchema), required=True,
                            metadata={"description": "临时准入, with their expiry"})


class TemporaryAdmissionInSchema(Schema):
    sub_category = Code(required=True)
    expires_on = fields.Date(required=True)
    reason = fields.String(required=True, validate=validate.Length(1, 2000))


class ListChangeFieldsSchema(Schema):
    version = fields.String(required=True, validate=validate.Length(1, 40), metadata={"example": "2027.1"})
    effective_from = fields.Date(required=True, metadata={"description": "the day the new version takes effect"})
    reason = fields.String(required=True, validate=validate.Length(1, 2000),
                           metadata={"description": "why the change is needed"})


class ListChangeSchema(ListChangeFieldsSchema):
    add = fields.List(Code(), validate=validate.Length(max=MAX_CODES),
                      metadata={"description": "sub-category codes to admit"})
    remove = fields.List(Code(), validate=validate.Length(max=MAX_CODES))
    temporary = fields.List(fields.Nested(TemporaryAdmissionInSchema), validate=validate.Length(max=MAX_CODES),
                            metadata={"description": "temporary admissions (临时准入) ending on a day"})
    remove_temporary = fields.List(Code(), validate=validate.Length(max=MAX_CODES))


class ListChangeFileSchema(ListChangeFieldsSchema):
    file = fields.Raw(metadata={"type": "string", "format": "binary",
                                "description": "the whole new list as .csv or .xlsx, the columns `export` writes"})


# ---- helpers -------------------------------------------------------------------------------------------

def _today() -> date:
    return current_clock().now().astimezone(BEIJING).date()


def _matter(code: str) -> dict:
    sub = shipped_catalog().sub_categories.get(code)
    return {"code": code, "name": sub.name if sub else "", "category": sub.category if sub else ""}


def _invalid(location: str, messages) -> ApiError:
    return ApiError(422, "validation_failed", "请求内容未通过校验", "The request did not pass validation: see details",
                    {location: messages})


def _change_from_json() -> dict:
    body = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(body, dict):
        raise _invalid("json", {"_schema": ["send a JSON object"]})
    try:
        change = ListChangeSchema().load(body)
    except ValidationError as exc:
        raise _invalid("json", exc.messages) from None
    for admission in change.get("temporary", []):
        admission["expires_on"] = admission["expires_on"].isoformat()
    return change


def _change_from_file(county: str) -> dict:
    try:
        change = ListChangeFieldsSchema().load(request.form.to_dict())
    except ValidationError as exc:
        raise _invalid("form", exc.messages) from None
    storage = request.files.get("file")
    if storage is None:
        raise _invalid("files", {"file": ["send the new list as `file` (.csv or .xlsx)"]})
    name = (storage.filename or "").replace("\\", "/").rsplit("/", 1)[-1] or "list.csv"
    if not name.lower().endswith((".csv", ".xlsx")):
        raise _invalid("files", {"file": [f"{name!r} is neither .csv nor .xlsx"]})
    content = storage.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        raise ApiError(413, "payload_too_large", "文件过大", f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
    return {**change, **current_engine().matter_lists.change_from_file(county, name, content)}


# ---- views ---------------------------------------------------------------------------------------------

@blp.route("")
class Versions(MethodView):
    @requires()
    @blp.arguments(MatterListVersionsArgs, location="query", as_kwargs=True)
    @blp.response(200, MatterListVersionsSchema)
    def get(self, county=None):
        """Every adopted version (all counties, or one), with the approval case that filed it."""
        return {"items": current_engine().matter_lists.records(county)}


@blp.route(f"/{COUNTY}")
class InForce(MethodView):
    @requires()
    @blp.arguments(MatterListDayArgs, location="query", as_kwargs=True)
    @blp.response(200, MatterListInForceSchema)
    def get(self, county, on=None):
        """The county's list in force on a day: its matters and its temporary admissions with their expiry
        (404 when the county has filed none, or none was in force yet)."""
        day = on or _today()
        matter_list = current_engine().matter_lists.in_force(county, day)
        return {"county_code": matter_list.county_code, "version": matter_list.version,
                "effective_from": matter_list.effective_from, "on": day,
                "matters": [_matter(code) for code in matter_list.sub_categories],
                "temporary": [{**_matter(t.sub_category), "reason": t.reason, "expires_on": t.expires_on,
                               "in_force": t.counts_on(day)} for t in matter_list.temporary]}


@blp.route(f"/{COUNTY}/export")
class Export(MethodView):
    @requires()
    @blp.arguments(MatterListDayArgs, location="query", as_kwargs=True)
    @blp.doc(responses={"200": {"description": "the list as CSV (UTF-8 with BOM, opens in Excel); edit it and "
                                               "send it back as a change", "content": {"text/csv": {
                                                   "schema": {"type": "string"}}}}})
    def get(self, county, on=None):
        """The list in force as officials publish it: one row per matter, temporary ones marked."""
        data = current_engine().matter_lists.export_csv(county, on or _today())
        name = f"matter_list_{county}.csv"
        return Response(data, mimetype="text/csv", headers={
            "Content-Disposition": f"attachment; filename=\"{quote(name)}\"; filename*=UTF-8''{quote(name)}"})


@blp.route(f"/{COUNTY}/changes")
class Changes(MethodView):
    @requires(*APPLICANTS)
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": ListChangeSchema},
                                                        "multipart/form-data": {"schema": ListChangeFileSchema}}})
    @blp.response(201, CaseSchema)
    @blp.alt_response(422, description="Refused, nothing started: the application could never be adopted "
                                       "(every problem named; negative-list matters cite 条例 §14)")
    def post(self, county):
        """Apply for a change to the county's list: JSON with `add`/`remove`/`temporary`/`remove_temporary`,
        or multipart with the whole new list as `file` (the columns `export` writes) plus version,
        effective_from and reason. Starts its approval case (applied → reviewed → approved → filed): the
        county grid agency reviews, the county government agrees, and the version is then in force."""
        principal = current_principal()
        engine = current_engine()
        engine.acting.check_list_applicant(principal, county)
        if request.mimetype == "multipart/form-data":
            change = _change_from_file(county)
        elif request.mimetype in ("application/json", "") or not request.content_length:
            change = _change_from_json()
        else:
            raise ApiError(415, "unsupported_media_type", "请求内容须为 JSON 或上传文件",
                           f"send application/json or multipart/form-data, not {request.mimetype}")
        change["effective_from"] = change["effective_from"].isoformat()
        case_id = engine.acting.apply_for_list_change(principal, county, change, clock=current_clock())
        return present.case(principal, case_id), 201, {"Location": url_for("cases.Case", case_id=case_id)}
