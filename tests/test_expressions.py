from datetime import datetime, timezone

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.spiff.parser import SpiffBpmnParser

from engine.execution.expressions import (
    Evaluator, ExpressionError, SafeEnvironment, SafeScriptEngine, check_expression, check_script,
)

VARIABLES = {"a": 5, "b": "x", "items": [3, 1, 2], "case": {"level": "community"}, "flag": False}


@pytest.mark.parametrize("source, expected", [
    ('a > 3 and b == "x"', True),
    ("a < 3 or flag", False),
    ("not flag", True),
    ("1 < a <= 5", True),
    ('b in ("x", "y") and b not in ["z"]', True),
    ("case is not None", True),
    ("-a + +a * 2 - 1", 4),
    ("a / 2", 2.5),
    ("a // 2", 2),
    ("a % 3", 2),
    ('"up" if a > 3 else "down"', "up"),
    ('case["level"]', "community"),
    ("items[0]", 3),
    ("items[1:]", [1, 2]),
    ("items[::-1]", [2, 1, 3]),
    ('{"n": a, "s": {1, 2}, "t": (1,)}', {"n": 5, "s": {1, 2}, "t": (1,)}),
    ('f"P{a}D"', "P5D"),
    ('f"{a:03d}|{b!r}|{2.5:.2f}"', "005|'x'|2.50"),
    ('"ab" * 2 + "c"', "ababc"),
    ("[0] * 3 + [1]", [0, 0, 0, 1]),
    ("len(items) + sum(items)", 9),
    ("min(items) + max(4, a)", 6),
    ("sorted(items, reverse=True)", [3, 2, 1]),
    ('str(a) + str(int("7")) + str(float("1.5")) + str(bool(0))', "571.5False"),
    ("abs(-a) + round(2.567, 2)", 7.57),
    ("any(items) and all([])", True),
    ('list("ab") + list(tuple(items))', ["a", "b", 3, 1, 2]),
    ('dict(case, extra=1)', {"level": "community", "extra": 1}),
])
def test_allowed_forms_evaluate_like_python(source, expected):
    assert Evaluator().evaluate(source, dict(VARIABLES)) == expected


@pytest.mark.parametrize("source", [
    "().__class__.__base__.__subclasses__()",
    '__import__("os")',
    'open("/etc/passwd")',
    'eval("1")',
    'exec("x=1")',
    'getattr(x, "y")',
    "(lambda: 1)()",
    "[x for x in y]",
    "{k: 1 for k in y}",
    "(x for x in y)",
    "x.__class__",
    "x._private",
    "_hidden",
    "9**9**9",
    "(9**9)**9",
    "~a",
    "a << 2",
    "(y := 1)",
    "len(*items)",
    "dict(**case)",
    "{**case}",
    'b"bytes"',
    'f"{a:>999999999}"',
    'f"{a:{b}}"',
    "import os",
])
def test_escapes_are_refused_at_check_time(source):
    with pytest.raises(ExpressionError):
        check_expression(source)


@pytest.mark.parametrize("source", [
    "import os",
    "from os import system",
    "def f(): pass",
    "class C: pass",
    "while True: pass",
    "for i in items: pass",
    "with x: pass",
    "try:\n    pass\nexcept Exception:\n    pass",
    "del a",
    "global a",
    'print("hi")',
    "a, b = 1, 2",
    "case['level'] = 1",
    "a.b = 1",
    "a *= 2",
    "x = y.__class__",
    "len = 3",
])
def test_script_escapes_are_refused_at_check_time(source):
    with pytest.raises(ExpressionError):
        check_script(source)


def test_refusal_says_what_and_where():
    with pytest.raises(ExpressionError) as caught:
        check_script("ok = 1\nbad = x.__class__")
    assert caught.value.lineno == 2 and caught.value.column == 7
    assert str(caught.value) == "attribute access is not allowed at line 2, column 7 in 'bad = x.__class__'"


