"""Definitions as modelers write them: a re-save is the same version, timer values as bpmn.io writes them,
the common safe BPMN elements accepted, and refusals that name the file and the element as data."""
import re
from datetime import timedelta

import pytest
from lxml import etree

from engine.definitions.bundle import DefinitionRejected
from engine.definitions.diff import compare_files
from engine.definitions.feel import FeelError, input_cell
from engine.errors import InvalidCommand
from engine.store.models import Case, HistoryEvent, HumanTask
from tests.conftest import PROCESSES, grid_matter_upload, registered
from tests.test_definitions import BPMN_HEAD, LANE, USER_TASK, rejected, tiny

GRID_MATTER = (PROCESSES / "grid_matter.bpmn").read_text()
# A report names a grid in force in the sample registry (conftest.registered loads it).
REPORT = {"grid_code": "410702001001U001"}


def modeler_resave(text: str) -> str:
    """What opening a file in bpmn-js and saving it does: attributes reordered, schema defaults dropped
    (cancelActivity="true"), the exporter stamped, the file re-indented with other prefixes declared first."""
    root = etree.fromstring(text.encode())
    root.set("exporter", "Camunda Modeler")
    root.set("exporterVersion", "5.31.0")
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        if node.get("cancelActivity") == "true":
            del node.attrib["cancelActivity"]
        items = sorted(node.attrib.items(), reverse=True)
        node.attrib.clear()
        for key, value in items:
            node.set(key, value)
    etree.indent(root, space="    ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()


def tasks(engine, case_id):
    with engine.sessions() as session:
        return [(t.id, t.element_id, t.state) for t in
                session.query(HumanTask).filter_by(case_id=case_id).order_by(HumanTask.id)]


def case_row(engine, case_id):
    with engine.sessions() as session:
        row = session.get(Case, case_id)
        return row.status, row.finished_at


# ---- canonical versions ----------------------------------------------------------------------------------

def test_a_modeler_resave_of_the_shipped_process_deploys_as_unchanged(engine, clock):
    resaved = modeler_resave(GRID_MATTER)
    assert resaved != GRID_MATTER and 'cancelActivity="true"' not in resaved and "exporterVersion" in resaved
    [first] = engine.definitions.deploy(grid_matter_upload(), "alice", clock)
    [again] = engine.definitions.deploy({"grid_matter (1).bpmn": resaved.encode()}, "bob", clock)
    assert (again.version, again.created, again.change) == (1, False, "unchanged")
    assert again.content_hash == first.content_hash
    assert [d.version for d in engine.definitions.list("grid_matter")] == [1]


def test_the_diff_knows_schema_defaults_and_tools():
    [diff] = compare_files({"g.bpmn": GRID_MATTER}, {"g.bpmn": modeler_resave(GRID_MATTER)})
    assert (diff.change, diff.elements, diff.diagram_changed) == ("reformatted", (), False)
    # Saying the opposite of the default is a change, reported against the default.
    after = GRID_MATTER.replace('cancelActivity="true" attachedToRef="handle"', 'cancelActivity="false" '
                                'attachedToRef="handle"')
    [diff] = compare_files({"g.bpmn": GRID_MATTER}, {"g.bpmn": after})
    [changed] = diff.elements
    assert changed.id == "feedback_from_unit_system"
    assert [(c.key, c.before, c.after) for c in changed.changes] == [("cancelActivity", "true", "false")]


def test_a_drawing_only_change_is_a_new_version_that_says_so(engine, clock):
    engine.definitions.deploy(grid_matter_upload(), "alice", clock)
    shape = re.search(r'<dc:Bounds x="(\d+)"', GRID_MATTER)
    moved = GRID_MATTER[:shape.start(1)] + str(int(shape.group(1)) + 40) + GRID_MATTER[shape.end(1):]
    [outcome] = engine.definitions.deploy({"grid_matter.bpmn": moved.encode()}, "bob", clock)
    assert (outcome.version, outcome.created, outcome.change) == (2, True, "drawing")
    assert "only the drawing changed" in str(outcome)
    renumbered = moved.replace(f'x="{int(shape.group(1)) + 40}"', f'x="{int(shape.group(1)) + 40}.0"', 1)
    assert engine.definitions.deploy({"grid_matter.bpmn": renumbered.encode()}, "bob", clock)[0].created is False


# ---- timers as modelers write them -----------------------------------------------------------------------

def _timer_process(definition: str, event: str = "intermediateCatchEvent", pid: str = "timed") -> bytes:
    body = f"""<bpmn:{event} id="wait"><bpmn:timerEventDefinition id="td">{definition}</bpmn:timerEventDefinition>
    </bpmn:{event}>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>"""
    return tiny(body, pid=pid)


@pytest.mark.parametrize("definition, due", [
    ("<bpmn:timeDuration>P3D</bpmn:timeDuration>", timedelta(days=3)),
    ("<bpmn:timeDuration>PT48H</bpmn:timeDuration>", timedelta(hours=48)),
    ('<bpmn:timeDuration>"PT2H"</bpmn:timeDuration>', timedelta(hours=2)),
    ("<bpmn:timeDate>2026-11-03T09:00:00+08:00</bpmn:timeDate>", timedelta(hours=24)),
])
def test_an_unquoted_iso_literal_is_a_literal_and_the_case_starts(engine, clock, definition, due):
    registered(engine, clock)
    engine.definitions.deploy({"t.bpmn": _timer_process(definition)}, "a", clock)
    case_id = engine.cases.start("timed", dict(REPORT), actor="a", role="grid_worker", clock=clock)
    [(element, due_at)] = [(t.element_id, t.due_at) for t in engine.timers.pending(case_id)]
    assert (element, due_at) == ("wait", clock.now() + due)
    clock.set(due_at + timedelta(seconds=1))
    assert engine.timers.sweep(clock).fired_cases == 1
    assert case_row(engine, case_id)[1] is not None


@pytest.mark.parametrize("definition, words", [
    ("<bpmn:timeDuration>three days</bpmn:timeDuration>", "neither an ISO-8601 duration"),
    ("<bpmn:timeDuration>2026-11-03T09:00:00+08:00</bpmn:timeDuration>", "use bpmn:timeDate"),
    ("<bpmn:timeDate>2026-11-03T09:00:00</bpmn:timeDate>", "no time zone"),
    ("<bpmn:timeDuration>${dueIn}</bpmn:timeDuration>", "without ${…}: dueIn"),
    ("<bpmn:timeDuration>P20Y</bpmn:timeDuration>", "more than 3660 days"),
])
def test_a_timer_value_that_is_neither_is_refused_at_deploy(engine, clock, definition, words):
    [problem] = rejected(engine, clock, {"t.bpmn": _timer_process(definition)}).problems
    assert (problem.file, problem.element_id) == ("t.bpmn", "td")
    assert problem.code in ("timer_value", "camunda_expression") and words in problem.en and problem.zh


REMINDER = f"""{BPMN_HEAD}
  <bpmn:process id="remind" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="l1" name="责任单位 (responsible_unit)">
      <bpmn:flowNodeRef>handle</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:scriptTask id="init"><bpmn:script>reminders = 0</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="handle" name="Handle"/>
    <bpmn:boundaryEvent id="nudge" attachedToRef="handle" cancelActivity="false">
      <bpmn:timerEventDefinition id="cycle"><bpmn:timeCycle>R2/PT10H</bpmn:timeCycle></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:scriptTask id="count"><bpmn:script>reminders = reminders + 1</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="nudged"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="init"/>
    <bpmn:sequenceFlow id="f2" sourceRef="init" targetRef="handle"/>
    <bpmn:sequenceFlow id="f3" sourceRef="handle" targetRef="end"/>
    <bpmn:sequenceFlow id="f4" sourceRef="nudge" targetRef="count"/>
    <bpmn:sequenceFlow id="f5" sourceRef="count" targetRef="nudged"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_a_cycle_timer_reminds_on_schedule_without_making_the_task_overdue(engine, clock):
    registered(engine, clock)
    engine.definitions.deploy({"remind.bpmn": REMINDER.encode()}, "a", clock)
    case_id = engine.cases.start("remind", dict(REPORT), actor="a", role="responsible_unit", clock=clock)
    started = clock.now()
    [(_, due)] = [(t.element_id, t.due_at) for t in engine.timers.pending(case_id)]
    assert due == started + timedelta(hours=10)
    for round_ in (1, 2):
        clock.set(started + timedelta(hours=10 * round_, seconds=1))
        assert engine.timers.sweep(clock).fired_cases == 1
        [(_, _, state)] = tasks(engine, case_id)
        assert state == "offered"           # a reminder is not a deadline
    assert engine.timers.pending(case_id) == [] or all(
        t.due_at > clock.now() for t in engine.timers.pending(case_id))
    with engine.sessions() as session:
        fired = [e.payload for e in session.query(HistoryEvent).filter_by(case_id=case_id, command="timers")]
    assert len(fired) == 2
    [(task_id, _, _)] = tasks(engine, case_id)
    engine.cases.complete_task(task_id, {}, actor="u", role="responsible_unit", clock=clock)
    assert case_row(engine, case_id)[1] is not None


def test_a_cycle_on_a_start_or_catch_event_is_refused_naming_it(engine, clock):
    xml = _timer_process("<bpmn:timeCycle>R3/PT1H</bpmn:timeCycle>")
    [problem] = rejected(engine, clock, {"c.bpmn": xml}).problems
    assert (problem.element_id, problem.code) == ("td", "timer_cycle_placement")


# ---- refusals that name the file and the element -----------------------------------------------------------

def _script_task(attributes: str, inner: str) -> bytes:
    return tiny(f"""<bpmn:scriptTask id="s" {attributes}>{inner}</bpmn:scriptTask>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="s"/>
    <bpmn:sequenceFlow id="f2" sourceRef="s" targetRef="end"/>""")


@pytest.mark.parametrize("attributes, inner, code", [
    ('scriptFormat="xslt"', "<bpmn:script>&lt;xsl:stylesheet/&gt;</bpmn:script>", "script_format"),
    ('scriptFormat="groovy" camunda:resource="deployment://x.groovy" '
     'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"', "", "script_format"),
    ("", "", "script_missing"),
    ('xmlns:camunda="http://camunda.org/schema/1.0/bpmn" camunda:resource="x.py"', "", "script_missing"),
])
def test_a_script_task_without_an_inline_script_is_refused(engine, clock, attributes, inner, code):
    [problem] = rejected(engine, clock, {"s.bpmn": _script_task(attributes, inner)}).problems
    assert (problem.file, problem.element_id, problem.code) == ("s.bpmn", "s", code)


def _loop(script: str, condition: str, extra: str = "") -> bytes:
    return tiny(f"""<bpmn:scriptTask id="init"><bpmn:script>n = 0</bpmn:script></bpmn:scriptTask>
    <bpmn:scriptTask id="again"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:exclusiveGateway id="more" default="f_out"/>{extra}
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="init"/>
    <bpmn:sequenceFlow id="f2" sourceRef="init" targetRef="again"/>
    <bpmn:sequenceFlow id="f3" sourceRef="again" targetRef="more"/>
    <bpmn:sequenceFlow id="f_back" sourceRef="more" targetRef="again">
      <bpmn:conditionExpression>{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_out" sourceRef="more" targetRef="end"/>""", pid="looping")


def test_a_loop_without_a_bound_is_refused_and_one_with_a_counter_runs(engine, clock):
    [problem] = rejected(engine, clock, {"l.bpmn": _loop("x = 1", "x == 1")}).problems
    assert (problem.file, problem.element_id, problem.code) == ("l.bpmn", "more", "unbounded_loop")
    assert "again" in problem.en and "max_returns" in problem.en and problem.zh
    registered(engine, clock)
    engine.definitions.deploy({"l.bpmn": _loop("n = n + 1", "n &lt; 5")}, "a", clock)
    case_id = engine.cases.start("looping", dict(REPORT), actor="a", role="grid_worker", clock=clock)
    assert case_row(engine, case_id)[1] is not None


def test_a_command_past_the_step_budget_is_refused_with_nothing_committed(engine, clock):
    # The counter is there, but its condition never lets the loop end: only the run-time budget sees it.
    registered(engine, clock)
    engine.definitions.deploy({"l.bpmn": _loop("n = n + 1", "n &gt; -1")}, "a", clock)
    with pytest.raises(InvalidCommand, match="engine steps in one command"):
        engine.cases.start("looping", dict(REPORT), actor="a", role="grid_worker", clock=clock)
    with engine.sessions() as session:
        assert session.query(Case).count() == 0 and session.query(HistoryEvent).count() == 0


def test_a_call_activity_whose_process_is_in_another_file_names_both(engine, clock):
    body = """<bpmn:callActivity id="call" calledElement="child"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call"/>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="end"/>"""
    [problem] = rejected(engine, clock, {"parent.bpmn": tiny(body, pid="parent")}).problems
    assert (problem.file, problem.element_id, problem.code) == ("parent.bpmn", "call", "call_target_missing")
    assert "'child'" in problem.en and "deploy the two files together" in problem.en and "一起部署" in problem.zh


def test_a_process_that_calls_itself_is_refused(engine, clock):
    body = """<bpmn:callActivity id="again" calledElement="tiny"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="again"/>
    <bpmn:sequenceFlow id="f2" sourceRef="again" targetRef="end"/>"""
    [problem] = rejected(engine, clock, {"r.bpmn": tiny(body)}).problems
    assert (problem.element_id, problem.code) == ("again", "recursive_call")


def test_spiffworkflow_messages_are_rewritten_to_name_the_element(engine, clock):
    body = """<bpmn:task id="fork"/><bpmn:task id="a"/><bpmn:task id="b"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="fork"/>
    <bpmn:sequenceFlow id="f2" sourceRef="fork" targetRef="a"/><bpmn:sequenceFlow id="f3" sourceRef="fork" targetRef="b"/>
    <bpmn:sequenceFlow id="f4" sourceRef="a" targetRef="end"/><bpmn:sequenceFlow id="f5" sourceRef="b" targetRef="end"/>"""
    [problem] = rejected(engine, clock, {"m.bpmn": tiny(body)}).problems
    assert (problem.element_id, problem.code) == ("fork", "multiple_outgoing")
    assert "not supported for tasks of type" not in problem.en and "parallel gateway" in problem.en
    lane = rejected(engine, clock, {"n.bpmn": tiny(USER_TASK)}).problems[0]
    assert lane.code == "lane_role" and "None" not in lane.en and "in no lane" in lane.en


@pytest.mark.parametrize("camunda, suggested", [
    ("${amount &gt; 1000 &amp;&amp; approved}", "amount > 1000 and approved"),
    ("${!rejected}", "not rejected"),
    ("#{status eq 'open'}", "status == 'open'"),
])
def test_a_camunda_expression_is_refused_with_the_gridflow_form(engine, clock, camunda, suggested):
    body = f"""<bpmn:exclusiveGateway id="gw" default="f3"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="gw"/>
    <bpmn:sequenceFlow id="f2" sourceRef="gw" targetRef="end">
      <bpmn:conditionExpression>{camunda}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f3" sourceRef="gw" targetRef="end"/>"""
    [problem] = rejected(engine, clock, {"c.bpmn": tiny(body)}).problems
    assert (problem.element_id, problem.code) == ("f2", "camunda_expression")
    assert problem.en.endswith(suggested) and problem.zh.endswith(suggested)


# ---- the check API --------------------------------------------------------------------------------------

def test_check_reports_every_problem_as_data_and_stores_nothing(engine, clock):
    uploads = {"s.bpmn": _script_task('scriptFormat="xslt"', "<bpmn:script>x</bpmn:script>"),
               "l.bpmn": _loop("x = 1", "x == 1"), "broken.bpmn": b"<bpmn:definitions"}
    problems = engine.definitions.check(uploads)
    assert {(p.file, p.element_id, p.code) for p in problems} == {("broken.bpmn", "", "malformed_xml")}
    del uploads["broken.bpmn"]
    problems = engine.definitions.check(uploads)
    assert {(p.file, p.element_id, p.code) for p in problems} == {("s.bpmn", "s", "script_format"),
                                                                   ("l.bpmn", "more", "unbounded_loop")}
    assert all(set(p.as_dict()["message"]) == {"zh", "en"} for p in problems)
    assert engine.definitions.list() == []
    assert engine.definitions.check(grid_matter_upload()) == [] and engine.definitions.list() == []


# ---- ordinary, safe BPMN ---------------------------------------------------------------------------------

SAFE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:vendor="http://example.com/vendor" id="defs"
    targetNamespace="http://x">
  <bpmn:itemDefinition id="item_text" structureRef="string"/>
  <bpmn:category id="cat"><bpmn:categoryValue id="cv" value="受理"/></bpmn:category>
  <bpmn:message id="msg_reply" name="reply"/>
  <bpmn:dataStore id="store" name="Registry"/>
  <bpmn:process id="safe" isExecutable="true">
    <bpmn:extensionElements><vendor:meta><bpmn:attribute name="x" value="y"/></vendor:meta>
      <camunda:properties><camunda:property name="a" value="b"/></camunda:properties></bpmn:extensionElements>
    <bpmn:ioSpecification id="io"><bpmn:inputSet id="is"/><bpmn:outputSet id="os"/></bpmn:ioSpecification>
    <bpmn:laneSet id="ls"><bpmn:lane id="l1" name="网格员 (grid_worker)"><bpmn:flowNodeRef>t1</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>each</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:dataObject id="do1" itemSubjectRef="item_text"/>
    <bpmn:dataObjectReference id="dor1" dataObjectRef="do1"/>
    <bpmn:dataStoreReference id="dsr1" dataStoreRef="store"/>
    <bpmn:textAnnotation id="ta"><bpmn:text>说明</bpmn:text></bpmn:textAnnotation>
    <bpmn:association id="as1" sourceRef="t1" targetRef="ta"/>
    <bpmn:association id="as2" sourceRef="dsr1" targetRef="ta"/>
    <bpmn:group id="g1" categoryValueRef="cv"/>
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="t1" name="Do it">
      <bpmn:ioSpecification id="t1_io"><bpmn:dataInput id="t1_in" name="address"/>
        <bpmn:dataOutput id="t1_out" name="photo"/>
        <bpmn:inputSet id="t1_is"><bpmn:dataInputRefs>t1_in</bpmn:dataInputRefs></bpmn:inputSet>
        <bpmn:outputSet id="t1_os"><bpmn:dataOutputRefs>t1_out</bpmn:dataOutputRefs></bpmn:outputSet>
      </bpmn:ioSpecification>
      <bpmn:potentialOwner id="po"><bpmn:resourceAssignmentExpression id="rae">
        <bpmn:formalExpression>grid_worker</bpmn:formalExpression></bpmn:resourceAssignmentExpression>
      </bpmn:potentialOwner>
    </bpmn:userTask>
    <bpmn:userTask id="each" name="Each">
      <bpmn:multiInstanceLoopCharacteristics isSequential="true" id="mi">
        <bpmn:loopCardinality>2</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>
    <bpmn:scriptTask id="tally"><bpmn:script>rounds = 1</bpmn:script>
      <bpmn:standardLoopCharacteristics id="sl" loopMaximum="3"/></bpmn:scriptTask>
    <bpmn:intermediateThrowEvent id="go"><bpmn:linkEventDefinition id="le1" name="jump"/></bpmn:intermediateThrowEvent>
    <bpmn:intermediateCatchEvent id="land"><bpmn:linkEventDefinition id="le2" name="jump"/></bpmn:intermediateCatchEvent>
    <bpmn:sendTask id="notify" name="Notify" messageRef="msg_reply"/>
    <bpmn:receiveTask id="wait_reply" name="Wait" messageRef="msg_reply"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="t1"/>
    <bpmn:sequenceFlow id="f2" sourceRef="t1" targetRef="each"/>
    <bpmn:sequenceFlow id="f3" sourceRef="each" targetRef="tally"/>
    <bpmn:sequenceFlow id="f4" sourceRef="tally" targetRef="go"/>
    <bpmn:sequenceFlow id="f5" sourceRef="land" targetRef="notify"/>
    <bpmn:sequenceFlow id="f6" sourceRef="notify" targetRef="wait_reply"/>
    <bpmn:sequenceFlow id="f7" sourceRef="wait_reply" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_documentation_data_artifacts_links_and_message_tasks_are_accepted_and_run(engine, clock):
    uploads = {"safe.bpmn": SAFE.encode()}
    assert engine.definitions.check(uploads) == []
    registered(engine, clock)
    engine.definitions.deploy(uploads, "a", clock)
    case_id = engine.cases.start("safe", dict(REPORT), actor="a", role="grid_worker", clock=clock)
    for _ in range(3):   # the user task, then the two instances of the bounded multi-instance task
        [(task_id, element, _)] = [t for t in tasks(engine, case_id) if t[2] == "offered"]
        engine.cases.complete_task(task_id, {}, actor="w", role="grid_worker", clock=clock)
    assert element == "each"
    assert case_row(engine, case_id)[1] is None, "the link goes on to the receive task, which waits"
    engine.cases.send_message(case_id, "reply", {"ok": True}, actor="u", role="responsible_unit", clock=clock)
    assert case_row(engine, case_id)[1] is not None


def test_a_data_store_a_task_reads_is_refused_and_an_unmatched_link_too(engine, clock):
    wired = SAFE.replace('<bpmn:userTask id="t1" name="Do it">', '<bpmn:userTask id="t1" name="Do it">'
                         '<bpmn:dataInputAssociation id="dia"><bpmn:sourceRef>dsr1</bpmn:sourceRef>'
                         '</bpmn:dataInputAssociation>')
    codes = {(p.element_id, p.code) for p in rejected(engine, clock, {"safe.bpmn": wired.encode()}).problems}
    assert codes == {("t1", "data_store")}
    unmatched = SAFE.replace('name="jump"/></bpmn:intermediateCatchEvent>', 'name="elsewhere"/>'
                             '</bpmn:intermediateCatchEvent>')
    codes = {(p.element_id, p.code) for p in rejected(engine, clock, {"safe.bpmn": unmatched.encode()}).problems}
    assert ("go", "link_event") in codes


def test_unbounded_loop_markers_are_refused(engine, clock):
    unbounded = SAFE.replace(' loopMaximum="3"', "").replace(
        "<bpmn:loopCardinality>2</bpmn:loopCardinality>", "")
    codes = {(p.element_id, p.code) for p in rejected(engine, clock, {"safe.bpmn": unbounded.encode()}).problems}
    assert codes == {("sl", "unbounded_loop"), ("mi", "unbounded_loop")}


# ---- DMN ----------------------------------------------------------------------------------------------------

DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="d" namespace="http://x">
  <decision id="route" name="Route">
    <decisionTable id="table" hitPolicy="FIRST">
      <input id="i1" label="kind"><inputExpression id="ie1" typeRef="string"><text>kind</text></inputExpression></input>
      <input id="i2" label="size"><inputExpression id="ie2" typeRef="number"><text>size</text></inputExpression></input>
      <output id="o1" name="unit" typeRef="string"/>
      <rule id="r1"><inputEntry id="a1"><text>"road","bridge"</text></inputEntry>
        <inputEntry id="b1"><text>[1..5]</text></inputEntry><outputEntry id="c1"><text>"城管"</text></outputEntry></rule>
      <rule id="r2"><inputEntry id="a2"><text>not("water")</text></inputEntry>
        <inputEntry id="b2"><text>&gt;= 10</text></inputEntry><outputEntry id="c2"><text>"住建"</text></outputEntry></rule>
      <rule id="r3"><inputEntry id="a3"><description>anything else</description><text>-</text></inputEntry>
        <inputEntry id="b3"><text>-</text></inputEntry><outputEntry id="c3"><text>"水务"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>"""

RULE_TASK = """<bpmn:businessRuleTask id="rt"><bpmn:extensionElements>
      <spiffworkflow:calledDecisionId>route</spiffworkflow:calledDecisionId></bpmn:extensionElements>
    </bpmn:businessRuleTask>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="rt"/>
    <bpmn:sequenceFlow id="f2" sourceRef="rt" targetRef="end"/>"""


def test_feel_cells_are_translated():
    assert input_cell('"a","b"') == '(? == "a" or ? == "b")'
    assert input_cell("[1..5[") == "(? >= 1 and ? < 5)"
    assert input_cell(">= 10") == "? >= 10"
    assert input_cell("-") is None and input_cell("") is None
    assert input_cell('not("x")') == 'not (? == "x")'
    assert input_cell('== "a"') == '== "a"'   # SpiffWorkflow's own Python form stays
    with pytest.raises(FeelError):
        input_cell("not(-)")


@pytest.mark.parametrize("data, unit", [({"kind": "road", "size": 3}, "城管"), ({"kind": "park", "size": 12}, "住建"),
                                        ({"kind": "water", "size": 12}, "水务"), ({"kind": "road", "size": 7}, "水务")])
def test_a_decision_deployed_alone_is_stored_and_called_later_with_feel_cells(engine, clock, data, unit):
    registered(engine, clock)
    [outcome] = engine.definitions.deploy({"route.dmn": DMN.encode()}, "a", clock)
    assert (outcome.key, outcome.kind, outcome.version) == ("route", "decision", 1)
    assert str(outcome).startswith("decision route: deployed as version 1")
    with pytest.raises(InvalidCommand, match="is a decision"):
        engine.cases.start("route", {}, actor="a", role="grid_worker", clock=clock)
    engine.definitions.deploy({"p.bpmn": tiny(RULE_TASK)}, "a", clock)
    assert sorted(engine.definitions.files(engine.definitions.find("tiny").id)) == ["p.bpmn", "route.dmn"]
    case_id = engine.cases.start("tiny", {**REPORT, **data}, actor="a", role="grid_worker", clock=clock)
    with engine.sessions() as session:
        assert session.get(Case, case_id).unit == unit


def test_a_dmn_cell_that_would_never_match_is_refused_and_a_missing_decision_named(engine, clock):
    bad = DMN.replace("<text>[1..5]</text>", "<text>date(\"2026-01-01\")</text>")
    [problem] = rejected(engine, clock, {"route.dmn": bad.encode()}).problems
    assert (problem.file, problem.element_id, problem.code) == ("route.dmn", "b1", "dmn_cell")
    [problem] = rejected(engine, clock, {"p.bpmn": tiny(RULE_TASK)}).problems
    assert (problem.file, problem.element_id, problem.code) == ("p.bpmn", "rt", "decision_missing")
    assert "route" in problem.en


def test_the_http_check_endpoint_answers_problems_with_codes(engine, clock):
    import io
    from api.http.app import create_app
    from tests.api_fixtures import JWT_KEY, bearer
    client = create_app(engine, {"GRIDFLOW_JWT_KEY": JWT_KEY, "TESTING": True}).test_client()
    response = client.post("/definitions/check", headers=bearer("admin"),
                           data={"files": [(io.BytesIO(_loop("x = 1", "x == 1")), "l.bpmn")]},
                           content_type="multipart/form-data")
    assert response.status_code == 200, response.json
    assert response.json["ok"] is False
    [problem] = response.json["problems"]
    assert (problem["file"], problem["element_id"], problem["code"]) == ("l.bpmn", "more", "unbounded_loop")
    assert set(problem["message"]) == {"zh", "en"} and engine.definitions.list() == []
    refused = client.post("/definitions", headers=bearer("admin"),
                          data={"files": [(io.BytesIO(_loop("x = 1", "x == 1")), "l.bpmn")]},
                          content_type="multipart/form-data")
    assert refused.status_code == 422
    [detail] = refused.json["error"]["details"]
    assert (detail["element_id"], detail["code"]) == ("more", "unbounded_loop") and set(detail["messages"]) == {"zh", "en"}


def test_the_corpus_bench_tallies_each_file(tmp_path):
    from bench.bpmn_corpus import run
    (tmp_path / "ok.bpmn").write_bytes(tiny('<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="end"/>'))
    (tmp_path / "loop.bpmn").write_bytes(_loop("x = 1", "x == 1"))
    (tmp_path / "broken.bpmn").write_bytes(b"<bpmn:definitions")
    (tmp_path / "spins.bpmn").write_bytes(_loop("n = n + 1", "n &gt; -1"))
    (tmp_path / "route.dmn").write_bytes(DMN.encode())
    outcome = {name.rsplit("/", 1)[-1]: result["category"] for name, result in run(tmp_path, 60).items()}
    assert outcome == {"ok.bpmn": "accepted", "loop.bpmn": "refused_clear", "broken.bpmn": "refused_clear",
                       "spins.bpmn": "runtime_failure", "route.dmn": "accepted"}


def test_the_cli_checks_without_deploying_and_deploys_a_decision(tmp_path):
    from tests.test_cli import gridflow
    looping, route = tmp_path / "l.bpmn", tmp_path / "route.dmn"
    looping.write_bytes(_loop("x = 1", "x == 1"))
    route.write_bytes(DMN.encode())
    checked = gridflow(tmp_path, "deploy", "--check", str(looping), check=False)
    assert checked.returncode == 2 and "l.bpmn [more]" in checked.stderr and "[unbounded_loop]" in checked.stderr
    assert "no definitions deployed" in gridflow(tmp_path, "definitions").stdout
    assert "no problems" in gridflow(tmp_path, "deploy", "--check", str(route)).stdout
    assert "decision route: deployed as version 1" in gridflow(tmp_path, "deploy", str(route)).stdout
    assert "decision" in gridflow(tmp_path, "definitions").stdout


def test_label_line_breaks_and_number_forms_are_layout_but_a_message_name_is_not():
    relabelled = GRID_MATTER.replace('name="办理 Handle"', 'name="办理&#xD;&#xA;Handle"')
    assert relabelled != GRID_MATTER
    [diff] = compare_files({"g.bpmn": GRID_MATTER}, {"g.bpmn": relabelled})
    assert diff.elements == () and not diff.diagram_changed
    assert canonical_hash(GRID_MATTER) == canonical_hash(relabelled)
    renamed = GRID_MATTER.replace('name="unit_feedback"', 'name="unit&#xA;feedback"')
    assert canonical_hash(GRID_MATTER)[0] != canonical_hash(renamed)[0]


def canonical_hash(text):
    from engine.definitions.canonical import bundle_hash
    return bundle_hash({"f.bpmn": text})
