"""The canonical form of a definition file, so that the same meaning hashes the same.

A modeler re-saving a file unchanged re-indents it, reorders attributes and namespace declarations, renames
prefixes, drops attributes whose value is the schema's default (bpmn-js drops `cancelActivity="true"`) and
stamps its own name in `exporter`. None of that changes what a case does. The canonical form is XML C14N 2.0
(lxml) of the file with:

- insignificant whitespace removed (text that is only whitespace, and around texts),
- namespace prefixes rewritten (`bpmn:`, `bpmn2:` or a default namespace read the same),
- comments, `exporter`/`exporterVersion`, and attributes equal to their schema default removed,
- line breaks and runs of spaces in element labels (`name`) read as one space, except in names the engine
  looks up (messages, signals, errors, escalations, lanes),
- `incoming`/`outgoing` references removed (they repeat what the sequence flows say),
- `xsi:type` removed from expression elements (the engine reads every one as a formal expression),
- the drawing (BPMN DI, DMN DI) set apart: it has a form and a hash of its own, with coordinates compared
  as numbers (`100` and `100.0` are the same point, any numeric attribute likewise), labels' line breaks as
  spaces, and without `xsi:type` (`dc:Point` on a waypoint).

The content hash of a bundle covers the meaning of its files, not their names; the diagram hash covers the
drawings.
"""
from __future__ import annotations

import copy
import hashlib

from lxml import etree

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
DIAGRAM_NAMESPACES = frozenset({
    "http://www.omg.org/spec/BPMN/20100524/DI", "http://www.omg.org/spec/DD/20100524/DC",
    "http://www.omg.org/spec/DD/20100524/DI", "https://www.omg.org/spec/DMN/20191111/DMNDI/",
    "http://www.omg.org/spec/DMN/20180521/DMNDI/", "http://www.omg.org/spec/DMN/20180521/DI/",
    "http://www.omg.org/spec/DMN/20180521/DC/"})
_ACTIVITY = {"isForCompensation": "false", "startQuantity": "1", "completionQuantity": "1"}
_GATEWAY = {"gatewayDirection": "Unspecified"}
# Attribute defaults of the BPMN 2.0 and DMN 1.x schemas, by element (local name; "*" for any element).
DEFAULTS: dict[str, dict[str, str]] = {
    "*": {},
    "definitions": {"expressionLanguage": "http://www.w3.org/1999/XPath",
                    "typeLanguage": "http://www.w3.org/2001/XMLSchema"},
    "process": {"processType": "None", "isClosed": "false"},
    "boundaryEvent": {"cancelActivity": "true", "parallelMultiple": "false"},
    "startEvent": {"isInterrupting": "true", "parallelMultiple": "false"},
    "intermediateCatchEvent": {"parallelMultiple": "false"},
    "task": _ACTIVITY, "manualTask": _ACTIVITY, "scriptTask": _ACTIVITY, "callActivity": _ACTIVITY,
    "userTask": {**_ACTIVITY, "implementation": "##unspecified"},
    "businessRuleTask": {**_ACTIVITY, "implementation": "##unspecified"},
    "serviceTask": {**_ACTIVITY, "implementation": "##WebService"},
    "sendTask": {**_ACTIVITY, "implementation": "##WebService"},
    "receiveTask": {**_ACTIVITY, "implementation": "##WebService", "instantiate": "false"},
    "subProcess": {**_ACTIVITY, "triggeredByEvent": "false"},
    "exclusiveGateway": _GATEWAY, "parallelGateway": _GATEWAY, "inclusiveGateway": _GATEWAY,
    "complexGateway": _GATEWAY,
    "eventBasedGateway": {**_GATEWAY, "instantiate": "false", "eventGatewayType": "Exclusive"},
    "multiInstanceLoopCharacteristics": {"isSequential": "false", "behavior": "All"},
    "standardLoopCharacteristics": {"testBefore": "false"},
    "dataObject": {"isCollection": "false"},
    "itemDefinition": {"isCollection": "false", "itemKind": "Information"},
    "association": {"associationDirection": "None"},
    "textAnnotation": {"textFormat": "text/plain"},
    "documentation": {"textFormat": "text/plain"},
    "dataInput": {"isCollection": "false"}, "dataOutput": {"isCollection": "false"},
    "participantMultiplicity": {"minimum": "0", "maximum": "1"},
    "decisionTable": {"hitPolicy": "UNIQUE", "preferredOrientation": "Rule-as-Row"},
}
# Attributes that say which tool wrote the file, not what it means.
TOOL_ATTRIBUTES = frozenset({"exporter", "exporterVersion"})
_DERIVED = frozenset({"incoming", "outgoing"})
_EXPRESSIONS = frozenset({"conditionExpression", "timeDate", "timeDuration", "timeCycle", "completionCondition",
                          "loopCardinality", "loopCondition", "formalExpression", "expression"})
