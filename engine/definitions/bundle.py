"""Reading uploaded definition files safely and turning them into SpiffWorkflow specs, with every check
a deploy must pass. A problem is reported with its file and element id, a code and messages in Chinese and
English (engine/definitions/problems.py); nothing here touches storage.

Modelers' exports carry much that means nothing to a case (documentation, data artifacts, vendors'
extensions): it is accepted and left alone. What the engine would run differently from what the drawing
says (an external script, an unbounded loop, a Camunda expression, a timer value that is neither an ISO-8601
literal nor an expression) is refused here, naming the element and what to write instead.
"""
from __future__ import annotations

import ast
import copy
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from defusedxml import ElementTree as DefusedET
from defusedxml.common import DefusedXmlException
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException

from rules import lifecycles

from engine.definitions import canonical, feel
from engine.definitions.forms import FormError, parse_form
from engine.definitions.problems import DefinitionRejected, Problem, problem
from engine.execution.expressions import Evaluator, ExpressionError, check_expression, check_script
from engine.execution.functions import FUNCTION_NAMES
from engine.execution.spiff import (TIMER_KINDS, GridBpmnParser, TimerValueError, check_timer_literal, literal_kind,
                                    timer_due)

__all__ = ["Bundle", "DefinitionRejected", "Problem", "build", "read_xml"]

MAX_FILE_BYTES = 2 * 1024 * 1024
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DMN_NAMESPACES = ("https://www.omg.org/spec/DMN/20191111/MODEL/", "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
                  "https://www.omg.org/spec/DMN/20180521/MODEL/", "http://www.omg.org/spec/DMN/20180521/MODEL/")
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
# county_government: the county party committee and government, whose agreement a matter list change needs
# (条例 §13).
ROLES = ("grid_worker", "grid_agency", "responsible_unit", "county_government")

# What the engine runs. Documentation and data artifacts ride along (they mean nothing to a case); a service
# task would call out of the engine; the rest are not part of how grid matters are handled.
SUPPORTED_BPMN = frozenset("""
definitions process collaboration participant messageFlow laneSet lane childLaneSet flowNodeRef
startEvent endEvent intermediateCatchEvent intermediateThrowEvent boundaryEvent
userTask manualTask scriptTask businessRuleTask callActivity subProcess task receiveTask sendTask
exclusiveGateway parallelGateway inclusiveGateway eventBasedGateway sequenceFlow conditionExpression
timerEventDefinition timeDate timeDuration timeCycle messageEventDefinition signalEventDefinition
errorEventDefinition escalationEventDefinition terminateEventDefinition linkEventDefinition
message signal error escalation incoming outgoing extensionElements documentation script text
textAnnotation association dataObject dataObjectReference dataInputAssociation dataOutputAssociation
sourceRef targetRef property dataState
group category categoryValue itemDefinition dataStore dataStoreReference import extension
ioSpecification dataInput dataOutput inputSet outputSet dataInputRefs dataOutputRefs
optionalInputRefs optionalOutputRefs whileExecutingInputRefs whileExecutingOutputRefs
inputSetRefs outputSetRefs
potentialOwner humanPerformer performer resourceAssignmentExpression formalExpression expression
resource resourceRole
multiInstanceLoopCharacteristics standardLoopCharacteristics loopCardinality loopDataInputRef
loopDataOutputRef inputDataItem outputDataItem completionCondition loopCondition
source target
""".split())
# Said instead of "unsupported" for elements modelers commonly draw.
_INSTEAD = {
    "serviceTask": ("a service task would call out of the engine; model the other system's answer as a message "
                    "(receive task or message event) and let the system send it with `gridflow message`",
                    "服务任务会从引擎调用外部系统；请把对方系统的答复建模为消息（接收任务或消息事件），由该系统通过 `gridflow message` 发送"),
    "complexGateway": ("use exclusive, parallel or inclusive gateways", "请改用排他、并行或包容网关"),
    "transaction": ("transactions (compensation) are not run; use a plain sub-process",
                    "不支持事务子流程（补偿）；请改用普通子流程"),
    "adHocSubProcess": ("ad-hoc sub-processes are not run; draw the order of the tasks",
                        "不支持自由子流程；请画出任务的先后顺序"),
    "compensateEventDefinition": ("compensation is not run", "不支持补偿事件"),
    "conditionalEventDefinition": ("conditional events are not run; use a gateway condition or a message",
                                   "不支持条件事件；请改用网关条件或消息"),
    "cancelEventDefinition": ("cancel events belong to transactions, which are not run", "取消事件属于事务子流程，不支持"),
    "businessRuleTask": ("", ""),
}
DMN_HIT_POLICIES = frozenset({"UNIQUE", "FIRST", "COLLECT"})
STATUS_PROPERTIES = ("status", "status_on_sign", "status_on_return", "status_on_refuse")
# Elements whose text is an expression of the safe evaluator.
_EXPRESSION_TAGS = ("conditionExpression", "completionCondition", "loopCondition", "loopCardinality")
_SCRIPT_FORMATS = ("", "python", "text/python", "text/x-python", "application/x-python")

