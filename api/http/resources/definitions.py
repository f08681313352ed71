"""Process definitions over HTTP: deploy by upload, list keys and versions, fetch a version's XML, and
compare two versions element by element. Deploying is the process administrator's; reading is for the
administrator, the auditor and the platform."""
from __future__ import annotations

import posixpath
from urllib.parse import quote

from flask import Response, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from engine.access import scopes
from engine.definitions.problems import DefinitionRejected
from engine.definitions.reading import MAX_FILE_BYTES
from engine.clock import SYSTEM_CLOCK

from api.http.auth import current_principal, requires
from api.http.context import current_engine
from api.http.errors import ApiError
from api.http.resources.uploads import upload_limit

blp = Blueprint("definitions", __name__, url_prefix="/definitions",
                description="Process definitions (流程定义): deploy, versions, XML, comparison")
READERS = (scopes.PROCESS_ADMIN, scopes.AUDITOR, scopes.PLATFORM)
SUFFIXES = (".bpmn", ".dmn")
MAX_FILES = 20
MAX_VERSION = 2**31 - 1   # the column is a 32-bit integer on PostgreSQL; beyond it nothing is found
# A process with its called processes and DMN tables, each file capped at MAX_FILE_BYTES by the deploy.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
upload_limit(blp, MAX_UPLOAD_BYTES + 64 * 1024)   # plus the multipart framing


# ---- schemas -------------------------------------------------------------------------------------------

class DeployFilesSchema(Schema):
    files = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}), required=True,
                        validate=validate.Length(min=1),
                        metadata={"description": f"one or more .bpmn/.dmn files (each ≤ {MAX_FILE_BYTES} bytes); "
                                                 "called processes and DMN tables may come along"})


class DeployOutcomeSchema(Schema):
    key = fields.String(required=True)
    version = fields.Integer(required=True)
    content_hash = fields.String(required=True)
    created = fields.Boolean(required=True)
    result = fields.String(required=True, metadata={"description": "deployed (a new version) or unchanged"})
    change = fields.String(metadata={"description": "new, changed, drawing (only the diagram changed: cases "
                                                    "behave the same) or unchanged"})
    kind = fields.String(metadata={"description": "process, or decision (a DMN file deployed on its own)"})


class DeployResultSchema(Schema):
    outcomes = fields.List(fields.Nested(DeployOutcomeSchema), required=True)


class ProblemSchema(Schema):
    file = fields.String(required=True)
    element_id = fields.String(allow_none=True, metadata={"description": "the BPMN/DMN id the problem is "
                                                                        "about; null for the whole file"})
    code = fields.String(required=True, metadata={"description": "stable name of the check, e.g. "
                                                                 "unbounded_loop, timer_value, lane_role"})
    message = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                          metadata={"description": "{zh, en}"})


class CheckResultSchema(Schema):
    ok = fields.Boolean(required=True)
    problems = fields.List(fields.Nested(ProblemSchema), required=True)


class DefinitionKeySchema(Schema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    latest_version = fields.Integer(required=True)
    kind = fields.String(metadata={"description": "process, or decision (a DMN file for processes to call)"})
    versions = fields.Integer(required=True)
    deployed_at = fields.AwareDateTime(required=True, metadata={"description": "of the latest version"})
    deployed_by = fields.String(required=True)


class DefinitionFileSchema(Schema):
    name = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "bpmn or dmn"})
    bytes = fields.Integer(required=True)
    url = fields.String(required=True)


class DefinitionVersionSchema(Schema):
    key = fields.String(required=True)
    version = fields.Integer(required=True)
    name = fields.String(required=True)
    content_hash = fields.String(required=True)
    deployed_at = fields.AwareDateTime(required=True)
    deployed_by = fields.String(required=True)
    files = fields.List(fields.Nested(DefinitionFileSchema))


class VersionListSchema(Schema):
    key = fields.String(required=True)
    versions = fields.List(fields.Nested(DefinitionVersionSchema), required=True)


class CompareArgs(Schema):
    from_version = fields.Integer(required=True, data_key="from", validate=validate.Range(1, MAX_VERSION))
    to_version = fields.Integer(required=True, data_key="to", validate=validate.Range(1, MAX_VERSION))