_COORDINATES = frozenset({"x", "y", "width", "height"})
# Names that are looked up exactly (a message is sent by its name); any other name is a label, where line
# breaks are layout (modelers write them as CR LF, LF or a space).
NAMES_LOOKED_UP = frozenset({"message", "signal", "error", "escalation", "lane", "property"})

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                          remove_comments=True, remove_pis=True)


def is_default(element_local: str, attribute: str, value: str) -> bool:
    """Whether `attribute="value"` on an element of that local name says only what the schema assumes."""
    return DEFAULTS.get(element_local, {}).get(attribute) == value


def ignored_attribute(element_local: str, attribute: str, value: str) -> bool:
    return attribute in TOOL_ATTRIBUTES or is_default(element_local, attribute, value)


def _is_diagram(element) -> bool:
    return isinstance(element.tag, str) and etree.QName(element).namespace in DIAGRAM_NAMESPACES


def _number(value: str) -> str:
    try:
        return repr(float(value))
    except ValueError:
        return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _c14n(root) -> bytes:
    return etree.canonicalize(root, rewrite_prefixes=True, strip_text=True).encode()


def forms(root) -> tuple[bytes, bytes]:
    """(meaning, drawing) of one parsed file, each as canonical XML bytes."""
    meaning = copy.deepcopy(root)
    drawing = etree.Element("drawing")
    for node in list(meaning.iter()):
        if not isinstance(node.tag, str):
            parent = node.getparent()
            if parent is not None:   # a comment or processing instruction
                if node.tail and node.tail.strip():
                    previous = node.getprevious()
                    if previous is not None:
                        previous.tail = (previous.tail or "") + node.tail
                    else:
                        parent.text = (parent.text or "") + node.tail
                parent.remove(node)
            continue
        if _is_diagram(node) and not _is_diagram(node.getparent() if node.getparent() is not None else node):
            node.getparent().remove(node)
            drawing.append(node)
    for node in meaning.iter():
        if not isinstance(node.tag, str):
            continue
        local = etree.QName(node).localname
        for attribute, value in list(node.attrib.items()):
            name = etree.QName(attribute).localname if not etree.QName(attribute).namespace else attribute
            if ignored_attribute(local, name, value):
                del node.attrib[attribute]
            elif attribute == XSI_TYPE and local in _EXPRESSIONS:
                del node.attrib[attribute]
            elif attribute == "name" and local not in NAMES_LOOKED_UP:
                node.set(attribute, " ".join(value.split()))
    for node in list(meaning.iter(*(f"{{{BPMN_NS}}}{tag}" for tag in _DERIVED))):
        node.getparent().remove(node)
    for node in drawing.iter():
        for attribute, value in node.attrib.items():   # numbers as numbers, labels' line breaks as spaces
            node.set(attribute, _number(value) if attribute in _COORDINATES or _is_number(value)
                     else " ".join(value.split()))
        if XSI_TYPE in node.attrib:   # `xsi:type="dc:Point"` on a waypoint names the schema's own type
            del node.attrib[XSI_TYPE]
    return _c14n(meaning), _c14n(drawing)


def file_hashes(text: str) -> tuple[str, str]:
    meaning, drawing = forms(etree.fromstring(text.encode(), _PARSER))
    return hashlib.sha256(meaning).hexdigest(), hashlib.sha256(drawing).hexdigest()


def bundle_hash(files: dict[str, str]) -> tuple[str, str]:
    """(content hash, diagram hash) of a bundle's files ({name: XML text}), blind to the files' names."""
    pairs = sorted(file_hashes(text) for text in files.values())
    content, diagram = hashlib.sha256(), hashlib.sha256()
    for meaning, drawing in pairs:
        content.update(meaning.encode() + b"\0")
        diagram.update(drawing.encode() + b"\0")
    return content.hexdigest(), diagram.hexdigest()