_HARDENED = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=False,
                            load_dtd=False)


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


def read_xml(name: str, data: bytes) -> etree._Element:
    """Parse untrusted XML: size-capped, no DTD, no entities, no network (XML bombs, XXE)."""
    if len(data) > MAX_FILE_BYTES:
        raise DefinitionRejected([problem(name, "", "file_too_large",
                                          f"file is {len(data)} bytes; the limit is {MAX_FILE_BYTES}",
                                          f"文件大小 {len(data)} 字节，超过上限 {MAX_FILE_BYTES} 字节")])
    try:
        DefusedET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise DefinitionRejected([problem(name, "", "unsafe_xml", f"unsafe XML refused ({type(exc).__name__})",
                                          f"不安全的 XML（{type(exc).__name__}），已拒绝")]) from None
    except DefusedET.ParseError as exc:
        raise DefinitionRejected([problem(name, "", "malformed_xml", f"malformed XML: {exc}",
                                          f"XML 格式错误：{exc}")]) from None
    try:
        return etree.fromstring(data, _HARDENED)
    except etree.XMLSyntaxError as exc:
        raise DefinitionRejected([problem(name, "", "malformed_xml", f"malformed XML: {exc}",
                                          f"XML 格式错误：{exc}")]) from None


def is_dmn(root: etree._Element) -> bool:
    return etree.QName(root).namespace in DMN_NAMESPACES


def is_bpmn(root: etree._Element) -> bool:
    return etree.QName(root).namespace == BPMN_NS and etree.QName(root).localname == "definitions"


def executable_process_ids(root: etree._Element) -> list[str]:
    return root.xpath("//bpmn:process[@isExecutable='true']/@id", namespaces=NS)


def decision_ids(root: etree._Element) -> list[str]:
    return [d.get("id") for d in root.iter("{*}decision") if d.get("id")]


def check_files(roots: dict[str, etree._Element]) -> list[Problem]:
    """The checks that read the XML alone, file by file (no SpiffWorkflow parse)."""
    problems: list[Problem] = []
    for name, root in roots.items():
        if is_dmn(root):
            problems += _check_dmn(name, root)
        elif is_bpmn(root):
            problems += _check_elements(name, root)
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
                parser.add_bpmn_xml(root, filename=name)
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


def _foreign(element) -> bool:
    """Content that is not BPMN's and not GridFlow's: vendors' extensions, left unread."""
    namespace = etree.QName(element).namespace
    return namespace not in (BPMN_NS, SPIFF_NS)


