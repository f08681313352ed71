"""The auditor's pages of the console (纪检, 督查; 条例 §22): verify the history chains against the signed
checkpoints, sign a checkpoint, replay a case step by step beside what was recorded, see a case as it was
at a moment (a slider over its events), and download its dossier. Nothing here changes a case.

Who may, as over the API (api/http/resources/audit.py): verify and the checkpoints — the auditor and the
platform account; signing, replay and the dossier — the auditor only; a case as of a moment — every role
that reads cases, within its scope. The process administrator reads no cases and opens none of these
pages. Personal data stays hidden unless a role that may see it asks to reveal it; the reveal is written
to the access log before the page is sent.
"""
from __future__ import annotations

import json
from datetime import datetime

from flask import (Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request,
                   url_for)

from engine.access import scopes
from engine.audit import dossier as dossiers
from engine.audit.asof import HistoryUnreliable, mask
from engine.audit.trail import AuditKeyError
from engine.errors import NotFound
from rules import personal_data
from rules.calendar import BEIJING

from api.console.admin import main_file
from api.console.blueprint import register_error_pages
from api.console.nav import NAV, NavItem
from api.console.security import principal, signed_in
from api.http.context import current_clock, current_engine

bp = Blueprint("console_audit", __name__, url_prefix="/console/audit", template_folder="templates")
register_error_pages(bp)

AUDITOR = scopes.AUDITOR
WATCHERS = (scopes.AUDITOR, scopes.PLATFORM)
CASE_READERS = tuple(sorted(scopes.CASE_READERS))
MAX_FINDINGS = 200

NAV.append(NavItem("console_audit.verify", "审计", "Audit", WATCHERS))


def _key_file():
    return current_app.config.get("GRIDFLOW_AUDIT_KEY_FILE")


def _key_message(exc: AuditKeyError) -> tuple[str, str]:
    current_app.logger.warning("audit key: %s", exc)   # the key file's path stays in the server's log
    return ("服务器未配置可用的审计签名密钥，请联系管理员或在审计主机上签署。",
            "This server has no usable audit key (GRIDFLOW_AUDIT_KEY_FILE): ask the administrator, or sign on "
            "the audit host with `gridflow audit checkpoint --key FILE`.")


# ---- verify and checkpoints ------------------------------------------------------------------------

@bp.route("/verify")
@signed_in(*WATCHERS)
def verify():
    engine = current_engine()
    raw = (request.args.get("case") or "").strip()
    case_id = None
    if raw:
        if not raw.isdigit() or len(raw) > 12:
            abort(400, description="the case number is a whole number")
        case_id = int(raw)
    report, key_error = None, None
    if request.args.get("run") or case_id is not None:
        try:
            report = engine.audit.verify(case_id, key_file=_key_file())
        except AuditKeyError as exc:
            key_error = _key_message(exc)
    return render_template("admin/verify.html", report=report, case_id=case_id, key_error=key_error,
                           checkpoints=engine.audit.checkpoints(10), max_findings=MAX_FINDINGS,
                           may_sign=principal().role == AUDITOR)


@bp.route("/checkpoints", methods=["POST"])
@signed_in(AUDITOR)
def sign_checkpoint():
    try:
        row = current_engine().audit.checkpoint(by=principal().user, key_file=_key_file(), clock=current_clock())
    except AuditKeyError as exc:
        zh, en = _key_message(exc)
        flash(f"{zh} {en}", "error")
    else:
        flash(f"已签署检查点 {row.id}（{row.case_count} 个案件）。 Checkpoint {row.id} signed over "
              f"{row.case_count} cases.", "ok")
    return redirect(url_for(".verify"))


# ---- a case's definition, for the drawings ---------------------------------------------------------

def _case(case_id: int):
    """The case as the signed-in account may see it (out of scope: not found)."""
    return current_engine().queries.case(case_id, scope=principal())


@bp.route("/cases/<id:case_id>/definition.json")
@signed_in(*CASE_READERS)
def case_definition(case_id):
    view = _case(case_id)
    engine = current_engine()
    files = engine.definitions.files(view.definition_id)
    return jsonify({"files": files, "main": main_file(files, view.process_key)})


def _elements(event) -> list[str]:
    """The elements a recorded step moved: its human tasks' elements, and the timers it armed or fired."""
    effects = event.effects or {}
    found = [t[1] for t in effects.get("tasks", []) if len(t) > 1]
    found += [t[0] for t in effects.get("timers", []) if t]
    return list(dict.fromkeys(found))


# ---- replay ----------------------------------------------------------------------------------------

def _differing(recorded: dict, replayed: dict) -> list[str]:
    return [k for k in recorded if recorded.get(k) != replayed.get(k)]


