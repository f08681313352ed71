"""Loops in the flow graph: every cycle must pass a bounded counter or a task with `max_returns`, because
SpiffWorkflow stops silently deep in an unbounded loop."""
from __future__ import annotations

import ast

from lxml import etree


from engine.definitions.problems import Problem, problem
from engine.definitions.reading import BPMN_NS, SPIFF_NS


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
        for node_id, node in nodes.items():
            if etree.QName(node).localname.endswith("Gateway") and not edges.get(node_id):
                problems.append(problem(name, node_id, "gateway_dead_end",
                                        f"the gateway {node_id!r} has no outgoing sequence flow: connect it to "
                                        "where the process goes next",
                                        f"网关 {node_id!r} 没有流出的顺序流：请连接到流程的下一步"))
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
