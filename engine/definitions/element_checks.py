"""Checks on single elements: supported elements (with what to draw instead), expressions and Camunda-style
`${…}`, timer values (ISO-8601 literal or expression, bounded), script tasks, loop markers."""
from __future__ import annotations

import ast
from datetime import datetime, timezone

from lxml import etree


from engine.definitions.problems import Problem, problem
from engine.definitions.reading import BPMN_NS, SPIFF_NS, SUPPORTED_BPMN, _EXPRESSION_TAGS, _INSTEAD, _SCRIPT_FORMATS, _owner_id, _walk_checked
from engine.execution.expressions import Evaluator, ExpressionError, check_expression, check_script
from engine.execution.functions import FUNCTION_NAMES
from engine.execution.spiff import (
    TIMER_KINDS, TimerValueError, check_timer_literal, literal_kind, timer_due,
)


def _check_elements(name: str, root: etree._Element) -> list[Problem]:
    problems = []
    for element in _walk_checked(root):
        qname = etree.QName(element)
        if qname.namespace == BPMN_NS:
            local = qname.localname
            if local not in SUPPORTED_BPMN:
                en, zh = _INSTEAD.get(local, ("", ""))
                problems.append(problem(name, _owner_id(element), "unsupported_element",
                                        f"unsupported element bpmn:{local}" + (f": {en}" if en else ""),
                                        f"不支持的元素 bpmn:{local}" + (f"：{zh}" if zh else "")))
                continue
            problems += _check_expressions_of(name, element, local)
            if local == "scriptTask":
                problems += _check_script_task(name, element)
            elif local in ("standardLoopCharacteristics", "multiInstanceLoopCharacteristics"):
                problems += _check_loop_marker(name, element, local)
        elif qname.namespace == SPIFF_NS and qname.localname in ("preScript", "postScript"):
            problems += _checked(name, element, element.text or "", check_script)
        elif qname.namespace == SPIFF_NS and qname.localname == "messagePayload":
            problems += _checked(name, element, element.text or "", check_expression)
    return problems


def _camunda(text: str) -> str | None:
    """The GridFlow form of a Camunda/JUEL `${…}` (or `#{…}`) expression, or None when `text` is not one."""
    stripped = text.strip()
    if len(stripped) > 3 and stripped[0] in "$#" and stripped[1] == "{" and stripped.endswith("}"):
        inner = stripped[2:-1].strip()
        for juel, python in ((" && ", " and "), (" || ", " or "), (" eq ", " == "), (" ne ", " != "),
                             ("!", "not "), ("not =", "!="), (" gt ", " > "), (" lt ", " < "),
                             (" ge ", " >= "), (" le ", " <= ")):
            inner = inner.replace(juel, python)
        for word, python in (("true", "True"), ("false", "False"), ("null", "None")):
            inner = " ".join(python if part == word else part for part in inner.split(" "))
        return inner
    return None


def _check_expressions_of(name: str, element, localname: str) -> list[Problem]:
    text = (element.text or "").strip()
    owner = _owner_id(element)
    if localname in _EXPRESSION_TAGS or localname in TIMER_KINDS:
        if not text:
            if localname == "conditionExpression" or localname in TIMER_KINDS:
                return [problem(name, owner, "empty_expression", f"empty bpmn:{localname}",
                                f"bpmn:{localname} 为空")]
            return []
        suggestion = _camunda(text)
        if suggestion is not None:
            return [problem(name, owner, "camunda_expression",
                            f"{text!r} is a Camunda expression; GridFlow writes it without ${{…}}: {suggestion}",
                            f"{text!r} 是 Camunda 表达式；GridFlow 中请去掉 ${{…}}，写作：{suggestion}")]
        if localname in TIMER_KINDS:
            return _check_timer(name, element, localname, text)
        if localname == "loopCardinality" and text.isdigit():
            return []
        return _checked(name, element, text, check_expression)
    if localname == "script":
        parent = element.getparent()
        if (parent.get("scriptFormat") or "").strip().lower() not in _SCRIPT_FORMATS:
            return []   # another language: refused once, on its script task
        return _checked(name, element, element.text or "", check_script)
    return []


def _check_timer(name: str, element, kind: str, text: str) -> list[Problem]:
    """A timer value is a bare ISO-8601 literal of its kind, or an expression; decided here, by its text."""
    owner = _owner_id(element)
    literal = literal_kind(text)
    wanted = TIMER_KINDS[kind]
    event = element.getparent().getparent() if element.getparent() is not None else None
    event_tag = etree.QName(event).localname if event is not None else ""
    if kind == "timeCycle" and event_tag != "boundaryEvent":
        return [problem(name, owner, "timer_cycle_placement",
                        f"bpmn:timeCycle on a {event_tag or 'timer'} is not run: a cycle repeats a boundary "
                        "event's path (a reminder, 催办); here use bpmn:timeDuration or bpmn:timeDate",
                        f"{event_tag or '该事件'} 上的 bpmn:timeCycle 不会执行：循环定时器只用于边界事件（如催办提醒）；"
                        "此处请使用 bpmn:timeDuration 或 bpmn:timeDate")]
    if literal is not None:
        if literal != wanted:
            return [problem(name, owner, "timer_value", f"{text!r} is a {literal}, but bpmn:{kind} takes a "
                            f"{wanted}; use bpmn:{_kind_for(literal)} for it",
                            f"{text!r} 是{_ZH_KIND[literal]}，而 bpmn:{kind} 需要{_ZH_KIND[wanted]}；"
                            f"请改用 bpmn:{_kind_for(literal)}")]
        try:
            check_timer_literal(kind, text)
        except (TimerValueError, Exception) as exc:   # SpiffWorkflow's duration parser raises plain Exception
            return [problem(name, owner, "timer_value", f"bpmn:{kind} {text!r} refused: {exc}",
                            f"定时器取值 bpmn:{kind} {text!r} 无效：{exc}")]
        if kind != "timeCycle":
            return _timer_bounds(name, owner, kind, repr(text))
        return []
    try:
        check_expression(text, FUNCTION_NAMES)
    except ExpressionError as exc:
        return [problem(name, owner, "timer_value",
                        f"timer value {text!r} is neither an ISO-8601 {wanted} (such as "
                        f"{_EXAMPLE[wanted]}) nor an expression ({exc})",
                        f"定时器取值 {text!r} 既不是 ISO-8601 {_ZH_KIND[wanted]}（例如 {_EXAMPLE[wanted]}），"
                        f"也不是合法表达式（{exc}）")]
    if kind != "timeCycle" and not any(isinstance(n, (ast.Name, ast.Call)) for n in ast.walk(ast.parse(text, mode="eval"))):
        return _timer_bounds(name, owner, kind, text)
    return []


