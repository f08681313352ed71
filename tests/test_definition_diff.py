"""Comparing two definition versions element by element: what a case would do differently, not XML text."""
import re

import pytest

from engine.definitions.bundle import DefinitionRejected
from engine.definitions.diff import compare_files
from engine.errors import NotFound
from tests.conftest import PROCESSES

GRID_MATTER = (PROCESSES / "grid_matter.bpmn").read_text()

DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="d" namespace="http://x">
  <decision id="route" name="route">
    <decisionTable id="table" hitPolicy="UNIQUE">
      <input id="i1" label="类别">
        <inputExpression id="ie1" typeRef="string"><text>category</text></inputExpression></input>
      <output id="o1" name="unit" typeRef="string"/>
      <rule id="r1"><inputEntry id="e1"><text>"road"</text></inputEntry>
        <outputEntry id="oe1"><text>"{unit}"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>"""


def one_file(before: str, after: str, name: str = "grid_matter.bpmn"):
    [diff] = compare_files({name: before}, {name: after})
    return diff


def element(diff, element_id):
    return next(e for e in diff.elements if e.id == element_id)


def changes_of(diff, element_id):
    return {(c.aspect, c.key): (c.before, c.after) for c in element(diff, element_id).changes}


def test_the_same_file_is_unchanged():
    diff = one_file(GRID_MATTER, GRID_MATTER)
    assert (diff.change, diff.elements, diff.diagram_changed) == ("unchanged", (), False)


def test_re_indenting_is_reformatted_and_nothing_else():
    reindented = GRID_MATTER.replace("\n      ", "\n  ")
    assert reindented != GRID_MATTER
    diff = one_file(GRID_MATTER, reindented)
    assert (diff.change, diff.elements, diff.diagram_changed) == ("reformatted", (), False)


def test_a_form_is_compared_field_by_field():
    after = GRID_MATTER.replace('value="verified:bool, within_authority:bool, reason?:str, sub_category?:str"',
                                'value="verified:bool, reason:str, photo?:str, sub_category?:str"')
    diff = one_file(GRID_MATTER, after)
    assert diff.change == "changed"
    verify = element(diff, "verify_register")
    assert (verify.type, verify.change) == ("userTask", "changed")
    assert changes_of(diff, "verify_register") == {
        ("form", "within_authority"): ("bool", None),    # a required field dropped
        ("form", "reason"): ("str?", "str"),             # became required
        ("form", "photo"): (None, "str?"),               # an optional field added
    }
    assert [e.id for e in diff.elements] == ["verify_register"]


def test_conditions_timers_properties_and_scripts_are_named():
    after = (GRID_MATTER
             .replace(">within_authority</bpmn:conditionExpression>",
                      ">within_authority and verified</bpmn:conditionExpression>")
             .replace('>"P7D"</bpmn:timeDuration>', '>"P10D"</bpmn:timeDuration>')
             .replace('<spiffworkflow:property name="max_returns" value="3" />',
                      '<spiffworkflow:property name="max_returns" value="2" />')
             .replace("reopen_count = reopen_count + 1", "reopen_count = reopen_count + 2"))
    diff = one_file(GRID_MATTER, after)
    flow = next(e for e in diff.elements if e.type == "sequenceFlow")
    assert [(c.aspect, c.before, c.after) for c in flow.changes] == [
        ("condition", "within_authority", "within_authority and verified")]
    assert changes_of(diff, "follow_up_window") == {("timer", "timeDuration"): ('"P7D"', '"P10D"')}
    assert changes_of(diff, "handle") == {("property", "max_returns"): ("3", "2")}
    assert changes_of(diff, "reopen") == {("script", "script"): ("reopen_count = reopen_count + 1",
                                                                  "reopen_count = reopen_count + 2")}
    assert len(diff.elements) == 4


def test_moving_a_task_to_another_lane_changes_who_does_it():
    # Move verify_register's lane membership from the grid worker to the agency lane.
    ref = "<bpmn:flowNodeRef>verify_register</bpmn:flowNodeRef>"
    assert GRID_MATTER.count(ref) == 1
    without = GRID_MATTER.replace(ref, "")
    agency = '<bpmn:lane id="Lane_grid_agency" name="网格化服务管理机构 (grid_agency)">'
    after = without.replace(agency, agency + ref)
    diff = one_file(GRID_MATTER, after)
    assert changes_of(diff, "verify_register") == {
        ("lane", "lane"): ("网格员 (grid_worker)", "网格化服务管理机构 (grid_agency)")}


def test_added_removed_and_retyped_elements():
    after = (GRID_MATTER
             .replace('<bpmn:scriptTask id="reopen" name="重新办理 Reopen">',
                      '<bpmn:task id="reopen" name="重新办理 Reopen">', 1)
             .replace("reopen_count + 1</bpmn:script>\n    </bpmn:scriptTask>",
                      "reopen_count + 1</bpmn:script>\n    </bpmn:task>")
             .replace('<bpmn:endEvent id="end_closed" name="已结案 Closed">',
                      '<bpmn:endEvent id="end_archived" name="已归档 Archived">'))
    diff = one_file(GRID_MATTER, after)
    by_id = {e.id: e for e in diff.elements}
    assert (by_id["end_closed"].change, by_id["end_closed"].type, by_id["end_closed"].name) == \
        ("removed", "endEvent", "已结案 Closed")
    assert (by_id["end_archived"].change, by_id["end_archived"].name) == ("added", "已归档 Archived")
    assert changes_of(diff, "reopen")[("type", "type")] == ("scriptTask", "task")


def test_moving_shapes_is_only_a_drawing_change():


    shape = re.search(r'<dc:Bounds x="(\d+)"', GRID_MATTER)
    after = GRID_MATTER[:shape.start(1)] + str(int(shape.group(1)) + 40) + GRID_MATTER[shape.end(1):]
    diff = one_file(GRID_MATTER, after)
    assert (diff.change, diff.elements, diff.diagram_changed) == ("changed", (), True)


def test_dmn_rules_are_compared_cell_by_cell_and_files_added_or_removed():
    before = {"p.bpmn": GRID_MATTER, "route.dmn": DMN.format(unit="城管")}
    after = {"p.bpmn": GRID_MATTER, "route.dmn": DMN.format(unit="住建"), "extra.dmn": DMN.format(unit="水务")}
    files = {f.file: f for f in compare_files(before, after)}
    assert files["p.bpmn"].change == "unchanged"
    route = files["route.dmn"]
    assert (route.kind, route.change) == ("dmn", "changed")
    assert changes_of(route, "r1") == {("cell", "output: unit"): ('"城管"', '"住建"')}
    extra = files["extra.dmn"]
    assert extra.change == "added" and {e.id for e in extra.elements} >= {"route", "table", "r1"}
    assert all(e.change == "added" for e in extra.elements)
    gone = {f.file: f for f in compare_files(after, before)}["extra.dmn"]
    assert gone.change == "removed" and all(e.change == "removed" for e in gone.elements)


def test_a_dmn_input_expression_and_hit_policy_change():
    after = DMN.format(unit="x").replace("<text>category</text>", "<text>sub_category</text>") \
        .replace('hitPolicy="UNIQUE"', 'hitPolicy="COLLECT"')
    diff = one_file(DMN.format(unit="x"), after, "route.dmn")
    assert changes_of(diff, "i1") == {("expression", "inputExpression"): ("category", "sub_category")}
    assert changes_of(diff, "table") == {("attribute", "hitPolicy"): ("UNIQUE", "COLLECT")}


def test_unsafe_xml_is_refused_by_the_same_reader_as_deploy():
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    with pytest.raises(DefinitionRejected):
        compare_files({"a.bpmn": GRID_MATTER}, {"a.bpmn": bomb})


def test_two_deployed_versions_are_compared_from_the_store(engine, clock):
    engine.definitions.deploy({"grid_matter.bpmn": GRID_MATTER.encode()}, "alice", clock)
    changed = GRID_MATTER.replace('value="result:str, final?:bool"', 'value="result:str, final:bool"')
    engine.definitions.deploy({"grid_matter.bpmn": changed.encode()}, "bob", clock)
    diff = engine.definitions.compare("grid_matter", 1, 2)
    assert (diff.key, diff.from_version, diff.to_version, diff.equivalent) == ("grid_matter", 1, 2, False)
    assert diff.counts() == {"added": 0, "removed": 0, "changed": 1}
    as_dict = diff.as_dict()
    assert as_dict["files"][0]["elements"][0]["changes"] == [
        {"aspect": "form", "key": "final", "before": "bool?", "after": "bool"}]
    back = engine.definitions.compare("grid_matter", 2, 1)
    assert back.files[0].elements[0].changes[0].before == "bool"
    assert engine.definitions.compare("grid_matter", 1, 1).equivalent
    with pytest.raises(NotFound):
        engine.definitions.compare("grid_matter", 1, 3)