class ChangeSchema(Schema):
    aspect = fields.String(required=True, metadata={
        "description": "attribute, property, form, condition, timer, script, event, lane, extension, "
                       "documentation, cell, expression or type"})
    key = fields.String(required=True)
    before = fields.String(allow_none=True)
    after = fields.String(allow_none=True)


class ElementDiffSchema(Schema):
    id = fields.String(required=True)
    type = fields.String(required=True)
    name = fields.String(required=True)
    change = fields.String(required=True, metadata={"description": "added, removed or changed"})
    changes = fields.List(fields.Nested(ChangeSchema))


class FileDiffSchema(Schema):
    file = fields.String(required=True)
    kind = fields.String(required=True)
    change = fields.String(required=True, metadata={
        "description": "added, removed, changed, reformatted (text only, same meaning) or unchanged"})
    diagram_changed = fields.Boolean(required=True)
    elements = fields.List(fields.Nested(ElementDiffSchema))


class DiffSchema(Schema):
    key = fields.String(required=True)
    from_version = fields.Integer(required=True)
    to_version = fields.Integer(required=True)
    equivalent = fields.Boolean(required=True, metadata={"description": "no element differs"})
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    files = fields.List(fields.Nested(FileDiffSchema))


# ---- views ---------------------------------------------------------------------------------------------

@blp.route("")
class Definitions(MethodView):
    @requires(*READERS)
    @blp.response(200, DefinitionKeySchema(many=True))
    def get(self):
        """Every deployed key with its latest version."""
        latest: dict[str, dict] = {}
        for info in current_engine().definitions.list():
            entry = latest.setdefault(info.key, {"versions": 0})
            entry.update(key=info.key, name=info.name, latest_version=info.version, deployed_at=info.deployed_at,
                         deployed_by=info.deployed_by, versions=entry["versions"] + 1, kind=info.kind)
        return list(latest.values())

    @requires(scopes.PROCESS_ADMIN)
    @blp.arguments(DeployFilesSchema, location="files")
    @blp.response(201, DeployResultSchema, description="At least one new version was deployed")
    @blp.alt_response(200, schema=DeployResultSchema, description="Same content as deployed: nothing changed")
    @blp.alt_response(422, description="Refused: every problem with its file and element; nothing changed")
    def post(self, body):
        """Deploy: all or nothing. Same content again → 200 "unchanged"; changed content → 201 and the next
        version. Cases already running stay on the version they started with."""
        uploads = _uploads(body["files"])
        try:
            outcomes = current_engine().definitions.deploy(uploads, current_principal().user, SYSTEM_CLOCK)
        except DefinitionRejected as exc:
            raise ApiError(422, "definition_rejected", "流程定义未通过检查，未作任何更改",
                           f"the definition was refused, nothing was changed: {len(exc.problems)} problem(s)",
                           problem_details(exc.problems)) from None
        created = any(o.created for o in outcomes)
        body = {"outcomes": [{"key": o.key, "version": o.version, "content_hash": o.content_hash,
                              "created": o.created, "result": "deployed" if o.created else "unchanged",
                              "change": o.change, "kind": o.kind}
                             for o in outcomes]}
        return body, 201 if created else 200


def problem_details(problems) -> list[dict]:
    """A refused deploy's problems: file, element and code as data, the message in English and both languages."""
    return [{"file": p.file, "element": p.element_id or None, "element_id": p.element_id or None, "code": p.code,
             "message": p.en, "messages": p.messages()} for p in problems]


@blp.route("/check")
class DefinitionCheck(MethodView):
    @requires(scopes.PROCESS_ADMIN)
    @blp.arguments(DeployFilesSchema, location="files")
    @blp.response(200, CheckResultSchema)
    def post(self, body):
        """Check files as a deploy would, against what is deployed now, and store nothing: every problem
        with its file, element id and code, for marking it on the drawing."""
        problems = current_engine().definitions.check(_uploads(body["files"]))
        return {"ok": not problems, "problems": [p.as_dict() for p in problems]}


@blp.route("/<process_key:key>")
class DefinitionVersions(MethodView):
    @requires(*READERS)
    @blp.response(200, VersionListSchema)
    def get(self, key):
        """The versions of one key, oldest first."""
        store = current_engine().definitions
        versions = store.list(key)
        if not versions:
            store.find(key)   # raises the engine's NotFound, which says how to deploy
        return {"key": key, "versions": [_version(info) for info in versions]}


