"""Deploying definitions: idempotent by content, versioned on change, and refused with a named problem."""
import pytest

from engine.definitions.bundle import DefinitionRejected
from tests.conftest import PROCESSES, grid_matter_upload

BPMN_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="http://x">"""


def tiny(body: str, pid: str = "tiny", lanes: str = "") -> bytes:
    """A small executable process: start → (body) → end, `body` wired from 'start' to 'end' by its flows."""
    return f"""{BPMN_HEAD}
  <bpmn:process id="{pid}" isExecutable="true">{lanes}
    <bpmn:startEvent id="start"/>
    {body}
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>""".encode()


LANE = """<bpmn:laneSet id="ls"><bpmn:lane id="l1" name="网格员 (grid_worker)">
  <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>t1</bpmn:flowNodeRef>
  <bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>"""

USER_TASK = """<bpmn:userTask id="t1" name="Do it"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="t1"/>
    <bpmn:sequenceFlow id="f2" sourceRef="t1" targetRef="end"/>"""


def rejected(engine, clock, uploads) -> DefinitionRejected:
    before = engine.definitions.list()
    with pytest.raises(DefinitionRejected) as info:
        engine.definitions.deploy(uploads, "admin", clock)
    assert engine.definitions.list() == before, "a rejected deploy must change nothing"
    return info.value


def test_same_content_is_a_noop_and_changed_content_is_the_next_version(engine, clock):
    first = engine.definitions.deploy(grid_matter_upload(), "alice", clock)
    assert [(o.key, o.version, o.created) for o in first] == [("grid_matter", 1, True)]
    again = engine.definitions.deploy(grid_matter_upload(), "bob", clock)
    assert [(o.version, o.created) for o in again] == [(1, False)]
    assert "unchanged" in str(again[0])
    changed = grid_matter_upload()["grid_matter.bpmn"].replace(b"Grid matter handling", b"Grid matter handling v2")
    clock.advance(hours=1)
    second = engine.definitions.deploy({"grid_matter.bpmn": changed}, "carol", clock)
    assert [(o.version, o.created) for o in second] == [(2, True)]
    listed = engine.definitions.list("grid_matter")
    assert [(d.version, d.deployed_by) for d in listed] == [(1, "alice"), (2, "carol")]
    assert listed[0].content_hash != listed[1].content_hash
    assert listed[1].deployed_at > listed[0].deployed_at
    assert listed[1].deployed_at.tzinfo is not None


def test_the_shipped_process_deploys_and_carries_its_drawing(engine, clock):
    text = (PROCESSES / "grid_matter.bpmn").read_text()
    assert "bpmndi:BPMNDiagram" in text and "bpmndi:BPMNShape" in text
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    assert engine.definitions.find("grid_matter").version == 1


def test_malformed_xml_names_the_file(engine, clock):
    error = rejected(engine, clock, {"broken.bpmn": b"<bpmn:definitions"})
    assert error.problems[0].file == "broken.bpmn" and "malformed XML" in error.problems[0].message


def test_xml_bomb_and_external_entities_are_refused(engine, clock):
    bomb = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
      <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><a>&lol2;</a>"""
    assert "unsafe XML" in str(rejected(engine, clock, {"bomb.bpmn": bomb}))
    xxe = b"""<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>"""
    assert "unsafe XML" in str(rejected(engine, clock, {"xxe.bpmn": xxe}))


def test_oversized_file_is_refused(engine, clock):
    huge = tiny(USER_TASK, lanes=LANE).replace(b"<bpmn:process", b"<!--" + b"x" * 3_000_000 + b"--><bpmn:process")
    assert "limit" in str(rejected(engine, clock, {"huge.bpmn": huge}))


@pytest.mark.parametrize("element,tag", [
    ('<bpmn:serviceTask id="svc"/>', "serviceTask"),
    ('<bpmn:intermediateCatchEvent id="svc"><bpmn:timerEventDefinition id="td">'
     '<bpmn:timeCycle>"R3/PT1H"</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>',
     "timeCycle"),
    ('<bpmn:complexGateway id="svc"/>', "complexGateway"),
])
def test_unsupported_element_is_named(engine, clock, element, tag):
    body = f"""{element}
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="svc"/>
    <bpmn:sequenceFlow id="f2" sourceRef="svc" targetRef="end"/>"""
    problem = rejected(engine, clock, {"svc.bpmn": tiny(body)}).problems[0]
    assert (problem.file, problem.element) == ("svc.bpmn", "svc" if tag != "timeCycle" else "td")
    assert tag in problem.message


def test_missing_call_activity_target_is_named(engine, clock):
    body = """<bpmn:callActivity id="call" calledElement="nowhere"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call"/>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="end"/>"""
    assert "nowhere" in str(rejected(engine, clock, {"call.bpmn": tiny(body)}))


def test_call_activity_target_from_the_same_upload_is_bundled(engine, clock):
    body = """<bpmn:callActivity id="call" calledElement="child"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call"/>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="end"/>"""
    child = tiny('<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="end"/>', pid="child")
    outcomes = engine.definitions.deploy({"parent.bpmn": tiny(body, pid="parent"), "child.bpmn": child}, "a", clock)
    assert sorted(o.key for o in outcomes) == ["child", "parent"]
    parent = engine.definitions.find("parent")
    assert sorted(engine.definitions.files(parent.id)) == ["child.bpmn", "parent.bpmn"]


