"""The process administrator's pages of the console: the definitions with their versions and the cases
on each, the editor (bpmn-js Modeler with GridFlow's properties form), the deploy checks shown on the
drawing, deploy, and two versions compared on the diagram.

Everything acts as the signed-in account's `Principal`: editing, checking and deploying are the process
administrator's (as over the API); reading definitions and comparing versions is also the auditor's and
the platform's, who need to see why two cases behaved differently — but they get no editor.
"""
from __future__ import annotations

import posixpath

from flask import Blueprint, abort, jsonify, render_template, request, url_for

from engine.access import scopes
from engine.definitions import bundle as bundles
from engine.definitions.reading import MAX_FILE_BYTES, ROLES
from engine.definitions.problems import DefinitionRejected
from rules import list_change, status as statuses

from api.console.blueprint import register_error_pages
from api.console.nav import NAV, NavItem
from api.console.security import principal, signed_in
from api.http.context import current_clock, current_engine

bp = Blueprint("console_admin", __name__, url_prefix="/console/admin", template_folder="templates",
               static_folder="static/admin", static_url_path="/static")
register_error_pages(bp)

ADMIN = scopes.PROCESS_ADMIN
READERS = (scopes.PROCESS_ADMIN, scopes.AUDITOR, scopes.PLATFORM)
SUFFIXES = (".bpmn", ".dmn")
MAX_FILES = 20
MAX_VERSION = 2**31 - 1

NAV.append(NavItem("console_admin.definitions", "流程定义", "Definitions", READERS))


# ---- reading ---------------------------------------------------------------------------------------

def _find(key: str, version: int):
    if not 1 <= version <= MAX_VERSION:
        abort(404)
    return current_engine().definitions.find(key, version)


def main_file(files: dict[str, str], key: str) -> str:
    """The file that holds the process `key` (a bundle also carries the processes and tables it calls)."""
    for name, text in files.items():
        if name.lower().endswith(".bpmn"):
            try:
                if key in bundles.executable_process_ids(bundles.read_xml(name, text.encode())):
                    return name
            except DefinitionRejected:
                continue
    return sorted(files)[0]


@bp.route("/definitions")
@signed_in(*READERS)
def definitions():
    engine = current_engine()
    counts = engine.definitions.case_counts()
    keys: dict[str, dict] = {}
    for info in engine.definitions.list():
        entry = keys.setdefault(info.key, {"key": info.key, "name": info.name, "kind": getattr(info, "kind", "process"),
                                           "versions": []})
        running, total = counts.get(info.id, (0, 0))
        entry["name"] = info.name
        entry["versions"].append({"info": info, "running": running, "total": total})
    for entry in keys.values():
        entry["versions"].reverse()   # newest first
    return render_template("admin/definitions.html", keys=list(keys.values()), may_edit=principal().role == ADMIN)


@bp.route("/definitions/<string(maxlength=200):key>/versions/<int:version>/files.json")
@signed_in(*READERS)
def files_json(key, version):
    info = _find(key, version)
    files = current_engine().definitions.files(info.id)
    return jsonify({"key": info.key, "version": info.version, "files": files, "main": main_file(files, info.key)})


# ---- editing, checking, deploying ------------------------------------------------------------------

def _editor_config(key: str | None, version: int | None) -> dict:
    return {"key": key, "version": version,
            "files_url": url_for(".files_json", key=key, version=version) if key else None,
            "check_url": url_for(".check"), "deploy_url": url_for(".deploy"),
            "moddle_url": url_for(".static", filename="spiffworkflow-moddle.json"), "roles": list(ROLES)}


@bp.route("/definitions/<string(maxlength=200):key>/versions/<int:version>/edit")
@signed_in(ADMIN)
def edit(key, version):
    info = _find(key, version)
    return render_template("admin/editor.html", info=info, config=_editor_config(info.key, info.version),
                           statuses=_statuses())


@bp.route("/editor")
@signed_in(ADMIN)
def editor():
    """The editor with no definition loaded: open a file drawn in another modeler; it is checked at once."""
    return render_template("admin/editor.html", info=None, config=_editor_config(None, None), statuses=_statuses())


def _statuses() -> list[str]:
    return list(dict.fromkeys([*statuses.STATUSES, *list_change.STATUSES]))


def _problem(file, code: str, zh: str, en: str) -> dict:
    return {"file": file, "element_id": None, "code": code, "message": {"zh": zh, "en": en}}