def _walk_checked(root):
    """Every element the checks read: vendors' content inside extensionElements (and elements of foreign
    namespaces anywhere) is skipped with all it contains, even when it nests BPMN-namespaced elements."""
    pending = [root]
    while pending:
        element = pending.pop()
        if not isinstance(element.tag, str):
            continue
        yield element
        is_extensions = etree.QName(element).localname == "extensionElements"
        for child in reversed(element):
            if not isinstance(child.tag, str) or _foreign(child):
                continue
            if is_extensions and etree.QName(child).namespace != SPIFF_NS:
                continue   # a BPMN-namespaced vendor element inside an extension (bpmn:attribute, …)
            pending.append(child)


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
            return [problem(name, owner, "timer_value", f"timer value {text!r} refused: {exc}",
                            f"定时器取值 {text!r} 无效：{exc}")]
        return []
    try:
        check_expression(text, FUNCTION_NAMES)
    except ExpressionError as exc:
        return [problem(name, owner, "timer_value",
                        f"timer value {text!r} is neither an ISO-8601 {wanted} (such as "
                        f"{_EXAMPLE[wanted]}) nor an expression ({exc})",
                        f"定时器取值 {text!r} 既不是 ISO-8601 {_ZH_KIND[wanted]}（例如 {_EXAMPLE[wanted]}），"
                        f"也不是合法表达式（{exc}）")]
    return _timer_literal(name, element, kind, text)


def _timer_literal(name, element, kind: str, text: str) -> list[Problem]:
    """A timer whose expression uses no variable or function has its value now: it is checked as a running
    timer would check it (engine/execution/spiff.py `timer_due`), so an unbounded one is refused at deploy."""
    if kind == "timeCycle" or any(isinstance(n, (ast.Name, ast.Call)) for n in ast.walk(ast.parse(text, mode="eval"))):
        return []
    try:
        value = Evaluator().evaluate(text, {})
        timer_due("duration" if kind == "timeDuration" else "date", value, datetime.now(timezone.utc))
    except ExpressionError as exc:
        return [problem(name, _owner_id(element), "timer_value", f"bpmn:{kind} {text[:80]!r} refused: {exc}",
                        f"bpmn:{kind} {text[:80]!r} 无效：{exc}")]
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


def _owner_id(element) -> str:
    while element is not None:
        if element.get("id"):
            return element.get("id")
        element = element.getparent()
    return ""


# ---- loops in the flow graph ---------------------------------------------------------------------------

_FLOW_CONTAINERS = ("process", "subProcess")
_COUNTER_FUNCTIONS = frozenset({"next_level"})   # a step up a finite ladder of levels


def _flow_nodes(container):
    for child in container:
        if isinstance(child.tag, str) and etree.QName(child).namespace == BPMN_NS:
            local = etree.QName(child).localname
            if local not in ("sequenceFlow", "laneSet", "extensionElements", "documentation", "ioSpecification",
                             "property", "dataObject", "dataObjectReference", "dataStoreReference",
                             "textAnnotation", "association", "group") and child.get("id"):
                yield child


def _counters(node) -> set[str]:
    """Names a node's scripts step by a bounded amount: `n = n + 1`, `n += 1`, `level = next_level(level)`."""
    texts = [e.text or "" for e in node.iter(f"{{{BPMN_NS}}}script", f"{{{SPIFF_NS}}}preScript",
                                              f"{{{SPIFF_NS}}}postScript")]
    found = set()
    for text in texts:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for statement in tree.body:
            if isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name) \
                    and isinstance(statement.op, (ast.Add, ast.Sub)) and isinstance(statement.value, ast.Constant):
                found.add(statement.target.id)
            elif isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                    and isinstance(statement.targets[0], ast.Name):
                target, value = statement.targets[0].id, statement.value
                if isinstance(value, ast.BinOp) and isinstance(value.op, (ast.Add, ast.Sub)) and \
                        {type(value.left), type(value.right)} == {ast.Name, ast.Constant} and \
                        target in {getattr(value.left, "id", None), getattr(value.right, "id", None)}:
                    found.add(target)
                elif isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and \
                        value.func.id in _COUNTER_FUNCTIONS and \
                        any(isinstance(a, ast.Name) and a.id == target for a in value.args):
                    found.add(target)
    return found


def _names_in(text: str) -> set[str]:
    try:
        return {n.id for n in ast.walk(ast.parse(text.strip(), mode="eval")) if isinstance(n, ast.Name)}
    except SyntaxError:
        return set()


def _properties_of(node) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in node.iter(f"{{{SPIFF_NS}}}property")}


