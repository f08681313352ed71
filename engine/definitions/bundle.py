"""Turning uploaded definition files into SpiffWorkflow specs, with every check a deploy must pass: the
files read safely (`reading`), single elements (`element_checks`), loops (`loops`), decision tables (`dmn`),
and the parsed specs' lanes, forms and status paths (`status_paths`); references between files here. A problem is reported with its file and element id, a code and messages in Chinese and
English (engine/definitions/problems.py); nothing here touches storage.

Modelers' exports carry much that means nothing to a case (documentation, data artifacts, vendors'
extensions): it is accepted and left alone. What the engine would run differently from what the drawing
says (an external script, an unbounded loop, a Camunda expression, a timer value that is neither an ISO-8601
literal nor an expression) is refused here, naming the element and what to write instead.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException


from engine.definitions import canonical
from engine.definitions.problems import DefinitionRejected, Problem, problem
from engine.definitions.reading import (
    BPMN_NS, NS, _owner_id, decision_ids, executable_process_ids, is_bpmn, is_dmn, read_xml,
)
from engine.definitions.element_checks import _check_elements
from engine.definitions.loops import _FLOW_CONTAINERS, check_loops
from engine.definitions.dmn import _check_dmn, translated_dmn
from engine.definitions.status_paths import _check_tasks, check_status_paths, lifecycle_of
from engine.execution.spiff import (
    GridBpmnParser,
)


# The deploy checks' entry points; the readers they share are re-exported for the callers that need both.
__all__ = ["Bundle", "DefinitionRejected", "Problem", "build", "check_files", "check_references", "decision_ids",
           "executable_process_ids", "is_bpmn", "is_dmn", "lifecycle_of", "read_xml"]

@dataclass
class Bundle:
    """A process key and everything it needs: its own file, DMN files, files of called processes."""

    key: str
    name: str
    files: dict[str, str]
    spec: object = None
    subprocess_specs: dict = field(default_factory=dict)
    kind: str = "process"     # process, or decision (a DMN file deployed for definitions to call)

    @property
    def content_hash(self) -> str:
        """The hash of what the files mean (canonical/__init__ says what that leaves out)."""
        return canonical.bundle_hash(self.files)[0]

    @property
    def diagram_hash(self) -> str:
        return canonical.bundle_hash(self.files)[1]


def check_files(roots: dict[str, etree._Element]) -> list[Problem]:
    """The checks that read the XML alone, file by file (no SpiffWorkflow parse)."""
    problems: list[Problem] = []
    for name, root in roots.items():
        if is_dmn(root):
            problems += _check_dmn(name, root)
        elif is_bpmn(root):
            problems += _check_elements(name, root)
            problems += _check_data_stores(name, root)
            problems += _check_links(name, root)
            problems += check_loops(name, root)
        else:
            problems.append(problem(name, "", "not_bpmn", f"not a BPMN or DMN file (root element "
                                    f"{etree.QName(root).localname!r} in {etree.QName(root).namespace!r})",
                                    "不是 BPMN 或 DMN 文件"))
    return problems


def build(files: dict[str, str], key: str, name_hint: str = "", kind: str = "process") -> Bundle:
    """Parse and check one bundle; raise DefinitionRejected listing every problem found."""
    roots = {name: read_xml(name, text.encode()) for name, text in files.items()}
    problems = check_files(roots)
    if kind != "decision":
        problems += check_references(roots, key)
    if problems:
        raise DefinitionRejected(problems)
    if kind == "decision":
        return _build_decision(files, roots, key)

    parser = GridBpmnParser()
    main_file = next(iter(files))
    try:
        for name, root in roots.items():
            if is_dmn(root):
                parser.add_dmn_xml(translated_dmn(root), filename=name)
            else:
                parser.add_bpmn_xml(_for_spiff(root), filename=name)
        spec = parser.get_spec(key)
        subprocess_specs = parser.get_subprocess_specs(key)
    except ValidationException as exc:
        raise DefinitionRejected([_from_spiff(exc, main_file)]) from None
    except SpiffWorkflowException as exc:
        raise DefinitionRejected([problem(main_file, "", "parser", f"SpiffWorkflow refused the process: {exc}",
                                          f"流程解析失败：{exc}")]) from None
    except (KeyError, AttributeError, TypeError, ValueError, IndexError) as exc:
        raise DefinitionRejected([problem(main_file, "", "parser", f"the process could not be read "
                                          f"({type(exc).__name__}: {exc})",
                                          f"流程无法读取（{type(exc).__name__}：{exc}）")]) from None
    missing = sorted(k for k, v in subprocess_specs.items() if v is None)
    if missing:
        raise DefinitionRejected([_missing_call(roots, m) for m in missing])
    process_parser = parser.get_process_parser(key)
    name = (process_parser.node.get("name") if process_parser is not None else None) or name_hint or key
    bundle = Bundle(key=key, name=name, files=files, spec=spec, subprocess_specs=subprocess_specs)
    problems = _check_tasks(bundle) + check_status_paths(bundle)
    if problems:
        raise DefinitionRejected(problems)
    return bundle


def _build_decision(files: dict[str, str], roots, key: str) -> Bundle:
    """A DMN file on its own: parsed by SpiffWorkflow's DMN parser so that a broken table is refused now."""
    from SpiffWorkflow.dmn.parser.DMNParser import DMNParser
    [(name, root)] = roots.items()
    parser = GridBpmnParser()
    try:
        parser.add_dmn_xml(translated_dmn(root), filename=name)
        dmn = parser.dmn_parsers[key]
        dmn.parse()
    except ValidationException as exc:
        raise DefinitionRejected([_from_spiff(exc, name)]) from None
    except (SpiffWorkflowException, KeyError, AttributeError, TypeError, ValueError, IndexError) as exc:
        raise DefinitionRejected([problem(name, key, "dmn", f"the decision could not be read "
                                          f"({type(exc).__name__}: {exc})",
                                          f"决策表无法读取（{type(exc).__name__}：{exc}）")]) from None
    assert isinstance(dmn, DMNParser)
    table_name = root.xpath("//*[local-name()='decision'][@id=$k]/@name", k=key)
    return Bundle(key=key, name=(table_name[0] if table_name else "") or key, files=files, spec=dmn.decision,
                  kind="decision")


