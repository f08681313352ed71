"""Chinese first, English on request: the language lives in the session (the switch in the page header).

Texts are pairs kept where they are used: `_("中文", "English")` in templates and views. Names of statuses
and roles come from the tables below.
"""
from __future__ import annotations

from datetime import datetime

from flask import session

from rules.calendar import BEIJING

LANGUAGES = ("zh", "en")

STATUSES = {
    "reported": ("已上报", "reported"), "registered": ("已核实登记", "registered"),
    "self_handling": ("自行处置中", "self-handling"), "self_resolved": ("已自行处置", "self-resolved"),
    "escalated": ("已上报上级", "escalated"), "not_filed": ("不予立案", "not filed"),
    "dispatched": ("已派遣", "dispatched"), "in_progress": ("处置中", "in progress"),
    "returned": ("已退单", "returned"), "overdue": ("已超期", "overdue"),
    "feedback_submitted": ("已反馈", "feedback submitted"), "verifying": ("核查中", "verifying"),
    "rework": ("返工", "rework"), "closed": ("已结案", "closed"), "evaluated": ("已评价", "evaluated"),
    "suspended": ("已挂账", "suspended"), "cancelled": ("已撤销", "cancelled"), "filed": ("已立案", "filed"),
    "accepted": ("已受理", "accepted"), "applied": ("已申请", "applied"), "approved": ("已批准", "approved"),
    "rejected": ("已驳回", "rejected"), "in_force": ("已生效", "in force"),
    # task states
    "offered": ("待签收", "to sign for"), "signed_for": ("已签收", "signed for"), "ready": ("待办理", "to do"),
    "completed": ("已完成", "completed"), "extension_requested": ("延期申请中", "extension requested"),
    "explanation_submitted": ("说明已提交", "explanation submitted"), "refused": ("已拒绝", "refused"),
}

ROLES = {
    "grid_worker": ("网格员", "grid worker"), "grid_agency": ("网格化服务管理机构", "grid agency"),
    "responsible_unit": ("责任单位", "responsible unit"), "process_admin": ("流程管理员", "process administrator"),
    "auditor": ("审计监督", "auditor"), "platform": ("市级平台", "city platform"),
    "county_government": ("县（市、区）政府", "county government"),
}


def current() -> str:
    lang = session.get("lang")
    return lang if lang in LANGUAGES else "zh"


def text(zh: str, en: str) -> str:
    return en if current() == "en" else zh


def _pair(table: dict, key) -> str:
    if key is None:
        return ""
    zh, en = table.get(key, (key, key))
    return text(zh, en)


def status(key) -> str:
    return _pair(STATUSES, key)


def role(key) -> str:
    return _pair(ROLES, key)


def when(value: datetime | None, *, seconds: bool = False) -> str:
    """A time in Beijing time, as people there read it."""
    if value is None:
        return ""
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