def _strongly_connected(nodes: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively; only components that hold a cycle."""
    index, low, on_stack, stack, result, counter = {}, {}, set(), [], [], [0]
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter[0]
                    counter[0] += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(edges.get(succ, ()))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges.get(node, ()):
                    result.append(component)
    return result


def check_loops(name: str, root) -> list[Problem]:
    """Every cycle of sequence flows must pass a bound: a user task with `max_returns`, or a script step of
    a counter that a condition on the cycle tests. Bounded elements are taken out of the graph; a cycle
    that remains is refused, naming its elements."""
    problems = []
    for container in root.iter(*(f"{{{BPMN_NS}}}{c}" for c in _FLOW_CONTAINERS)):
        nodes = {n.get("id"): n for n in _flow_nodes(container)}
        edges: dict[str, list[str]] = {}
        conditions: dict[str, list[str]] = {}
        for flow in container.findall(f"{{{BPMN_NS}}}sequenceFlow"):
            source, target = flow.get("sourceRef"), flow.get("targetRef")
            if source in nodes and target in nodes:
                edges.setdefault(source, []).append(target)
                condition = flow.find(f"{{{BPMN_NS}}}conditionExpression")
                if condition is not None and condition.text:
                    conditions.setdefault(source, []).append(condition.text)
        links: dict[str, list[str]] = {}
        for node_id, node in nodes.items():
            attached = node.get("attachedToRef")
            if attached in nodes:
                edges.setdefault(attached, []).append(node_id)
            for link in node.findall(f"{{{BPMN_NS}}}linkEventDefinition"):
                links.setdefault(link.get("name") or "", []).append(node_id)
        for members in links.values():
            throws = [m for m in members if etree.QName(nodes[m]).localname == "intermediateThrowEvent"]
            catches = [m for m in members if etree.QName(nodes[m]).localname == "intermediateCatchEvent"]
            for throw in throws:
                edges.setdefault(throw, []).extend(catches)
        for component in _strongly_connected(list(nodes), edges):
            members = set(component)
            tested = set().union(*(_names_in(c) for m in component for c in conditions.get(m, [])))
            bounded = {m for m in component if (_properties_of(nodes[m]).get("max_returns") or "").isdigit()
                       or _counters(nodes[m]) & tested}
            rest = [m for m in component if m not in bounded]
            sub_edges = {m: [t for t in edges.get(m, ()) if t in members and t not in bounded] for m in rest}
            for cycle in _strongly_connected(rest, sub_edges):
                order = [n for n in nodes if n in set(cycle)]
                gateway = next((n for n in order if etree.QName(nodes[n]).localname.endswith("Gateway")), order[0])
                listed = " → ".join(order[:8]) + (" …" if len(order) > 8 else "")
                problems.append(problem(
                    name, gateway, "unbounded_loop",
                    f"the loop through {listed} has no bound: count the rounds in a script on it (n = n + 1) and "
                    f"leave the loop by a condition on that count, or put max_returns on a user task in it",
                    f"经过 {listed} 的循环没有上限：请在循环中用脚本计数（n = n + 1）并以该计数的条件退出循环，"
                    "或在其中的用户任务上设置 max_returns"))
    return problems


# ---- DMN -----------------------------------------------------------------------------------------------

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
        text = "".join(element.itertext()).strip()
        if text:
            problems += _dmn_checked(name, element, text, feel.value(text))
    for tag, translate in (("inputEntry", feel.input_cell), ("outputEntry", feel.output_cell)):
        for element in root.iter("{*}" + tag):
            text = "".join(element.itertext()).strip()
            try:
                source = translate(text)
            except feel.FeelError as exc:
                problems.append(problem(name, _owner_id(element), "dmn_cell", f"cell {text!r} refused: {exc}",
                                        f"单元格 {text!r} 无法使用：{exc}"))
                continue
            if source:
                problems += _dmn_checked(name, element, text, source.replace("?", "dmninputexpr"))
    return problems


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


def _all_specs(bundle: Bundle):
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


def _check_tasks(bundle: Bundle) -> list[Problem]:
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


def check_status_paths(bundle: Bundle) -> list[Problem]:
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
