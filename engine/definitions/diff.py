"""What changed between two versions of a definition, element by element.

A process administrator about to deploy, or an auditor asking why two cases behaved differently, needs to
see which tasks, flows and decision rules differ — not a text diff of XML a modeler re-indents at will. So
each file is read with the deploy's safe XML reader and reduced to its elements by id; an element's
meaning is what the engine reads from it: attributes, `spiffworkflow:` properties (the form field by
field), conditions, timer expressions, scripts, the lane (its role), event definitions and, in DMN, the
cells of a rule. Drawing coordinates (`bpmndi`) mean nothing to a case, so they are reported only as
"the drawing changed".
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from engine.definitions.reading import BPMN_NS, SPIFF_NS, is_dmn, read_xml
from engine.definitions.canonical import DEFAULTS, NAMES_LOOKED_UP, TOOL_ATTRIBUTES, forms
from engine.definitions.forms import FormError, parse_form

# Children that have an id in modeler output but belong to their parent's meaning: a timer's definition is
# part of the timer event, a condition part of its flow, a DMN cell part of its rule.
_FOLDED = frozenset({
    "timerEventDefinition", "messageEventDefinition", "signalEventDefinition", "errorEventDefinition",
    "escalationEventDefinition", "terminateEventDefinition", "conditionalEventDefinition",
    "cancelEventDefinition", "compensateEventDefinition", "linkEventDefinition", "conditionExpression",
    "multiInstanceLoopCharacteristics", "standardLoopCharacteristics", "extensionElements", "script",
    "documentation", "inputEntry", "outputEntry", "inputExpression", "text", "timeDate", "timeDuration",
    "timeCycle", "incoming", "outgoing", "flowNodeRef", "laneSet", "childLaneSet"})
_TIMERS = ("timeDate", "timeDuration", "timeCycle")
# Derived from sequence flows (which are elements of their own) — reporting them again is noise.
_IGNORED = frozenset({"incoming", "outgoing", "flowNodeRef"})
_DIAGRAM_NAMESPACES = ("http://www.omg.org/spec/BPMN/20100524/DI", "http://www.omg.org/spec/DD/20100524/DC",
                       "http://www.omg.org/spec/DD/20100524/DI", "https://www.omg.org/spec/DMN/20191111/DMNDI/")


@dataclass(frozen=True)
class Change:
    """One difference inside an element. `aspect`: attribute, property, form, condition, timer, script,
    event, lane, extension, documentation, cell, expression or type; `key` names what within it."""

    aspect: str
    key: str
    before: str | None
    after: str | None

    def as_dict(self) -> dict:
        return {"aspect": self.aspect, "key": self.key, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class ElementDiff:
    id: str
    type: str
    name: str
    change: str               # added, removed, changed
    changes: tuple[Change, ...] = ()

    def as_dict(self) -> dict:
        return {"id": self.id, "type": self.type, "name": self.name, "change": self.change,
                "changes": [c.as_dict() for c in self.changes]}


@dataclass(frozen=True)
class FileDiff:
    file: str
    kind: str                 # bpmn, dmn
    change: str               # added, removed, changed, reformatted (text only), unchanged
    elements: tuple[ElementDiff, ...] = ()
    diagram_changed: bool = False

    def as_dict(self) -> dict:
        return {"file": self.file, "kind": self.kind, "change": self.change, "diagram_changed": self.diagram_changed,
                "elements": [e.as_dict() for e in self.elements]}


@dataclass(frozen=True)
class DefinitionDiff:
    key: str
    from_version: int
    to_version: int
    files: tuple[FileDiff, ...] = field(default=())

    @property
    def equivalent(self) -> bool:
        return all(f.change in ("unchanged", "reformatted") for f in self.files)

    def counts(self) -> dict[str, int]:
        counts = {"added": 0, "removed": 0, "changed": 0}
        for file in self.files:
            for element in file.elements:
                counts[element.change] += 1
        return counts

    def as_dict(self) -> dict:
        return {"key": self.key, "from_version": self.from_version, "to_version": self.to_version,
                "equivalent": self.equivalent, "counts": self.counts(), "files": [f.as_dict() for f in self.files]}


@dataclass(frozen=True)
class _Element:
    id: str
    type: str
    name: str
    facts: dict[tuple[str, str], str]   # (aspect, key) → value


def compare_files(before: dict[str, str], after: dict[str, str]) -> list[FileDiff]:
    """Compare two bundles' files ({file name: XML text}); files are matched by name."""
    result = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        old_root = read_xml(name, old.encode()) if old is not None else None
        new_root = read_xml(name, new.encode()) if new is not None else None
        kind = "dmn" if is_dmn(new_root if new_root is not None else old_root) else "bpmn"
        old_elements = _elements(old_root) if old_root is not None else {}
        new_elements = _elements(new_root) if new_root is not None else {}
        elements = _element_diffs(old_elements, new_elements)
        if old is None or new is None:
            change = "added" if old is None else "removed"
            result.append(FileDiff(name, kind, change, tuple(elements)))
            continue
        diagram_changed = forms(old_root)[1] != forms(new_root)[1]
        # Re-saved by a modeler with nothing else touched: a new version whose cases behave the same.
        change = "changed" if elements or diagram_changed else "reformatted" if old != new else "unchanged"
        result.append(FileDiff(name, kind, change, tuple(elements), diagram_changed))
    return result


