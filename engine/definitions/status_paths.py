"""What the parsed specs must satisfy: tasks in role lanes with valid forms, and lawful status moves along every
path between status-declaring elements (rules/status)."""
from __future__ import annotations


from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent

from rules import lifecycles

from engine.definitions.forms import FormError, parse_form
from engine.definitions.problems import Problem, problem
from engine.definitions.reading import ROLES, STATUS_PROPERTIES


def _all_specs(bundle):
    yield bundle.spec
    yield from (s for s in bundle.subprocess_specs.values() if s is not None)


def properties(task_spec) -> dict:
    return (getattr(task_spec, "extensions", None) or {}).get("properties", {}) or {}


def role_of(task_spec) -> str | None:
    """Lanes are named like `网格员 (grid_worker)`; a lane named just by its code works too."""
    lane = getattr(task_spec, "lane", None)
    if not lane:
        return None
    lane = lane.strip()
    if lane.endswith(")") and "(" in lane:
        lane = lane[lane.rindex("(") + 1:-1].strip()
    return lane


def lifecycle_of(spec):
    """The status lifecycle the process declares on its start event (`lifecycle`); grid matter by default."""
    for ts in spec.task_specs.values():
        if ts.__class__.__name__ == "StartEvent" and "lifecycle" in properties(ts):
            return lifecycles.lifecycle(properties(ts)["lifecycle"])
    return lifecycles.lifecycle(None)


def _check_tasks(bundle) -> list[Problem]:
    problems = []
    file_name = next(iter(bundle.files))
    for ts in bundle.spec.task_specs.values():
        if ts.__class__.__name__ == "StartEvent" and properties(ts).get("lifecycle") not in (None, *lifecycles.NAMES):
            problems.append(problem(file_name, ts.bpmn_id, "unknown_lifecycle",
                                    f"lifecycle={properties(ts)['lifecycle']!r} is not "
                                    f"known; known: {', '.join(lifecycles.NAMES)}",
                                    f"未知的生命周期 lifecycle={properties(ts)['lifecycle']!r}；"
                                    f"可用：{', '.join(lifecycles.NAMES)}"))
            return problems
    statuses = lifecycle_of(bundle.spec)
    for spec in _all_specs(bundle):
        file_name = getattr(spec, "file", None) or next(iter(bundle.files))
        for ts in spec.task_specs.values():
            props = properties(ts)
            element = getattr(ts, "bpmn_id", None) or ts.name
            for prop in STATUS_PROPERTIES:
                if prop in props and props[prop] not in statuses.STATUSES:
                    problems.append(problem(file_name, element, "unknown_status",
                                            f"{prop}={props[prop]!r} is not a status; "
                                            f"known: {', '.join(statuses.STATUSES)}",
                                            f"{prop}={props[prop]!r} 不是已知状态；可用：{', '.join(statuses.STATUSES)}"))
            if ts.manual:
                role = role_of(ts)
                if role not in ROLES and not ts.lane:
                    problems.append(problem(file_name, element, "lane_role",
                                            f"human task {element!r} is in no lane: put it in a lane named for its "
                                            f"role, like 网格员 (grid_worker); roles: {', '.join(ROLES)}",
                                            f"人工任务 {element!r} 不在任何泳道中：请把它放进以角色命名的泳道，"
                                            f"如 网格员 (grid_worker)；角色：{', '.join(ROLES)}"))
                elif role not in ROLES:
                    problems.append(problem(file_name, element, "lane_role",
                                            f"human task {element!r} is in lane {ts.lane!r}, which names no role: end "
                                            f"the lane's name with a role code in parentheses, like 网格员 "
                                            f"(grid_worker); roles: {', '.join(ROLES)}",
                                            f"人工任务 {element!r} 所在泳道 {ts.lane!r} 未指明角色：请在泳道名称末尾用括号写出"
                                            f"角色代码，如 网格员 (grid_worker)；角色：{', '.join(ROLES)}"))
                try:
                    parse_form(props.get("form"))
                except FormError as exc:
                    problems.append(problem(file_name, element, "form", str(exc), f"表单声明有误：{exc}"))
                for prop in ("unit", "agency_level"):
                    if prop in props and not props[prop].isidentifier():
                        problems.append(problem(file_name, element, "property", f"{prop} must name a case variable",
                                                f"{prop} 必须是案件变量名"))
                if "max_returns" in props and not props["max_returns"].isdigit():
                    problems.append(problem(file_name, element, "property", "max_returns must be a whole number",
                                            "max_returns 必须是整数"))
    return problems