@bp.route("/cases/<id:case_id>/replay")
@signed_in(AUDITOR)
def replay(case_id):
    engine = current_engine()
    view = _case(case_id)
    events = engine.queries.history(case_id)
    result = engine.audit.replay(case_id)
    d = result.divergence
    steps = []
    for index, event in enumerate(events):
        if event.seq <= result.steps:
            outcome, text = "equal", "重现一致 reproduced"
        elif d is not None and event.seq == d.seq:
            outcome, text = "diverged", "首次不一致 first divergence"
        elif result.cannot and event.seq == result.steps + 1:
            outcome, text = "cannot", "无法重放 cannot replay"
        else:
            outcome, text = "not_replayed", "未重放 not replayed"
        steps.append({"index": index, "seq": event.seq, "at": event.clock_time, "actor": event.actor,
                      "role": event.role, "command": event.command, "status_before": event.status_before,
                      "status_after": event.status_after, "elements": _elements(event), "outcome": outcome,
                      "outcome_text": text, "state_hash": event.state_hash})
    divergence_index = next((s["index"] for s in steps if s["outcome"] in ("diverged", "cannot")), None)
    config = {"files_url": url_for(".case_definition", case_id=case_id), "divergence_index": divergence_index,
              "steps": [{k: s[k] for k in ("seq", "command", "elements", "outcome", "outcome_text")} for s in steps]}
    sides = None
    if d is not None:
        keys = list(dict.fromkeys([*d.recorded, *d.replayed]))
        differing = set(_differing(d.recorded, d.replayed)) | {k for k in d.replayed if k not in d.recorded}
        sides = [{"key": k, "recorded": json.dumps(d.recorded.get(k), ensure_ascii=False, indent=1),
                  "replayed": json.dumps(d.replayed.get(k), ensure_ascii=False, indent=1),
                  "differs": k in differing} for k in keys]
    return render_template("admin/replay.html", view=view, result=result, steps=steps, config=config, sides=sides)


# ---- as of a moment --------------------------------------------------------------------------------

def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        abort(400, description="the moment is a date and time, e.g. 2026-11-05T10:00+08:00")
    return moment.replace(tzinfo=BEIJING) if moment.tzinfo is None else moment


def _shown_fields(shown, hidden, path: str = "") -> list[str]:
    """Where the revealed data differs from the hidden: the personal fields a reveal shows."""
    if isinstance(shown, dict) and isinstance(hidden, dict):
        return [p for k in shown for p in _shown_fields(shown[k], hidden.get(k), f"{path}.{k}" if path else str(k))]
    if isinstance(shown, list) and isinstance(hidden, list) and len(shown) == len(hidden):
        return [p for i, (a, b) in enumerate(zip(shown, hidden)) for p in _shown_fields(a, b, f"{path}[{i}]")]
    return [] if shown == hidden else [path]


def _log_reveal(case_id: int, fields: list[str]) -> None:
    current_engine().access_log.record(principal(), {case_id: sorted(set(fields))},
                                       f"console {request.path}"[:200], clock=current_clock())


@bp.route("/cases/<id:case_id>/as-of")
@signed_in(*CASE_READERS)
def as_of(case_id):
    engine = current_engine()
    view = _case(case_id)
    reveal = request.args.get("reveal") == "1"
    may_reveal = personal_data.sees_unmasked(principal().role)
    if reveal and not may_reveal:
        abort(403)
    events = engine.queries.history(case_id)
    moment = _moment(request.args.get("at")) or events[-1].clock_time
    position = max((i for i, e in enumerate(events) if e.clock_time <= moment), default=None)
    state, problem = None, None
    try:
        state = engine.audit.as_of(case_id, moment, reveal=True)
    except NotFound:
        problem = ("此时案件尚未上报。", "The case had not been reported yet at that moment.")
    except HistoryUnreliable as exc:
        problem = ("案件历史无法重放到此时刻，所示内容不可信；请查看重放页面。", str(exc))
    data, personal = None, "none"
    if state is not None:
        hidden = mask(state.data)
        shown = _shown_fields(state.data, hidden)
        if shown and reveal:
            _log_reveal(case_id, shown)
            data, personal = state.data, "shown"
        else:
            data, personal = hidden, "hidden" if shown else "none"
    visited = [el for e in events if e.clock_time <= moment for el in _elements(e)]
    config = {"files_url": url_for(".case_definition", case_id=case_id),
              "events": [{"seq": e.seq, "at": e.clock_time.isoformat(), "command": e.command,
                          "at_text": e.clock_time.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")} for e in events],
              "visited": list(dict.fromkeys(visited)),
              "open": [t["element"] for t in state.open_tasks] if state else [],
              "waiting": [w["element"] for w in state.deadlines if not w["passed"]] if state else []}
    return render_template("admin/asof.html", view=view, events=events, moment=moment, position=position,
                           state=state, problem=problem, data=data, personal=personal, may_reveal=may_reveal,
                           config=config, beijing=lambda m: m.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
                           may_audit=principal().role == AUDITOR, beijing_tz=BEIJING,
                           data_text=json.dumps(data, ensure_ascii=False, indent=2) if data is not None else "")


# ---- the dossier -----------------------------------------------------------------------------------

@bp.route("/cases/<id:case_id>/dossier.<any(html, json):fmt>")
@signed_in(AUDITOR)
def dossier(case_id, fmt):
    engine = current_engine()
    _case(case_id)
    reveal = request.args.get("reveal") == "1"
    try:
        data = engine.audit.dossier(case_id, engine.queries, reveal=reveal, key_file=_key_file(),
                                    clock=current_clock())
    except AuditKeyError as exc:
        zh, en = _key_message(exc)
        abort(503, description=en)
    if reveal:
        parts = ("explanations",) if fmt == "html" else ("explanations", "data")
        shown = [p for step in data["steps"] for part in parts
                 for p in _shown_fields(step[part], mask(step[part]), part)]
        if shown:
            _log_reveal(case_id, shown)
    if fmt == "html":
        response = Response(dossiers.to_html(data), mimetype="text/html")
    else:
        response = Response(json.dumps(data, ensure_ascii=False, indent=2), mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="dossier-{case_id}.{fmt}"'
    return response


@bp.route("/")
@signed_in(*WATCHERS)
def home():
    raw = (request.args.get("case") or "").strip()
    if raw.isdigit() and len(raw) <= 12:
        return redirect(url_for(".replay" if principal().role == AUDITOR else ".as_of", case_id=int(raw)))
    return redirect(url_for(".verify"))