@blp.route("/<process_key:key>/versions/<int:version>")
class DefinitionVersion(MethodView):
    @requires(*READERS)
    @blp.response(200, DefinitionVersionSchema)
    def get(self, key, version):
        """One version with its files (its own, called processes and DMN tables, as deployed)."""
        info = _find(key, version)
        return _version(info, current_engine().definitions.files(info.id))


@blp.route("/<process_key:key>/versions/<int:version>/files/<path:filename>")
class DefinitionFile(MethodView):
    @requires(*READERS)
    @blp.doc(responses={"200": {"description": "the file as deployed",
                                "content": {"application/xml": {"schema": {"type": "string"}}}}})
    def get(self, key, version, filename):
        """One file of a version, as deployed (open it in a BPMN modeler)."""
        info = _find(key, version)
        files = current_engine().definitions.files(info.id)
        if filename not in files:
            raise ApiError(404, "not_found", "未找到该文件", f"{key} version {version} has no file {filename!r}; "
                                                          f"it has: {', '.join(sorted(files))}")
        return Response(files[filename], mimetype="application/xml",
                        headers={"Content-Disposition": f"inline; filename*=UTF-8''{quote(filename, safe='')}"})


@blp.route("/<process_key:key>/compare")
class DefinitionCompare(MethodView):
    @requires(*READERS)
    @blp.arguments(CompareArgs, location="query", as_kwargs=True)
    @blp.response(200, DiffSchema)
    def get(self, key, from_version, to_version):
        """What changed from one version to another, element by element: tasks, flows, events and DMN rules
        added, removed or changed, and in each which attributes, properties, form fields, conditions, timer
        expressions, scripts or lanes. Moving shapes only sets `diagram_changed`."""
        return current_engine().definitions.compare(key, from_version, to_version).as_dict()


# ---- helpers -------------------------------------------------------------------------------------------

def _uploads(files) -> dict[str, bytes]:
    """The uploaded files by name, refused as a whole (422) when one is not a definition file."""
    problems, uploads = [], {}
    if not files:
        problems.append({"file": None, "element": None, "message": "no files: send them in the `files` field"})
    if len(files) > MAX_FILES:
        problems.append({"file": None, "element": None, "message": f"{len(files)} files; at most {MAX_FILES}"})
    for storage in files[:MAX_FILES]:
        # Browsers on Windows may send the whole path; only the name is kept, it is never used as a path.
        name = posixpath.basename((storage.filename or "").replace("\\", "/")).strip()
        if not name:
            problems.append({"file": None, "element": None, "message": "a file part has no file name"})
            continue
        if len(name) > 200 or not name.isprintable():
            problems.append({"file": name[:200], "element": None, "message": "the file name is too long or has "
                                                                            "control characters"})
            continue
        if not name.lower().endswith(SUFFIXES):
            problems.append({"file": name, "element": None, "message": "not a definition: only .bpmn and .dmn "
                                                                      "files are deployed"})
            continue
        if name in uploads:
            problems.append({"file": name, "element": None, "message": "sent twice"})
            continue
        uploads[name] = storage.read(MAX_FILE_BYTES + 1)
    if problems:
        raise ApiError(422, "definition_rejected", "流程定义未通过检查，未作任何更改",
                       "the upload was refused, nothing was changed", problems)
    return uploads


def _find(key: str, version: int):
    if version < 1 or version > MAX_VERSION:
        raise ApiError(404, "not_found", "未找到该版本", f"no definition {key!r} version {version}")
    return current_engine().definitions.find(key, version)


def _version(info, files: dict[str, str] | None = None) -> dict:
    body = {"key": info.key, "version": info.version, "name": info.name, "content_hash": info.content_hash,
            "deployed_at": info.deployed_at, "deployed_by": info.deployed_by}
    if files is not None:
        body["files"] = [{"name": name, "kind": "dmn" if name.lower().endswith(".dmn") else "bpmn",
                          "bytes": len(text.encode()),
                          "url": url_for("definitions.DefinitionFile", key=info.key, version=info.version,
                                         filename=name)}
                         for name, text in sorted(files.items())]
    return body
