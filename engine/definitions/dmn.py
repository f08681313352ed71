"""DMN decision tables: hit policies the engine honours and cells in FEEL as modelers write them, translated
to the safe evaluator or refused."""
from __future__ import annotations

import copy

from lxml import etree


from engine.definitions import feel
from engine.definitions.problems import Problem, problem
from engine.definitions.reading import DMN_HIT_POLICIES, _owner_id, decision_ids
from engine.execution.expressions import ExpressionError, check_expression
from engine.execution.functions import FUNCTION_NAMES


def translated_dmn(root):
    """A copy of a DMN tree whose cells are in the form SpiffWorkflow evaluates (engine/definitions/feel.py)."""
    root = copy.deepcopy(root)
    for tag, translate in (("inputEntry", feel.input_cell), ("outputEntry", feel.output_cell)):
        for entry in root.iter("{*}" + tag):
            text = entry.find("{*}text")
            if text is not None:
                translated = translate(text.text)
                text.text = "-" if translated is None else translated
    return root


def _check_dmn(name: str, root: etree._Element) -> list[Problem]:
    problems = []
    if len(list(root.iter("{*}decisionTable"))) > 1:
        problems.append(problem(name, decision_ids(root)[1] if len(decision_ids(root)) > 1 else "",
                                "dmn_tables", "one decision table per DMN file: put each decision in a file "
                                "of its own", "每个 DMN 文件只能有一个决策表：请把每个决策放在单独的文件中"))
    for decision in root.iter("{*}decision"):
        if decision.find("{*}decisionTable") is None:
            problems.append(problem(name, decision.get("id"), "dmn_decision_logic",
                                    "only decision tables are run; a literal expression or other decision logic "
                                    "is not", "只支持决策表；不支持字面表达式等其他决策逻辑"))
    for table in root.iter("{*}decisionTable"):
        policy = table.get("hitPolicy", "UNIQUE")
        if policy not in DMN_HIT_POLICIES or table.get("aggregation"):
            problems.append(problem(name, _owner_id(table), "dmn_hit_policy",
                                    f"hit policy {policy}{' with aggregation' if table.get('aggregation') else ''}"
                                    f" is not supported; use one of {', '.join(sorted(DMN_HIT_POLICIES))}",
                                    f"不支持命中策略 {policy}{'（含聚合）' if table.get('aggregation') else ''}；"
                                    f"请使用 {', '.join(sorted(DMN_HIT_POLICIES))} 之一"))
    for element in root.iter("{*}inputExpression"):
        text = _cell_text(element)
        if text:
            problems += _dmn_checked(name, element, text, feel.value(text))
    for tag, translate in (("inputEntry", feel.input_cell), ("outputEntry", feel.output_cell)):
        for element in root.iter("{*}" + tag):
            text = _cell_text(element)
            try:
                source = translate(text)
            except feel.FeelError as exc:
                problems.append(problem(name, _owner_id(element), "dmn_cell", f"cell {text!r} refused: {exc}",
                                        f"单元格 {text!r} 无法使用：{exc}"))
                continue
            if source:
                problems += _dmn_checked(name, element, text, source.replace("?", "dmninputexpr"))
    return problems


def _cell_text(element) -> str:
    """A cell's or input expression's `text` child (its `description` is for people)."""
    text = element.find("{*}text")
    return (text.text or "").strip() if text is not None else ""


def _dmn_checked(name, element, text, source) -> list[Problem]:
    try:
        check_expression(source, FUNCTION_NAMES)
    except ExpressionError as exc:
        return [problem(name, _owner_id(element), "dmn_cell",
                        f"cell {text!r} is neither a FEEL test GridFlow translates (\"a\",\"b\" · [1..5] · >= 10 · "
                        f"- · not(\"x\")) nor an allowed expression: {exc}",
                        f"单元格 {text!r} 既不是可转换的 FEEL 条件（\"a\",\"b\" · [1..5] · >= 10 · - · not(\"x\")），"
                        f"也不是允许的表达式：{exc}")]
    return []