def check_references(roots: dict, key: str) -> list[Problem]:
    """Every call activity's process and every business rule task's decision is in the bundle, and no process
    calls itself, directly or through others."""
    processes = {pid: (name, node) for name, root in roots.items() if is_bpmn(root)
                 for node in root.xpath("//bpmn:process", namespaces=NS) for pid in [node.get("id")]}
    decisions = {d for root in roots.values() if is_dmn(root) for d in decision_ids(root)}
    problems, calls = [], {}
    for pid, (name, node) in processes.items():
        for call in node.xpath(".//bpmn:callActivity", namespaces=NS):
            target = (call.get("calledElement") or "").strip()
            if not target:
                problems.append(problem(name, call.get("id"), "call_target_missing",
                                        f"call activity {call.get('id')!r} names no process: set calledElement to "
                                        "the id of the process it calls",
                                        f"调用活动 {call.get('id')!r} 未指明被调用的流程：请把 calledElement 设为该流程的 id"))
            elif target not in processes:
                problems.append(_missing_call({name: node.getroottree().getroot()}, target))
            else:
                calls.setdefault(pid, []).append((target, name, call.get("id")))
        for task in node.xpath(".//bpmn:businessRuleTask", namespaces=NS):
            refs = [t.strip() for t in task.xpath(".//spiffworkflow:calledDecisionId/text()", namespaces=NS)]
            if not refs:
                problems.append(problem(name, task.get("id"), "decision_missing",
                                        f"business rule task {task.get('id')!r} names no decision: add "
                                        "spiffworkflow:calledDecisionId with the DMN decision's id",
                                        f"业务规则任务 {task.get('id')!r} 未指明决策：请添加 spiffworkflow:calledDecisionId，"
                                        "值为 DMN 决策的 id"))
            for ref in refs:
                if ref not in decisions:
                    problems.append(problem(name, task.get("id"), "decision_missing",
                                            f"business rule task {task.get('id')!r} calls decision {ref!r}, which is "
                                            f"neither in this upload nor deployed: deploy its DMN file together with "
                                            f"{name} (`gridflow deploy {name} TABLE.dmn`) or deploy it first",
                                            f"业务规则任务 {task.get('id')!r} 调用的决策 {ref!r} 既不在本次上传中也未部署："
                                            f"请与 {name} 一起部署其 DMN 文件，或先部署该文件"))
    # A process that calls itself would start itself again for ever.
    for start in calls:
        stack, seen = [(start, [])], set()
        while stack:
            pid, path = stack.pop()
            for target, name, call_id in calls.get(pid, ()):
                if target == start:
                    problems.append(problem(name, call_id, "recursive_call",
                                            f"call activity {call_id!r} calls {target!r}, which is already running it "
                                            f"({' → '.join([start, *path, target])}): a process may not call itself",
                                            f"调用活动 {call_id!r} 调用了 {target!r}，形成递归调用"
                                            f"（{' → '.join([start, *path, target])}）：流程不能调用自身"))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, path + [target]))
    unique = []
    for p in problems:
        if p not in unique:
            unique.append(p)
    return unique


