"""The console's navigation: one list, in order, that any console blueprint appends to.

    from api.console.nav import NAV, NavItem
    NAV.append(NavItem("console_admin.definitions", "流程定义", "Definitions", roles={"process_admin"}))

A link shows for the roles named (every signed-in account when `roles` is empty).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import g, request, url_for

from engine.access import scopes


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    zh: str
    en: str
    roles: frozenset = field(default_factory=frozenset)

    def __post_init__(self):
        object.__setattr__(self, "roles", frozenset(self.roles))


LANES = {scopes.GRID_WORKER, scopes.GRID_AGENCY, scopes.RESPONSIBLE_UNIT, scopes.COUNTY_GOVERNMENT}

NAV: list[NavItem] = [
    NavItem("console.tasks", "我的任务", "My tasks", LANES | {scopes.AUDITOR, scopes.PLATFORM}),
    NavItem("console.cases", "案件查询", "Cases", scopes.CASE_READERS),
    NavItem("console.report", "事件上报", "Report a matter", {scopes.GRID_WORKER, scopes.PLATFORM}),
    NavItem("console.dashboard", "统计看板", "Dashboard", {scopes.GRID_AGENCY, scopes.AUDITOR, scopes.PLATFORM,
                                                      scopes.RESPONSIBLE_UNIT, scopes.GRID_WORKER}),
    NavItem("console.registry", "网格台账", "Registry", set()),
]


def visible() -> list[dict]:
    """The links the signed-in account may follow, the current one marked."""
    account = g.get("console_account")
    if account is None:
        return []
    items = []
    for item in NAV:
        if item.roles and account.role not in item.roles:
            continue
        href = url_for(item.endpoint)
        items.append({"href": href, "zh": item.zh, "en": item.en,
                      "current": request.path == href or request.path.startswith(href.rstrip("/") + "/")})
    return items
