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


# Names of the fields the shipped definitions' forms and intake use; another field shows its own name.
FIELDS = {
    "verified": ("情况属实", "verified"), "within_authority": ("属自行处置权限", "within my authority"),
    "reason": ("理由", "reason"), "resolved": ("已解决", "resolved"), "result": ("处理结果", "result"),
    "passed": ("核查通过", "passed"), "comment": ("意见", "comment"), "decision": ("决定", "decision"),
    "unit": ("责任单位", "responsible unit"), "handling_days": ("办理时限（工作日）", "handling days"),
    "assisting_units": ("协办单位", "assisting units"), "accepted": ("同意", "accepted"),
    "suspend": ("挂账", "suspend"), "card": ("督办等级", "card"), "summary": ("结案小结", "summary"),
    "final": ("实质办结", "final"), "explanation": ("书面说明", "written explanation"),
    "title": ("标题", "title"), "category": ("类别", "category"), "sub_category": ("事项", "kind of matter"),
    "urgency": ("紧急程度", "urgency"), "description": ("情况描述", "description"), "location": ("地点", "location"),
    "reporter": ("反映人", "reporter"), "level": ("办理层级", "level"), "name": ("姓名", "name"),
    "phone": ("电话", "phone"), "id_number": ("身份证号", "ID number"), "address": ("住址", "address"),
    "rework_count": ("返工次数", "rework count"), "reopen_count": ("重办次数", "reopen count"),
    "follow_up": ("回访", "follow-up"), "returned": ("已退单", "returned"), "refused": ("已拒绝", "refused"),
}


def field(name: str) -> str:
    return _pair(FIELDS, name)