def _for_spiff(root):
    """The tree SpiffWorkflow parses.

    Data stores are drawn to show another system (the check refuses any a task reads or writes);
    SpiffWorkflow would want an implementation for each, so they are left out. A link event is a go-to on
    the same page, which SpiffWorkflow does not know: the throw event gets a sequence flow to its catch event
    and both become plain events."""
    stores = root.xpath("//bpmn:dataStore | //bpmn:dataStoreReference", namespaces=NS)
    links = root.xpath("//bpmn:linkEventDefinition", namespaces=NS)
    specs = root.xpath("//bpmn:ioSpecification", namespaces=NS)
    if not stores and not links and not specs:
        return root
    root = copy.deepcopy(root)
    for node in root.xpath("//bpmn:dataStore | //bpmn:dataStoreReference", namespaces=NS):
        node.getparent().remove(node)
    # An ioSpecification documents what a task uses; SpiffWorkflow would hide the rest of the case's data
    # from the task and fail a case that lacks one. A GridFlow task sees the case's data and its form says
    # what a completion carries, so it is left out, with the data associations to its inputs and outputs.
    declared = set(root.xpath("//bpmn:ioSpecification/bpmn:dataInput/@id | "
                              "//bpmn:ioSpecification/bpmn:dataOutput/@id", namespaces=NS))
    for node in root.xpath("//bpmn:ioSpecification", namespaces=NS):
        node.getparent().remove(node)
    for association in root.xpath("//bpmn:dataInputAssociation | //bpmn:dataOutputAssociation", namespaces=NS):
        refs = {(r.text or "").strip() for r in association.xpath("bpmn:sourceRef | bpmn:targetRef", namespaces=NS)}
        if refs & declared:
            association.getparent().remove(association)
    for container in root.iter(*(f"{{{BPMN_NS}}}{c}" for c in _FLOW_CONTAINERS)):
        for throw, catch in _link_pairs(container):
            flow = etree.SubElement(container, f"{{{BPMN_NS}}}sequenceFlow")
            flow.set("id", f"{throw.get('id')}__link__{catch.get('id')}")
            flow.set("sourceRef", throw.get("id"))
            flow.set("targetRef", catch.get("id"))
    for link in root.xpath("//bpmn:linkEventDefinition", namespaces=NS):
        link.getparent().remove(link)
    return root


def _link_pairs(container):
    """(throw event, catch event) of the link events directly in a process or sub-process, by link name."""
    catches: dict[str, list] = {}
    throws = []
    for event in container:
        if not isinstance(event.tag, str):
            continue
        link = event.find(f"{{{BPMN_NS}}}linkEventDefinition")
        if link is None:
            continue
        if etree.QName(event).localname == "intermediateCatchEvent":
            catches.setdefault(link.get("name") or "", []).append(event)
        elif etree.QName(event).localname == "intermediateThrowEvent":
            throws.append((event, link.get("name") or ""))
    return [(throw, catches[name][0]) for throw, name in throws if len(catches.get(name, ())) == 1]


def _check_links(name: str, root) -> list[Problem]:
    problems = []
    for container in root.iter(*(f"{{{BPMN_NS}}}{c}" for c in _FLOW_CONTAINERS)):
        paired = {t.get("id") for t, _ in _link_pairs(container)}
        for event in container:
            if not isinstance(event.tag, str) or etree.QName(event).localname != "intermediateThrowEvent":
                continue
            link = event.find(f"{{{BPMN_NS}}}linkEventDefinition")
            if link is not None and event.get("id") not in paired:
                problems.append(problem(name, event.get("id"), "link_event",
                                        f"the link event {event.get('id')!r} (link {link.get('name')!r}) needs exactly "
                                        "one catching link event of the same name in the same process or sub-process",
                                        f"链接事件 {event.get('id')!r}（链接 {link.get('name')!r}）须在同一流程或子流程中"
                                        "有且只有一个同名的捕获链接事件"))
    return problems


def _check_data_stores(name: str, root) -> list[Problem]:
    stores = set(root.xpath("//bpmn:dataStoreReference/@id", namespaces=NS))
    problems = []
    for association in root.xpath("//bpmn:dataInputAssociation | //bpmn:dataOutputAssociation", namespaces=NS):
        refs = {(r.text or "").strip() for r in association.xpath("bpmn:sourceRef | bpmn:targetRef", namespaces=NS)}
        if refs & stores:
            owner = _owner_id(association.getparent())
            problems.append(problem(name, owner, "data_store",
                                    f"{owner!r} reads or writes the data store {', '.join(sorted(refs & stores))}: "
                                    "GridFlow keeps a case's data in the case; a data store may be drawn, but not "
                                    "connected to a task (use an association line, or a message from that system)",
                                    f"{owner!r} 读写数据存储 {', '.join(sorted(refs & stores))}：案件数据保存在案件中；"
                                    "数据存储可以画出，但不能与任务做数据关联（请改用关联线，或由该系统发送消息）"))
    return problems


