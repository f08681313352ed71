"""Reading uploaded definition files safely and turning them into SpiffWorkflow specs, with every check
a deploy must pass. A problem is reported with its file and element id; nothing here touches storage."""
from __future__ import annotations

import ast
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

from engine.execution.expressions import Evaluator, ExpressionError, check_expression, check_script
from engine.definitions.forms import FormError, parse_form
from engine.execution.functions import FUNCTION_NAMES
from engine.execution.spiff import GridBpmnParser, timer_due

MAX_FILE_BYTES = 2 * 1024 * 1024
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DMN_NAMESPACES = ("https://www.omg.org/spec/DMN/20191111/MODEL/", "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
                  "https://www.omg.org/spec/DMN/20180521/MODEL/", "http://www.omg.org/spec/DMN/20180521/MODEL/")
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
# county_government: the county party committee and government, whose agreement a matter list change needs
# (条例 §13).
ROLES = ("grid_worker", "grid_agency", "responsible_unit", "county_government")

# What the engine runs and has tests for. A service task would call out of the engine, a cycle timer
# has no clocked implementation, and the rest are not part of how grid matters are handled.
SUPPORTED_BPMN = frozenset("""
definitions process collaboration participant messageFlow laneSet lane childLaneSet flowNodeRef
startEvent endEvent intermediateCatchEvent intermediateThrowEvent boundaryEvent
userTask manualTask scriptTask businessRuleTask callActivity subProcess task
exclusiveGateway parallelGateway inclusiveGateway eventBasedGateway sequenceFlow conditionExpression
timerEventDefinition timeDate timeDuration messageEventDefinition signalEventDefinition
errorEventDefinition escalationEventDefinition terminateEventDefinition
message signal error escalation incoming outgoing extensionElements documentation script text
textAnnotation association dataObject dataObjectReference dataInputAssociation dataOutputAssociation
sourceRef targetRef property
""".split())
DMN_HIT_POLICIES = frozenset({"UNIQUE", "FIRST", "COLLECT"})
STATUS_PROPERTIES = ("status", "status_on_sign", "status_on_return", "status_on_refuse")

_HARDENED = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=False,
                            load_dtd=False)


@dataclass(frozen=True)
class Problem:
    file: str
    element: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}" + (f" [{self.element}]" if self.element else "")
        return f"{where}: {self.message}"