@pytest.mark.parametrize("source, variables", [
    ('"a" * 1000000000', {}),
    ("[1] * 1000000000", {}),
    ('"a" * n', {"n": 10**9}),
    ("n * [1]", {"n": 10**9}),
    ("1000000000000 * 1000000000000 * 1000000000000", {}),
    ("-999999999999999999 - 2", {}),
    ('int("1" * 30)', {}),
    ("s + s", {"s": "a" * 6000}),
    ("[s] * 20", {"s": "a" * 6000}),  # short list, huge contents
    ("[s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s]", {"s": "a" * 6000}),
    ('f"{s}{s}"', {"s": "a" * 6000}),
    ("str(s)", {"s": list(range(20000))}),
    ('"%999999999d" % n', {"n": 1}),
    ("round(n, -1000000000)", {"n": 5}),
    ("sum(s)", {"s": list(range(20000))}),
])
def test_resource_bombs_are_stopped_at_evaluation(source, variables):
    check_expression(source)
    with pytest.raises(ExpressionError):
        Evaluator().evaluate(source, variables)


def test_long_chain_is_refused_by_the_node_limit():
    with pytest.raises(ExpressionError, match="too complex"):
        check_expression(" + ".join(["a"] * 200))


def test_over_long_source_is_refused():
    with pytest.raises(ExpressionError, match="longer than 2000"):
        check_expression("1" * 2001)


def test_missing_variable_is_named():
    with pytest.raises(ExpressionError, match="unknown variable 'level'"):
        Evaluator().evaluate('level == "city"', {})


def test_runtime_errors_carry_the_expression():
    with pytest.raises(ExpressionError, match=r"ZeroDivisionError.*in 'a / zero'"):
        Evaluator().evaluate("a / zero", {"a": 1, "zero": 0})
    with pytest.raises(ExpressionError, match=r"TypeError.*in 'a \+ b'"):
        Evaluator().evaluate("a + b", {"a": 1, "b": "x"})


def test_script_assigns_into_variables():
    variables = {"count": 1}
    Evaluator().execute('count += 1\nlevel = first = "community"\nnote = f"round {count}"\npass', variables)
    assert variables == {"count": 2, "level": "community", "first": "community", "note": "round 2"}


@pytest.mark.parametrize("script", ["count = 5\nbroken = count / 0", "count = 5\ncount += 'x'"])
def test_failing_script_changes_nothing(script):
    variables = {"count": 1}
    with pytest.raises(ExpressionError, match="line 2"):
        Evaluator().execute(script, variables)
    assert variables == {"count": 1}


def test_script_cannot_overwrite_a_function():
    evaluator = Evaluator({"next_level": lambda level: "township"})
    with pytest.raises(ExpressionError, match="'next_level' is a function"):
        evaluator.execute("next_level = 1", {})
    with pytest.raises(ExpressionError, match="'len' is a function"):
        evaluator.execute("len += 1", {"len": 1})


def test_domain_functions_are_callable_and_must_return_plain_data():
    evaluator = Evaluator({
        "next_level": {"community": "township"}.get,
        "now": lambda: datetime.now(timezone.utc),
    })
    assert evaluator.evaluate("next_level(level)", {"level": "community"}) == "township"
    with pytest.raises(ExpressionError, match="not plain data"):
        evaluator.evaluate("now()", {})
    with pytest.raises(ExpressionError):
        check_expression("next_level(level)")  # unknown unless named
    check_script("level = next_level(level)", functions={"next_level"})
    evaluator.check_expression("next_level(level)")


def test_environment_merges_context_over_external_context():
    environment = SafeEnvironment()
    assert environment.evaluate("a + b", {"a": 1}, {"a": 100, "b": 2}) == 3
    context = {"a": 1}
    assert environment.execute("c = a + b", context, {"b": 2}) is True
    assert context == {"a": 1, "c": 3}
    with pytest.raises(ExpressionError, match="service tasks are not supported"):
        environment.call_service(context, operation_name="x")


def test_engine_keeps_a_utc_clock():
    now = SafeScriptEngine().clock.now()
    assert now.tzinfo is not None and now.utcoffset().total_seconds() == 0


ROUTE_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs" targetNamespace="http://gridflow.test">
  <bpmn:process id="route" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="score_it"/>
    <bpmn:scriptTask id="score_it"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>score = base + 5</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="score_it" targetRef="gateway"/>
    <bpmn:exclusiveGateway id="gateway" default="to_low">
      <bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>to_high</bpmn:outgoing><bpmn:outgoing>to_low</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="to_high" sourceRef="gateway" targetRef="high">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="to_low" sourceRef="gateway" targetRef="low"/>
    <bpmn:scriptTask id="high"><bpmn:incoming>to_high</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>route = "high"</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:scriptTask id="low"><bpmn:incoming>to_low</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
      <bpmn:script>route = "low"</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f3" sourceRef="high" targetRef="end"/>
    <bpmn:sequenceFlow id="f4" sourceRef="low" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""


