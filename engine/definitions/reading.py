"""Reading uploaded definition files safely (size cap, no DTD, entities or network) and what every check shares:
the namespaces, the elements the engine runs, and walking a tree past vendors' extensions."""
from __future__ import annotations


from defusedxml import ElementTree as DefusedET
from defusedxml.common import DefusedXmlException
from lxml import etree


from engine.definitions.problems import DefinitionRejected, problem



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
resourceRef resourceParameter resourceParameterBinding participantMultiplicity interface operation inMessageRef
outMessageRef relationship categoryValueRef operationRef
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
}
for _tag in ("globalTask", "globalUserTask", "globalManualTask", "globalScriptTask", "globalBusinessRuleTask"):
    _INSTEAD[_tag] = ("a global task is reused through a call activity; GridFlow calls processes: draw the task "
                      "in the process, or make it a process of its own", "全局任务通过调用活动复用；GridFlow 只调用流程："
                      "请在流程中画出该任务，或把它做成单独的流程")
_INSTEAD["eventDefinitionRef"] = ("write the event definition inside the event instead of referring to a shared one",
                                  "请把事件定义写在事件内部，而不是引用共享的事件定义")
_INSTEAD["transformation"] = ("a data association with a transformation is not run; compute the value in a script "
                              "task", "不支持带转换表达式的数据关联；请在脚本任务中计算该值")
for _tag in ("correlationKey", "correlationProperty", "correlationPropertyRef", "correlationPropertyBinding",
             "correlationPropertyRetrievalExpression", "correlationSubscription", "messagePath", "dataPath"):
    _INSTEAD[_tag] = ("message correlation is not used: a message goes to one case named by its id "
                      "(`gridflow message CASE NAME`); remove the correlation keys and properties",
                      "不使用消息关联：消息按案件编号发送给一个案件（`gridflow message 案件 消息名`）；请删除关联键和关联属性")
DMN_HIT_POLICIES = frozenset({"UNIQUE", "FIRST", "COLLECT"})
STATUS_PROPERTIES = ("status", "status_on_sign", "status_on_return", "status_on_refuse")
# Elements whose text is an expression of the safe evaluator.
_EXPRESSION_TAGS = ("conditionExpression", "completionCondition", "loopCondition", "loopCardinality")
_SCRIPT_FORMATS = ("", "python", "text/python", "text/x-python", "application/x-python")

_HARDENED = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=False,
                            load_dtd=False)



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


def _owner_id(element) -> str:
    while element is not None:
        if element.get("id"):
            return element.get("id")
        element = element.getparent()
    return ""