def compare_versions(definitions, key: str, from_version: int, to_version: int) -> DefinitionDiff:
    """Compare two deployed versions of `key` (raises NotFound for a version that does not exist)."""
    old = definitions.find(key, from_version)
    new = definitions.find(key, to_version)
    files = compare_files(definitions.files(old.id), definitions.files(new.id))
    return DefinitionDiff(key, old.version, new.version, tuple(files))


# ---- reading one file into elements --------------------------------------------------------------------

def _local(element) -> str:
    return etree.QName(element).localname


def _is_element(node) -> bool:
    """An element of its own: it has an id, is not drawing, and is not folded into its parent."""
    if not isinstance(node.tag, str) or not node.get("id"):
        return False
    qname = etree.QName(node)
    return qname.namespace not in _DIAGRAM_NAMESPACES and qname.localname not in _FOLDED


def _elements(root) -> dict[str, _Element]:
    found: dict[str, _Element] = {}
    lanes = _lanes_of(root)
    for node in root.iter():
        if not _is_element(node):
            continue
        facts: dict[tuple[str, str], str] = {}
        # An attribute left out has its schema default (bpmn-js drops cancelActivity="true"): compared as
        # that value. The exporter names a tool, not a meaning.
        for attr, value in DEFAULTS.get(_local(node), {}).items():
            facts[("attribute", attr)] = value
        for attr, value in node.attrib.items():
            if attr != "id" and _attr_name(attr) not in TOOL_ATTRIBUTES:
                if attr == "name" and _local(node) not in NAMES_LOOKED_UP:
                    value = " ".join(value.split())   # a label's line breaks are layout
                facts[("attribute", _attr_name(attr))] = value
        _collect(node, facts)
        if _local(node) == "rule":
            _cells(node, facts)
        if node.get("id") in lanes:
            facts[("lane", "lane")] = lanes[node.get("id")]
        found[node.get("id")] = _Element(node.get("id"), _local(node), node.get("name") or node.get("label") or "",
                                         facts)
    return found


def _attr_name(attr: str) -> str:
    qname = etree.QName(attr)
    if qname.namespace == SPIFF_NS:
        return f"spiffworkflow:{qname.localname}"
    return qname.localname if not qname.namespace else attr