def _missing_call(roots, missing: str) -> Problem:
    """A call activity (or business rule task) whose process or decision is neither uploaded nor deployed."""
    for name, root in roots.items():
        for call in root.xpath("//bpmn:callActivity[@calledElement=$m]", m=missing, namespaces=NS):
            return problem(name, call.get("id"), "call_target_missing",
                           f"call activity {call.get('id')!r} calls process {missing!r}, which is neither in this "
                           f"upload nor deployed. If it is in another file, deploy the two files together "
                           f"(`gridflow deploy {name} OTHER.bpmn`, or both in one upload), or deploy that file first",
                           f"调用活动 {call.get('id')!r} 调用的流程 {missing!r} 既不在本次上传中，也未部署。"
                           f"若它在另一个文件中，请把两个文件一起部署（`gridflow deploy {name} 另一文件.bpmn`），或先部署那个文件")
    return problem(next(iter(roots)), "", "call_target_missing",
                   f"{missing!r} is called but is neither in this upload nor deployed; deploy its file together "
                   "with this one", f"{missing!r} 被调用，但既不在本次上传中也未部署；请与本文件一起部署")


# SpiffWorkflow's own words, and what to tell a modeler instead.
_SPIFF_MESSAGES = (
    ("Multiple outgoing flows are not supported", "multiple_outgoing",
     "{id} has several outgoing sequence flows; GridFlow takes one path out of a task or event: put a parallel "
     "gateway after it (all paths) or an exclusive gateway with conditions (one path)",
     "{id} 有多条流出的顺序流；任务或事件只能有一条出口：请在其后放置并行网关（全部路径）或带条件的排他网关（一条路径）"),
    ("No start event", "no_start_event", "the process {id} has no start event: draw one",
     "流程 {id} 没有开始事件，请添加"),
    ("Duplicate process ID", "duplicate_process", "the process id {id} appears twice in the upload; give each "
     "process its own id", "流程 id {id} 在上传中出现了两次；请为每个流程使用不同的 id"),
    ("is not executable", "not_executable", "the called process {id} is not executable: set isExecutable=\"true\"",
     "被调用的流程 {id} 不可执行：请设置 isExecutable=\"true\""),
    ("Time Specification Error", "timer_value", "the timer of {id} cannot be read: {message}",
     "{id} 的定时器无法读取：{message}"),
    ("Could not find a decision", "decision_missing", "{id} calls a decision that is neither in this upload nor "
     "deployed; deploy its DMN file with this one ({message})",
     "{id} 调用的决策既不在本次上传中也未部署；请与本文件一起部署其 DMN 文件（{message}）"),
    ("A SubWorkflow Must contain an End event", "subprocess_end", "the sub-process {id} has no end event: draw "
     "one inside it", "子流程 {id} 内没有结束事件，请添加"),
    ("Exactly one start event is required in a SubWorkflow", "subprocess_start", "the sub-process {id} needs "
     "exactly one start event inside it (an empty or collapsed sub-process runs nothing: draw its content, or make "
     "it a plain task)", "子流程 {id} 内须有且只有一个开始事件（空的或折叠的子流程无法运行：请画出其内容，或改为普通任务）"),
    ("Non-default exclusive outgoing sequence flow without condition", "flow_condition", "the sequence flow {id} "
     "leaves an exclusive gateway with no condition and is not its default: give it a condition, or make it the "
     "gateway's default flow", "顺序流 {id} 从排他网关流出，既无条件也不是默认流：请为其设置条件，或设为网关的默认流"),
    ("A multiinstance task must specify", "multi_instance", "the multi-instance task {id} needs exactly one of "
     "loopCardinality or loopDataInputRef", "多实例任务 {id} 须且只须指定 loopCardinality 或 loopDataInputRef 之一"),
    ("Cannot resolve dataInputAssociation", "data_association", "{id}: {message}; the data object it names must "
     "be declared in the same process", "{id}：数据关联无法解析（{message}），其引用的数据对象须在同一流程中声明"),
    ("Cannot resolve dataOutputAssociation", "data_association", "{id}: {message}; the data object it names must "
     "be declared in the same process", "{id}：数据关联无法解析（{message}），其引用的数据对象须在同一流程中声明"),
)


def _from_spiff(exc: ValidationException, main_file: str) -> Problem:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    message = message.split(". Error is")[0]
    element = exc.id or ""
    file = exc.file_name or main_file
    for marker, code, en, zh in _SPIFF_MESSAGES:
        if marker in message:
            where = repr(element) if element else "an element"
            return problem(file, element, code, en.format(id=where, message=message),
                           zh.format(id=where, message=message))
    return problem(file, element, "parser", f"SpiffWorkflow could not use {element or 'this file'!r}: {message}",
                   f"无法解析 {element or '该文件'}：{message}")


def _file_of(parser, key) -> str:
    process_parser = parser.get_process_parser(key)
    return getattr(process_parser, "filename", "") or ""
