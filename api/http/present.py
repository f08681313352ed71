"""Cases and histories as a principal may see them: personal data masked unless their role needs it
(rules/personal_data), and every unmasked read recorded before it is sent."""
from __future__ import annotations

from dataclasses import asdict

from flask import request

from engine.access.scopes import Principal
from engine.cases.history import verify_chain
from rules import personal_data

from api.http.context import current_engine


def _purpose() -> str:
    return f"{request.method} {request.path}"


def case(principal: Principal, case_id: int) -> dict:
    view = current_engine().queries.case(case_id, scope=principal)
    body = asdict(view)
    found = personal_data.personal_fields(body["data"])
    if not found:
        body["personal_data"] = "none"
    elif personal_data.sees_unmasked(principal.role):
        current_engine().access_log.record(principal, {case_id: found}, _purpose())
        body["personal_data"] = "unmasked"
    else:
        body["data"] = personal_data.masked(body["data"])
        body["personal_data"] = "masked"
    return body


def history(principal: Principal, case_id: int) -> dict:
    events = current_engine().queries.history(case_id, scope=principal)
    broken = verify_chain(case_id, events)
    rows = [asdict(e) for e in events]
    found = personal_data.personal_fields([r["payload"] for r in rows])
    if found and personal_data.sees_unmasked(principal.role):
        current_engine().access_log.record(principal, {case_id: sorted(set(_field(p) for p in found))}, _purpose())
    elif found:
        for row in rows:
            row["payload"] = personal_data.masked(row["payload"])
    return {"case_id": case_id, "chain_intact": broken is None,
            "broken": None if broken is None else {"seq": broken.seq, "reason": broken.reason}, "events": rows}


def _field(path: str) -> str:
    # "[0].data.reporter.phone" → "data.reporter.phone": which field, not which event
    return path.split("]", 1)[1].lstrip(".") if path.startswith("[") else path
