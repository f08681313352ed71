"""A case dossier (案卷): what an auditor files — every step with actor, role, time, where the deadlines
stood, the explanations given — with the result of checking its chain and replaying it. JSON for systems,
a self-contained HTML page (Beijing time, every value escaped, no external resources) for people."""
from __future__ import annotations

import html
import json
from datetime import datetime, timedelta, timezone

from engine.audit.asof import mask

BEIJING = timezone(timedelta(hours=8), "CST")
ROLE_NAMES = {"grid_worker": "网格员", "grid_agency": "网格机构", "responsible_unit": "责任单位", "platform": "平台",
              "system": "系统", "process_admin": "流程管理员"}
WORDS = {"start": "上报 reported", "complete": "办理 completed", "sign_for": "签收 signed for",
         "return": "退单 returned", "refuse": "拒绝 refused", "message": "消息 message",
         "request_extension": "延期申请 asked for an extension", "decide_extension": "延期审批 decided an extension",
         "remind": "催办 reminded", "supervise": "督办 supervised", "timers": "时限到期 a deadline passed"}
# Free text a step carries that explains it: reasons, explanations, comments, results.
EXPLAINING = ("explanation", "reason", "comment", "summary", "result", "note", "return_reason")


def beijing(moment: datetime | None) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if moment else ""