def _timer_bounds(name: str, owner: str, kind: str, source: str) -> list[Problem]:
    """A timer whose expression uses no variable or function has its value now: it is checked as a running
    timer would check it (engine/execution/spiff.py `timer_due`), so an unbounded one is refused at deploy."""
    try:
        value = Evaluator().evaluate(source, {})
        timer_due("duration" if kind == "timeDuration" else "date", value, datetime.now(timezone.utc))
    except ExpressionError as exc:
        return [problem(name, owner, "timer_value", f"bpmn:{kind} {source[:80]!r} refused: {exc}",
                        f"bpmn:{kind} {source[:80]!r} 超出定时器的取值范围：{exc}")]
    return []


_ZH_KIND = {"duration": "时长", "date-time": "日期时间", "cycle": "循环周期"}
_EXAMPLE = {"duration": "P3D or PT48H", "date-time": "2026-01-05T09:00:00+08:00", "cycle": "R3/PT10H"}


def _kind_for(literal: str) -> str:
    return next(k for k, v in TIMER_KINDS.items() if v == literal)


def _check_script_task(name: str, element) -> list[Problem]:
    """A script task runs its inline script with the safe evaluator; nothing else can be run."""
    owner = element.get("id", "")
    script_format = (element.get("scriptFormat") or "").strip().lower()
    if script_format not in _SCRIPT_FORMATS:
        return [problem(name, owner, "script_format",
                        f"script task {owner!r} has scriptFormat={element.get('scriptFormat')!r}; GridFlow runs "
                        "only inline scripts of its own expression language (assignments, see "
                        "docs/process-conventions.md): remove scriptFormat or set it to python",
                        f"脚本任务 {owner!r} 的 scriptFormat={element.get('scriptFormat')!r} 不受支持；"
                        "只能运行内嵌的 GridFlow 表达式脚本（赋值语句）：请删除 scriptFormat 或设为 python")]
    scripts = element.findall(f"{{{BPMN_NS}}}script")
    if not scripts or not "".join(scripts[0].itertext()).strip():
        resource = next((v for k, v in element.attrib.items() if etree.QName(k).localname == "resource"), None)
        return [problem(name, owner, "script_missing",
                        f"script task {owner!r} has no inline script" +
                        (f" (it points to {resource!r}, which is not run)" if resource else "") +
                        ": write its assignments in bpmn:script, or make it a plain bpmn:task",
                        f"脚本任务 {owner!r} 没有内嵌脚本" + (f"（外部资源 {resource!r} 不会运行）" if resource else "") +
                        "：请在 bpmn:script 中写出赋值语句，或改为普通任务 bpmn:task")]
    return []


def _check_loop_marker(name: str, element, local: str) -> list[Problem]:
    """A task that repeats itself must be bounded: a standard loop by loopMaximum, a multi-instance by a
    cardinality or a collection."""
    owner = _owner_id(element)
    if local == "standardLoopCharacteristics":
        maximum = element.get("loopMaximum")
        if not (maximum or "").strip().isdigit():
            return [problem(name, owner, "unbounded_loop",
                            f"{owner!r} repeats (standard loop) with no loopMaximum: give it loopMaximum=\"N\"",
                            f"{owner!r} 为标准循环但没有 loopMaximum：请设置 loopMaximum=\"N\"")]
        return []
    cardinality = element.find(f"{{{BPMN_NS}}}loopCardinality")
    collection = element.find(f"{{{BPMN_NS}}}loopDataInputRef")
    if cardinality is None and collection is None and element.get("loopDataInputRef") is None \
            and not any(etree.QName(k).localname == "collection" for k in element.attrib):
        return [problem(name, owner, "unbounded_loop",
                        f"{owner!r} is multi-instance with neither loopCardinality nor loopDataInputRef: say how "
                        "many instances run",
                        f"{owner!r} 为多实例任务，但既没有 loopCardinality 也没有 loopDataInputRef：请说明实例数")]
    return []


def _checked(name, element, source, check) -> list[Problem]:
    try:
        check(source, FUNCTION_NAMES)
    except ExpressionError as exc:
        return [problem(name, _owner_id(element), "expression_refused", f"expression {source.strip()!r} refused: {exc}",
                        f"表达式 {source.strip()!r} 未通过检查：{exc}")]
    return []