class DefinitionRejected(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass
class Bundle:
    """A process key and everything it needs: its own file, DMN files, files of called processes."""

    key: str
    name: str
    files: dict[str, str]
    spec: object = None
    subprocess_specs: dict = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0" + self.files[name].encode() + b"\0")
        return digest.hexdigest()


def read_xml(name: str, data: bytes) -> etree._Element:
    """Parse untrusted XML: size-capped, no DTD, no entities, no network (XML bombs, XXE)."""
    if len(data) > MAX_FILE_BYTES:
        raise DefinitionRejected([Problem(name, "", f"file is {len(data)} bytes; the limit is {MAX_FILE_BYTES}")])
    try:
        DefusedET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise DefinitionRejected([Problem(name, "", f"unsafe XML refused ({type(exc).__name__})")]) from None
    except DefusedET.ParseError as exc:
        raise DefinitionRejected([Problem(name, "", f"malformed XML: {exc}")]) from None
    try:
        return etree.fromstring(data, _HARDENED)
    except etree.XMLSyntaxError as exc:
        raise DefinitionRejected([Problem(name, "", f"malformed XML: {exc}")]) from None


def is_dmn(root: etree._Element) -> bool:
    return etree.QName(root).namespace in DMN_NAMESPACES


def executable_process_ids(root: etree._Element) -> list[str]:
    return root.xpath("//bpmn:process[@isExecutable='true']/@id", namespaces=NS)


def build(files: dict[str, str], key: str, name_hint: str = "") -> Bundle:
    """Parse and check one bundle; raise DefinitionRejected listing every problem found."""
    roots = {name: read_xml(name, text.encode()) for name, text in files.items()}
    problems: list[Problem] = []
    for name, root in roots.items():
        problems += _check_elements(name, root) if not is_dmn(root) else _check_dmn(name, root)
    if problems:
        raise DefinitionRejected(problems)

    parser = GridBpmnParser()
    try:
        for name, root in roots.items():
            if is_dmn(root):
                parser.add_dmn_xml(root, filename=name)
            else:
                parser.add_bpmn_xml(root, filename=name)
        spec = parser.get_spec(key)
        subprocess_specs = parser.get_subprocess_specs(key)
    except ValidationException as exc:
        raise DefinitionRejected([Problem(exc.file_name or "", exc.id or "", str(exc).splitlines()[0])]) from None
    except SpiffWorkflowException as exc:
        raise DefinitionRejected([Problem("", "", str(exc))]) from None
    missing = sorted(k for k, v in subprocess_specs.items() if v is None)
    if missing:
        raise DefinitionRejected([Problem(_file_of(parser, key), "", f"call activity target {m!r} is not deployed "
                                          "and not in this upload") for m in missing])
    process_parser = parser.get_process_parser(key)
    name = (process_parser.node.get("name") if process_parser is not None else None) or name_hint or key
    bundle = Bundle(key=key, name=name, files=files, spec=spec, subprocess_specs=subprocess_specs)
    problems = _check_tasks(bundle) + check_status_paths(bundle)
    if problems:
        raise DefinitionRejected(problems)
    return bundle


def _file_of(parser, key) -> str:
    process_parser = parser.get_process_parser(key)
    return getattr(process_parser, "filename", "") or ""


def _check_elements(name: str, root: etree._Element) -> list[Problem]:
    problems = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        qname = etree.QName(element)
        if qname.namespace == BPMN_NS:
            if qname.localname not in SUPPORTED_BPMN:
                problems.append(Problem(name, _owner_id(element), f"unsupported element bpmn:{qname.localname}"))
                continue
            problems += _check_expressions_of(name, element, qname.localname)
        elif qname.namespace == SPIFF_NS and qname.localname in ("preScript", "postScript"):
            problems += _checked(name, element, element.text or "", check_script)
        elif qname.namespace == SPIFF_NS and qname.localname == "messagePayload":
            problems += _checked(name, element, element.text or "", check_expression)
    return problems


def _check_expressions_of(name: str, element, localname: str) -> list[Problem]:
    text = (element.text or "").strip()
    if localname in ("conditionExpression", "timeDate", "timeDuration"):
        if not text:
            return [Problem(name, _owner_id(element), f"empty bpmn:{localname}")]
        return _checked(name, element, text, check_expression) or _timer_literal(name, element, localname, text)
    if localname == "script":
        return _checked(name, element, element.text or "", check_script)
    return []


def _timer_literal(name, element, localname: str, text: str) -> list[Problem]:
    """A timer whose expression uses no variable or function has its value now: it is checked as a running
    timer would check it (engine/execution/spiff.py `timer_due`), so an unbounded one is refused at deploy."""
    if localname == "conditionExpression" or any(isinstance(n, (ast.Name, ast.Call)) for n in ast.walk(ast.parse(
            text, mode="eval"))):
        return []
    try:
        value = Evaluator().evaluate(text, {})
        timer_due("duration" if localname == "timeDuration" else "date", value, datetime.now(timezone.utc))
    except ExpressionError as exc:
        return [Problem(name, _owner_id(element), f"bpmn:{localname} {text[:80]!r} refused: {exc}")]
    return []


def _checked(name, element, source, check) -> list[Problem]:
    try:
        check(source, FUNCTION_NAMES)
    except ExpressionError as exc:
        return [Problem(name, _owner_id(element), f"expression {source.strip()!r} refused: {exc}")]
    return []


def _owner_id(element) -> str:
    while element is not None:
        if element.get("id"):
            return element.get("id")
        element = element.getparent()
    return ""


def _check_dmn(name: str, root: etree._Element) -> list[Problem]:
    problems = []
    for table in root.iter("{*}decisionTable"):
        policy = table.get("hitPolicy", "UNIQUE")
        if policy not in DMN_HIT_POLICIES or table.get("aggregation"):
            problems.append(Problem(name, _owner_id(table), f"hit policy {policy}"
                                    f"{' with aggregation' if table.get('aggregation') else ''} is not supported; "
                                    f"use one of {', '.join(sorted(DMN_HIT_POLICIES))}"))
    for tag in ("inputExpression", "inputEntry", "outputEntry"):
        for element in root.iter("{*}" + tag):
            text = "".join(element.itertext()).strip()
            if not text or text == "-":
                continue
            if tag == "inputEntry":
                # SpiffWorkflow evaluates an input cell as a comparison against the input value.
                source = text if text.startswith(("==", "!=", "<", ">", "in ", "not in ")) else f"x == {text}"
                source = source if source.startswith("x ") else f"x {source}"
            else:
                source = text
            problems += _checked(name, element, source, check_expression)
    return problems


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
            problems.append(Problem(file_name, ts.bpmn_id, f"lifecycle={properties(ts)['lifecycle']!r} is not "
                                    f"known; known: {', '.join(lifecycles.NAMES)}"))
            return problems
    statuses = lifecycle_of(bundle.spec)
    for spec in _all_specs(bundle):
        for ts in spec.task_specs.values():
            props = properties(ts)
            element = getattr(ts, "bpmn_id", None) or ts.name
            for prop in STATUS_PROPERTIES:
                if prop in props and props[prop] not in statuses.STATUSES:
                    problems.append(Problem(file_name, element, f"{prop}={props[prop]!r} is not a status; "
                                            f"known: {', '.join(statuses.STATUSES)}"))
            if ts.manual:
                role = role_of(ts)
                if role not in ROLES:
                    problems.append(Problem(file_name, element, f"human task in lane {ts.lane!r}: put it in a lane "
                                            f"for one of the roles {', '.join(ROLES)}"))
                try:
                    parse_form(props.get("form"))
                except FormError as exc:
                    problems.append(Problem(file_name, element, str(exc)))
                for prop in ("unit", "agency_level"):
                    if prop in props and not props[prop].isidentifier():
                        problems.append(Problem(file_name, element, f"{prop} must name a case variable"))
                if "max_returns" in props and not props["max_returns"].isdigit():
                    problems.append(Problem(file_name, element, "max_returns must be a whole number"))
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
            problems.append(Problem(file_name, ts.bpmn_id, f"a {statuses.NAME} case begins as {statuses.INITIAL}: "
                                    f"declare status={statuses.INITIAL} on the start event"))
    for name, ts in declared.items():
        exits = _exits(ts)
        arrival = exits[0]
        for extra in exits[1:]:
            if not statuses.is_lawful(arrival, extra):
                problems.append(Problem(file_name, ts.bpmn_id, f"{arrival} → {extra} is not a lawful move"))
        for target, path in _next_declared(ts):
            dest = properties(target)["status"]
            if not any(statuses.is_lawful(x, dest) for x in exits):
                route = " → ".join(getattr(t, "bpmn_id", None) or t.name for t in path)
                problems.append(Problem(file_name, ts.bpmn_id, f"path {route} would move the matter "
                                        f"{'/'.join(exits)} → {dest}, which the regulation does not allow"))
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