def _exits(ts) -> list[str]:
    """Statuses a case can be in while it leaves this element: as reached, after sign-for, after return."""
    props = properties(ts)
    return [props[p] for p in STATUS_PROPERTIES if p in props]


def check_status_paths(bundle) -> list[Problem]:
    """Every path between two status-declaring elements must be a lawful move.

    Gateway conditions are not evaluated, so a task that can be signed for or returned leaves with any of
    its exit statuses; a successor is lawful when at least one exit can reach it. This refuses paths such
    as dispatched → closed with no feedback while accepting the sign/return fork.
    """
    problems = []
    file_name = next(iter(bundle.files))
    spec = bundle.spec
    try:
        statuses = lifecycle_of(spec)
    except KeyError:
        return []   # the unknown lifecycle is reported with the tasks' problems
    declared = {name: ts for name, ts in spec.task_specs.items() if "status" in properties(ts)}
    if not declared:
        return []
    for ts in spec.task_specs.values():
        if getattr(ts, "event_definition", None) is not None and ts.__class__.__name__ == "StartEvent" \
                and properties(ts).get("status") != statuses.INITIAL:
            problems.append(problem(file_name, ts.bpmn_id, "start_status",
                                    f"a {statuses.NAME} case begins as {statuses.INITIAL}: "
                                    f"declare status={statuses.INITIAL} on the start event",
                                    f"{statuses.NAME} 案件从 {statuses.INITIAL} 开始：请在开始事件上声明 "
                                    f"status={statuses.INITIAL}"))
    for name, ts in declared.items():
        exits = _exits(ts)
        arrival = exits[0]
        for extra in exits[1:]:
            if not statuses.is_lawful(arrival, extra):
                problems.append(problem(file_name, ts.bpmn_id, "unlawful_move", f"{arrival} → {extra} is not a "
                                        "lawful move", f"{arrival} → {extra} 不是合法的状态变更"))
        for target, path in _next_declared(ts):
            dest = properties(target)["status"]
            if not any(statuses.is_lawful(x, dest) for x in exits):
                route = " → ".join(getattr(t, "bpmn_id", None) or t.name for t in path)
                problems.append(problem(file_name, ts.bpmn_id, "unlawful_path", f"path {route} would move the matter "
                                        f"{'/'.join(exits)} → {dest}, which the regulation does not allow",
                                        f"路径 {route} 会使事项从 {'/'.join(exits)} 变为 {dest}，条例不允许"))
    return problems


def _next_declared(start):
    """(declared element, path) pairs reachable from `start` through elements that declare nothing.

    Boundary events belong to their host: they are followed from the host they are attached to."""
    found, seen = [], set()
    stack = [(out, [start, out]) for out in _successors(start)]
    while stack:
        ts, path = stack.pop()
        if ts.name in seen:
            continue
        seen.add(ts.name)
        if "status" in properties(ts):
            found.append((ts, path))
            continue
        stack.extend((out, path + [out]) for out in _successors(ts))
    return found


def _successors(ts):
    outs = []
    for out in ts.outputs:
        if isinstance(out, BoundaryEvent):
            continue
        outs.append(out)
        # The split in front of a task holds its boundary events: they leave from the task itself.
        if out.__class__.__name__ == "BoundaryEventSplit":
            host = next((o for o in out.outputs if not isinstance(o, BoundaryEvent)), None)
            if host is not None and host is not ts:
                outs.remove(out)
                outs.append(host)
    if not isinstance(ts, BoundaryEvent) and ts.inputs and ts.inputs[0].__class__.__name__ == "BoundaryEventSplit":
        outs.extend(o for o in ts.inputs[0].outputs if isinstance(o, BoundaryEvent))
    return outs