def run_route(condition, base):
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(ROUTE_BPMN.replace("{condition}", condition).encode())
    workflow = BpmnWorkflow(parser.get_spec("route"), script_engine=SafeScriptEngine())
    workflow.task_tree.data = {"base": base}
    workflow.do_engine_steps()
    return workflow


@pytest.mark.parametrize("base, route", [(10, "high"), (5, "low")])
def test_gateway_condition_routes(base, route):
    workflow = run_route("score &gt; 10", base)
    assert workflow.is_completed()
    assert workflow.data == {"base": base, "score": base + 5, "route": route}


@pytest.mark.parametrize("condition", [
    'open("{path}", "w")',
    '().__class__.__base__.__subclasses__()[0]("{path}")',
])
def test_malicious_condition_raises_instead_of_running(tmp_path, condition):
    target = tmp_path / "pwned"
    with pytest.raises(WorkflowTaskException, match="is not a function expressions may call"):
        run_route(condition.replace("{path}", str(target)), 10)
    assert not target.exists()


DECISION_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    id="defs" targetNamespace="http://gridflow.test">
  <bpmn:process id="triage" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="decide"/>
    <bpmn:businessRuleTask id="decide">
      <bpmn:extensionElements>
        <spiffworkflow:calledDecisionId>priority</spiffworkflow:calledDecisionId>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:businessRuleTask>
    <bpmn:sequenceFlow id="f2" sourceRef="decide" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""

# The cell forms DMNEngine rewrites: `"fire"` becomes `(kind) == ("fire")`, `? in (…)` becomes
# `dmninputexpr in (…)`, and `> 3` (a SyntaxError on its own, so validate must raise SyntaxError)
# becomes `severity> 3`.
PRIORITY_DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"
    id="d" name="d" namespace="http://gridflow.test">
  <decision id="priority" name="Priority">
    <decisionTable id="table" hitPolicy="UNIQUE">
      <input id="i1"><inputExpression id="ie1"><text>kind</text></inputExpression></input>
      <input id="i2"><inputExpression id="ie2"><text>severity</text></inputExpression></input>
      <output id="o1" name="priority" typeRef="string"/>
      <rule id="r1">
        <inputEntry id="r1a"><text>"fire"</text></inputEntry>
        <inputEntry id="r1b"><text>-</text></inputEntry>
        <outputEntry id="r1o"><text>"urgent"</text></outputEntry>
      </rule>
      <rule id="r2">
        <inputEntry id="r2a"><text>? in ("flood", "quake")</text></inputEntry>
        <inputEntry id="r2b"><text>&gt; 3</text></inputEntry>
        <outputEntry id="r2o"><text>"high"</text></outputEntry>
      </rule>
      <rule id="r3">
        <inputEntry id="r3a"><text>-</text></inputEntry>
        <inputEntry id="r3b"><text>-</text></inputEntry>
        <outputEntry id="r3o"><text>"normal"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>"""


@pytest.mark.parametrize("kind, severity, priority", [
    ("fire", 1, "urgent"), ("flood", 5, "high"), ("flood", 2, "normal"), ("theft", 9, "normal"),
])
def test_decision_table_cells_run_through_the_safe_engine(kind, severity, priority):
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(DECISION_BPMN.encode())
    parser.add_dmn_str(PRIORITY_DMN.encode())
    workflow = BpmnWorkflow(parser.get_spec("triage"), script_engine=SafeScriptEngine())
    workflow.task_tree.data = {"kind": kind, "severity": severity}
    workflow.do_engine_steps()
    assert workflow.data["priority"] == priority


def test_validate_keeps_syntax_errors_apart_for_dmn():
    engine = SafeScriptEngine()
    with pytest.raises(SyntaxError):
        engine.validate("> 3")
    with pytest.raises(ExpressionError):
        engine.validate("x.__class__")
    engine.validate("v > 3")
