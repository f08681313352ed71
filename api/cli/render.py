"""Plain-text views for people at a terminal: tables, a case, a timeline. Times shown in Beijing time."""
from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "CST")

ROLE_NAMES = {"grid_worker": "网格员", "grid_agency": "网格机构", "responsible_unit": "责任单位",
              "platform": "平台", "system": "系统", "process_admin": "流程管理员"}
COMMANDS = {"start": "reported the matter", "complete": "completed", "sign_for": "signed for",
            "return": "returned", "message": "message", "timers": "timer fired"}


def when(moment: datetime | None) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if moment else ""


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in headers]] + [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(_pad(c, w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def tasks(rows) -> str:
    return table(["task", "case", "element", "name", "role", "grid", "unit", "level", "state", "since"],
                 [[t.id, t.case_id, t.element_id, t.name, t.role, t.grid_code, t.unit, t.agency_level, t.state,
                   when(t.created_at)] for t in rows])


def case(view) -> str:
    head = (f"case {view.id}  {view.title}\n"
            f"  process {view.process_key} v{view.definition_version}   status {view.status}"
            f"{'   level ' + view.level if view.level else ''}"
            f"{'   grid ' + view.grid_code if view.grid_code else ''}"
            f"{'   unit ' + view.unit if view.unit else ''}"
            f"{'   finished ' + when(view.finished_at) if view.finished_at else ''}")
    lines = [head]
    if view.open_tasks:
        lines.append("  open tasks:")
        lines += ["    " + line for line in tasks(view.open_tasks).splitlines()]
    for waiting in view.waiting:
        due = f", due {when(waiting.due_at)}" if waiting.due_at else ""
        lines.append(f"  waiting for {waiting.kind} {waiting.name}{due}")
    if len(lines) == 1:
        lines.append("  no open tasks")
    return "\n".join(lines)


def timeline(events) -> str:
    rows = []
    for event in events:
        what = COMMANDS.get(event.command, event.command)
        element = event.payload.get("task_name") or event.payload.get("element")
        if element:
            what += f" {element}"
        if event.command == "message":
            what += f" {event.payload.get('name')}"
        if event.command == "timers":
            what += " (due " + ", ".join(when(datetime.fromisoformat(d["due_at"])) for d in event.payload["due"]) + ")"
        if event.command == "return":
            what += f" ({event.payload.get('reason')})"
        moves = event.effects.get("status") or []
        status = " → ".join([moves[0][0] or "∅"] + [m[1] for m in moves]) if moves else event.status_after
        role = f"{event.role} {ROLE_NAMES.get(event.role, '')}".strip()
        rows.append([event.seq, when(event.clock_time), event.actor, role, what, status])
    return "  timeline:\n" + "\n".join("    " + line for line in
                                       table(["#", "when (CST)", "who", "role", "what", "status"], rows).splitlines())