def _span(delta: timedelta) -> str:
    hours = int(abs(delta).total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if days else f"{hours} h {int(abs(delta).total_seconds() // 60 % 60)} min"


def _explanations(payload: dict) -> dict:
    found = {k: payload[k] for k in EXPLAINING if isinstance(payload.get(k), str) and payload[k].strip()}
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    found.update({k: data[k] for k in EXPLAINING if isinstance(data.get(k), str) and data[k].strip()})
    return found


def build(view, events, verify_report, replay_result, *, reveal: bool = False, generated_at: datetime) -> dict:
    """`view`: the case as it stands (queries.case); `events`: its history (queries.history)."""
    pending: dict[str, datetime] = {}
    steps = []
    for event in events:
        standing = []
        for element, due in sorted(pending.items()):
            left = due - event.clock_time
            standing.append({"element": element, "due_at": due.isoformat(),
                             "standing": f"on time, {_span(left)} left" if left >= timedelta(0)
                             else f"overdue by {_span(left)}"})
        for element, due, change in (event.effects or {}).get("timers", []):
            if change in ("armed", "moved"):
                pending[element] = datetime.fromisoformat(due)
            else:
                pending.pop(element, None)
        payload = event.payload or {}
        steps.append({
            "seq": event.seq, "at": event.clock_time.isoformat(), "at_beijing": beijing(event.clock_time),
            "actor": event.actor, "role": event.role, "role_name": ROLE_NAMES.get(event.role, ""),
            "command": event.command, "what": WORDS.get(event.command, event.command),
            "task": payload.get("task_name") or payload.get("element") or payload.get("name"),
            "status_before": event.status_before, "status_after": event.status_after,
            "deadlines": standing, "timers": (event.effects or {}).get("timers", []),
            "explanations": mask(_explanations(payload), reveal),
            "data": mask(payload.get("data") or payload.get("payload") or {}, reveal),
            "rule_versions": {k: v for k, v in (event.effects or {}).items() if k in ("calendar", "time_limits",
                                                                                     "routing")},
            "event_hash": event.event_hash})
    divergence = replay_result.divergence
    return {
        "case": {"id": view.id, "title": view.title, "process": view.process_key,
                 "definition_version": view.definition_version, "grid_code": view.grid_code,
                 "category": view.category, "status": view.status, "level": view.level, "unit": view.unit,
                 "created_at": view.created_at.isoformat(),
                 "finished_at": view.finished_at.isoformat() if view.finished_at else None},
        "chain": {"intact": verify_report.intact,
                  "findings": [{"seq": f.seq, "kind": f.kind, "detail": f.detail} for f in verify_report.findings],
                  "checkpoint": verify_report.checkpoint_id,
                  "checkpoint_at": verify_report.checkpoint_at.isoformat() if verify_report.checkpoint_at else None,
                  "notes": verify_report.notes},
        "replay": {"equal": replay_result.equal, "steps": replay_result.steps, "cannot": replay_result.cannot,
                   "divergence": None if divergence is None else {
                       "seq": divergence.seq, "command": divergence.command, "reason": divergence.reason,
                       "recorded": divergence.recorded, "replayed": divergence.replayed}},
        "steps": steps,
        "generated_at": generated_at.isoformat(),
        "personal_data": "shown" if reveal else "hidden",
    }


def to_json(dossier: dict) -> str:
    return json.dumps(dossier, ensure_ascii=False, indent=2, default=str)


_STYLE = """body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border:1px solid #999;padding:4px 6px;
vertical-align:top;text-align:left}th{background:#eee}.bad{color:#b00;font-weight:bold}.ok{color:#070}
.late{color:#b00}small{color:#555}@media print{body{margin:0}}"""


def to_html(dossier: dict) -> str:
    e = lambda value: html.escape("" if value is None else str(value))  # noqa: E731
    case, chain, replay = dossier["case"], dossier["chain"], dossier["replay"]
    rows = []
    for s in dossier["steps"]:
        deadlines = "<br>".join(f"<span class=\"{'late' if 'overdue' in d['standing'] else ''}\">{e(d['element'])}: "
                                f"{e(d['standing'])}</span>" for d in s["deadlines"])
        said = "<br>".join(f"{e(k)}: {e(v)}" for k, v in s["explanations"].items())
        rows.append(f"<tr><td>{s['seq']}</td><td>{e(s['at_beijing'])}</td><td>{e(s['actor'])}</td>"
                    f"<td>{e(s['role_name'])} <small>{e(s['role'])}</small></td><td>{e(s['what'])}"
                    f"{'<br><small>' + e(s['task']) + '</small>' if s['task'] else ''}</td>"
                    f"<td>{e(s['status_before'] or '∅')} → {e(s['status_after'])}</td><td>{deadlines}</td>"
                    f"<td>{said}</td></tr>")
    findings = "".join(f"<li class=\"bad\">event {e(f['seq'])}: {e(f['kind'])} — {e(f['detail'])}</li>"
                       for f in chain["findings"])
    divergence = replay["divergence"]
    replay_text = ("<span class=\"ok\">every step reproduced its recorded state</span>" if replay["equal"] else
                   f"<span class=\"bad\">{e(replay['cannot'])}</span>" if replay["cannot"] else
                   f"<span class=\"bad\">step {e(divergence['seq'])} ({e(divergence['command'])}) diverges: "
                   f"{e(divergence['reason'])}</span>")
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>案卷 case {e(case['id'])}</title>
<style>{_STYLE}</style></head><body>
<h1>案卷 Case dossier — {e(case['id'])} {e(case['title'])}</h1>
<p>流程 {e(case['process'])} v{e(case['definition_version'])} · 网格 {e(case['grid_code'])} · 类别 {e(case['category'])}
 · 状态 {e(case['status'])} · 层级 {e(case['level'])} · 责任单位 {e(case['unit'])}</p>
<p>上报 {e(dossier_time(case['created_at']))}{' · 结束 ' + e(dossier_time(case['finished_at'])) if case['finished_at'] else ''}
 · 生成 generated {e(dossier_time(dossier['generated_at']))} (北京时间 Beijing time) · 个人信息 personal data
 {e(dossier['personal_data'])}</p>
<h2>核验 Verification</h2>
<p>哈希链 History chain: {'<span class="ok">intact</span>' if chain['intact'] else '<span class="bad">BROKEN</span>'}
{f" · signed checkpoint {e(chain['checkpoint'])} of {e(dossier_time(chain['checkpoint_at']))}" if chain['checkpoint'] else ' · no signed checkpoint'}</p>
<ul>{findings}{''.join(f'<li>{e(n)}</li>' for n in chain['notes'])}</ul>
<p>重放 Replay: {replay_text}</p>
<h2>过程 Steps</h2>
<table><tr><th>#</th><th>时间 time</th><th>人员 actor</th><th>角色 role</th><th>事项 what</th><th>状态 status</th>
<th>时限 deadlines then</th><th>说明 explanations</th></tr>
{''.join(rows)}</table>
</body></html>
"""


def dossier_time(iso: str | None) -> str:
    return beijing(datetime.fromisoformat(iso)) if iso else ""