@pytest.mark.parametrize("condition", [
    "().__class__.__base__.__subclasses__()",
    "__import__('os').system('id')",
    "open('/etc/passwd').read()",
    "x.real",
    "9 ** 99",
    "[c for c in 'abc']",
    "(lambda: 1)()",
])
def test_expressions_outside_the_whitelist_are_refused_at_deploy(engine, clock, condition):
    body = f"""<bpmn:exclusiveGateway id="gw" default="f3"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="gw"/>
    <bpmn:sequenceFlow id="f2" sourceRef="gw" targetRef="end">
      <bpmn:conditionExpression>{condition.replace("<", "&lt;")}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f3" sourceRef="gw" targetRef="end"/>"""
    problem = rejected(engine, clock, {"evil.bpmn": tiny(body)}).problems[0]
    assert problem.element == "f2" and "refused" in problem.message


def test_expression_that_does_not_parse_is_refused(engine, clock):
    body = """<bpmn:exclusiveGateway id="gw" default="f3"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="gw"/>
    <bpmn:sequenceFlow id="f2" sourceRef="gw" targetRef="end">
      <bpmn:conditionExpression>a ==</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f3" sourceRef="gw" targetRef="end"/>"""
    assert rejected(engine, clock, {"syntax.bpmn": tiny(body)}).problems[0].element == "f2"


def test_unsafe_script_task_is_refused(engine, clock):
    body = """<bpmn:scriptTask id="s"><bpmn:script>import os
os.system("rm -rf /")</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="s"/>
    <bpmn:sequenceFlow id="f2" sourceRef="s" targetRef="end"/>"""
    assert rejected(engine, clock, {"script.bpmn": tiny(body)}).problems[0].element == "s"


DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="d" namespace="http://x">
  <decision id="route" name="route">
    <decisionTable id="table" hitPolicy="{policy}">
      <input id="i1"><inputExpression id="ie1" typeRef="string"><text>category</text></inputExpression></input>
      <output id="o1" name="unit" typeRef="string"/>
      <rule id="r1"><inputEntry id="e1"><text>"road"</text></inputEntry>
        <outputEntry id="oe1"><text>"城管"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>"""


def test_unsupported_dmn_hit_policy_is_refused(engine, clock):
    body = """<bpmn:businessRuleTask id="rt"><bpmn:extensionElements>
      <spiffworkflow:calledDecisionId>route</spiffworkflow:calledDecisionId></bpmn:extensionElements>
    </bpmn:businessRuleTask>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="rt"/>
    <bpmn:sequenceFlow id="f2" sourceRef="rt" targetRef="end"/>"""
    uploads = {"p.bpmn": tiny(body), "route.dmn": DMN.format(policy="RULE ORDER").encode()}
    problem = rejected(engine, clock, uploads).problems[0]
    assert (problem.file, problem.element) == ("route.dmn", "table") and "RULE ORDER" in problem.message
    uploads["route.dmn"] = DMN.format(policy="UNIQUE").encode()
    assert [o.key for o in engine.definitions.deploy(uploads, "a", clock)] == ["tiny"]


def test_human_task_outside_a_role_lane_is_refused(engine, clock):
    problem = rejected(engine, clock, {"nolane.bpmn": tiny(USER_TASK)}).problems[0]
    assert problem.element == "t1" and "lane" in problem.message


def test_bad_form_declaration_is_refused(engine, clock):
    body = USER_TASK.replace('<bpmn:userTask id="t1" name="Do it"/>', """<bpmn:userTask id="t1" name="Do it">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="form" value="ok:bool, broken"/></spiffworkflow:properties>
      </bpmn:extensionElements></bpmn:userTask>""")
    assert "bad form field" in str(rejected(engine, clock, {"form.bpmn": tiny(body, lanes=LANE)}))


def _status(element: str, status: str) -> str:
    return (f'<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name="status" '
            f'value="{status}"/></spiffworkflow:properties></bpmn:extensionElements>')


def test_a_path_that_would_close_a_dispatched_matter_without_feedback_is_refused(engine, clock):
    xml = f"""{BPMN_HEAD}
  <bpmn:process id="shortcut" isExecutable="true">
    <bpmn:startEvent id="start">{_status("start", "reported")}</bpmn:startEvent>
    <bpmn:intermediateThrowEvent id="registered">{_status("", "registered")}</bpmn:intermediateThrowEvent>
    <bpmn:intermediateThrowEvent id="dispatched">{_status("", "dispatched")}</bpmn:intermediateThrowEvent>
    <bpmn:intermediateThrowEvent id="closed">{_status("", "closed")}</bpmn:intermediateThrowEvent>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="registered"/>
    <bpmn:sequenceFlow id="f2" sourceRef="registered" targetRef="dispatched"/>
    <bpmn:sequenceFlow id="f3" sourceRef="dispatched" targetRef="closed"/>
    <bpmn:sequenceFlow id="f4" sourceRef="closed" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>""".encode()
    problem = rejected(engine, clock, {"shortcut.bpmn": xml}).problems[0]
    assert problem.element == "dispatched"
    assert "dispatched → closed" in problem.message and "path dispatched → closed" in problem.message


def test_unknown_status_name_is_refused(engine, clock):
    xml = tiny('<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="end"/>').replace(
        b'<bpmn:startEvent id="start"/>', f'<bpmn:startEvent id="start">{_status("", "teleported")}'
        f'</bpmn:startEvent>'.encode())
    assert "teleported" in str(rejected(engine, clock, {"s.bpmn": xml}))


def test_a_file_without_an_executable_process_is_refused(engine, clock):
    xml = tiny('<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="end"/>').replace(
        b'isExecutable="true"', b'isExecutable="false"')
    assert "no executable process" in str(rejected(engine, clock, {"n.bpmn": xml}))