def _collect(node, facts: dict) -> None:
    """The meaning under `node` that is not another element's, keyed by (aspect, key)."""
    for child in node:
        if not isinstance(child.tag, str) or _is_element(child):
            continue
        local, namespace = _local(child), etree.QName(child).namespace
        text = (child.text or "").strip()
        if local in _IGNORED or namespace in _DIAGRAM_NAMESPACES:
            continue
        if namespace == SPIFF_NS and local == "property":
            name, value = child.get("name", ""), child.get("value", "")
            if name == "form":
                _form(value, facts)
            else:
                facts[("property", name)] = value
        elif namespace == SPIFF_NS and local in ("preScript", "postScript"):
            facts[("script", local)] = text
        elif namespace == SPIFF_NS and local not in ("properties",):
            facts[("extension", local)] = text
        elif local == "conditionExpression":
            facts[("condition", "condition")] = text
        elif local in _TIMERS:
            facts[("timer", local)] = text
        elif local == "script":
            facts[("script", "script")] = text
        elif local == "documentation":
            facts[("documentation", "documentation")] = text
        elif local.endswith("EventDefinition"):
            refs = ", ".join(f"{_attr_name(a)}={v}" for a, v in sorted(child.attrib.items()) if a != "id")
            facts[("event", local)] = refs
        elif local == "inputExpression":
            facts[("expression", "inputExpression")] = "".join(child.itertext()).strip()
        elif namespace == BPMN_NS and local not in ("extensionElements",) and text:
            facts[("extension", local)] = text
        _collect(child, facts)


def _form(text: str, facts: dict) -> None:
    """A form field by field (`str`, `str?` for optional), so a dropped required field shows as one line."""
    try:
        fields = parse_form(text)
    except FormError:
        facts[("form", "form")] = text
        return
    for f in fields:
        facts[("form", f.name)] = f.type + ("" if f.required else "?")


def _cells(rule, facts: dict) -> None:
    """A DMN rule's cells, named by the column they sit in (inputs and outputs by position)."""
    table = rule.getparent()
    columns = {"inputEntry": [_column(c) for c in table if isinstance(c.tag, str) and _local(c) == "input"],
               "outputEntry": [_column(c) for c in table if isinstance(c.tag, str) and _local(c) == "output"]}
    seen = {"inputEntry": 0, "outputEntry": 0}
    for child in rule:
        if not isinstance(child.tag, str) or _local(child) not in seen:
            continue
        kind = _local(child)
        index = seen[kind]
        seen[kind] += 1
        names = columns[kind]
        label = names[index] if index < len(names) else f"{kind} {index + 1}"
        facts[("cell", f"{'input' if kind == 'inputEntry' else 'output'}: {label}")] = \
            "".join(child.itertext()).strip()


def _column(node) -> str:
    return node.get("label") or node.get("name") or node.get("id") or "?"


def _lanes_of(root) -> dict[str, str]:
    """Flow node id → name of the lane it sits in (lanes are roles: moving a task moves who does it)."""
    lanes = {}
    for lane in root.iter(f"{{{BPMN_NS}}}lane"):
        for ref in lane.iter(f"{{{BPMN_NS}}}flowNodeRef"):
            # The innermost lane wins: iter() visits a child lane after its parent.
            lanes[(ref.text or "").strip()] = lane.get("name") or lane.get("id") or ""
    return lanes


def _element_diffs(old: dict[str, _Element], new: dict[str, _Element]) -> list[ElementDiff]:
    diffs = []
    for element_id in list(old) + [i for i in new if i not in old]:
        before, after = old.get(element_id), new.get(element_id)
        if before is None:
            diffs.append(ElementDiff(element_id, after.type, after.name, "added"))
        elif after is None:
            diffs.append(ElementDiff(element_id, before.type, before.name, "removed"))
        else:
            changes = []
            if before.type != after.type:
                changes.append(Change("type", "type", before.type, after.type))
            for fact in sorted(set(before.facts) | set(after.facts)):
                was, now = before.facts.get(fact), after.facts.get(fact)
                if was != now:
                    changes.append(Change(fact[0], fact[1], was, now))
            if changes:
                diffs.append(ElementDiff(element_id, after.type, after.name or before.name, "changed",
                                         tuple(changes)))
    return diffs