def _uploads() -> tuple[dict[str, bytes], list[dict]]:
    """The definition files of a check or deploy request (multipart `files`), and what is wrong with them."""
    parts = request.files.getlist("files")
    problems, uploads = [], {}
    if not parts:
        problems.append(_problem(None, "no_files", "没有文件", "no files were sent"))
    if len(parts) > MAX_FILES:
        problems.append(_problem(None, "too_many_files", f"文件过多（最多 {MAX_FILES} 个）",
                                 f"{len(parts)} files; at most {MAX_FILES}"))
    for part in parts[:MAX_FILES]:
        name = posixpath.basename((part.filename or "").replace("\\", "/")).strip()
        if not name or len(name) > 200 or not name.isprintable():
            problems.append(_problem(name[:200] or None, "file_name", "文件名缺失、过长或含控制字符",
                                     "a file name is missing, too long or has control characters"))
            continue
        if not name.lower().endswith(SUFFIXES):
            problems.append(_problem(name, "file_type", "只能部署 .bpmn 和 .dmn 文件",
                                     "only .bpmn and .dmn files are definitions"))
            continue
        data = part.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            problems.append(_problem(name, "file_size", f"文件超过 {MAX_FILE_BYTES} 字节",
                                     f"the file is larger than {MAX_FILE_BYTES} bytes"))
            continue
        if name in uploads:
            problems.append(_problem(name, "file_twice", "同一文件发送了两次", "the file was sent twice"))
            continue
        uploads[name] = data
    return uploads, problems


@bp.route("/check", methods=["POST"])
@signed_in(ADMIN)
def check():
    """The deploy checks on the files sent, against what is deployed now; nothing is stored."""
    uploads, problems = _uploads()
    if not problems:
        problems = [p.as_dict() for p in current_engine().definitions.check(uploads)]
    return jsonify({"ok": not problems, "problems": problems})


@bp.route("/deploy", methods=["POST"])
@signed_in(ADMIN)
def deploy():
    uploads, problems = _uploads()
    if problems:
        return jsonify({"ok": False, "problems": problems}), 422
    try:
        outcomes = current_engine().definitions.deploy(uploads, principal().user, current_clock())
    except DefinitionRejected as exc:
        return jsonify({"ok": False, "problems": [p.as_dict() for p in exc.problems]}), 422
    body = []
    for o in outcomes:
        compare = url_for(".compare", key=o.key, **{"from": o.version - 1, "to": o.version}) \
            if o.created and o.version > 1 else None
        body.append({"key": o.key, "version": o.version, "created": o.created, "change": getattr(o, "change", ""),
                     "compare_url": compare})
    return jsonify({"ok": True, "outcomes": body}), 201 if any(o.created for o in outcomes) else 200


# ---- two versions on the diagram -------------------------------------------------------------------

def _value(text: str | None) -> str:
    return "—" if text is None else text


@bp.route("/definitions/<string(maxlength=200):key>/compare")
@signed_in(*READERS)
def compare(key):
    try:
        old = int(request.args.get("from", ""))
        new = int(request.args.get("to", ""))
    except ValueError:
        abort(400, description="from and to must be version numbers")
    store = current_engine().definitions
    old_info, new_info = _find(key, old), _find(key, new)
    diff = store.compare(key, old, new)
    main = main_file(store.files(new_info.id), key)
    main_diff = next((f for f in diff.files if f.file == main), None)
    elements = [{"id": e.id, "change": e.change, "count": len(e.changes),
                 "summary": "; ".join(f"{c.aspect} {c.key}" for c in e.changes)}
                for e in (main_diff.elements if main_diff else ())]
    config = {"file": main, "elements": elements,
              "from_url": url_for(".files_json", key=key, version=old_info.version),
              "to_url": url_for(".files_json", key=key, version=new_info.version)}
    # No element means anything different, yet the drawing moved: cases behave the same on both.
    only_drawing = all(not f.elements and f.change not in ("added", "removed") for f in diff.files) and \
        any(f.diagram_changed for f in diff.files)
    return render_template("admin/compare.html", key=key, old=old_info, new=new_info, diff=diff, config=config,
                           only_drawing=only_drawing, value=_value, main=main,
                           versions=[i.version for i in store.list(key)])


# ---- moving running cases to another version -------------------------------------------------------

def _versions_arg(key: str) -> tuple[int, int]:
    try:
        old, new = int(request.values.get("from", "")), int(request.values.get("to", ""))
    except ValueError:
        abort(400, description="from and to must be version numbers")
    _find(key, old), _find(key, new)
    return old, new


@bp.route("/definitions/<string(maxlength=200):key>/migrate", methods=["GET", "POST"])
@signed_in(ADMIN)
def migrate(key):
    """GET: the dry run — every running case of the older version with its verdict (migratable, or why
    not). POST: the run — each migratable case moved in its own command, with its outcome."""
    old, new = _versions_arg(key)
    engine = current_engine()
    if request.method == "POST":
        plan = engine.migrations.run(key, old, new, actor=principal().user, role=principal().role,
                                     clock=current_clock())
    else:
        plan = engine.migrations.plan(key, old, new, clock=current_clock())
    return render_template("admin/migrate.html", key=key, old=old, new=new, plan=plan, counts=plan.counts(),
                           versions=[i.version for i in engine.definitions.list(key)])
