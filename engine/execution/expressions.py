"""Safe evaluation of the expressions and scripts in uploaded process definitions.

One module, longer than most, so that the whole whitelist and its interpreter can be reviewed in one sitting.

SpiffWorkflow evaluates gateway conditions, timers, message payloads, DMN cells and scripts with
Python's eval/exec, which a definition can escape. Here they are parsed with `ast`, checked
against the whitelist of docs/process-conventions.md ("Expressions") and run by a small
interpreter of our own that bounds every value it builds.

There are no loops, comprehensions or user-defined functions, so an evaluation visits each syntax
node at most once: the node limit is also the bound on evaluation steps.
"""
import ast
import operator
import re
from collections import ChainMap
from collections.abc import Callable, Iterable, MutableMapping
from datetime import datetime, timezone
from functools import lru_cache, partial
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

MAX_SOURCE = 2000  # characters in one expression or script
MAX_NODES = 500  # syntax nodes, as ast.walk counts them
MAX_DEPTH = 100  # nesting; keeps the recursive interpreter far from Python's recursion limit
MAX_INT = 10**18
MAX_LENGTH = 10_000  # characters or items in a built text, list, tuple, dict or set
# Items and characters, nested ones included, in a built value: without it `[s, s, s]` with a
# long `s` multiplies memory (and the JSON of the task data) at every step while each list stays short.
MAX_SIZE = 100_000
MAX_FORMAT_NUMBER = 100  # widths and precisions in f-string format specs
CACHE_SIZE = 4096


class ExpressionError(Exception):
    """An expression or script was refused, or failed while it was evaluated.

    `lineno` and `column` (both from 1) locate the offending part when known; `source` is the text."""

    def __init__(self, message: str, node: ast.AST | None = None):
        super().__init__(message)
        self.message = message
        self.lineno = getattr(node, "lineno", None)
        self.column = node.col_offset + 1 if self.lineno else None
        self.source = None

    def __str__(self):
        text = self.message
        if self.lineno:
            text += f" at line {self.lineno}, column {self.column}"
        if self.source is not None:
            text += f" in {_excerpt(self.source, self.lineno)!r}"
        return text


def _excerpt(source, lineno):
    """The line an error is about (the whole source when unknown), cut short for a message."""
    lines = source.splitlines()
    text = lines[lineno - 1] if lineno and lineno <= len(lines) else source
    return text if len(text) <= 120 else text[:117] + "..."


# ---------------------------------------------------------------- values and their bounds

_SCALARS = (int, float, type(None))  # bool is an int; text is counted by its length
_SIZED = (str, list, tuple, dict, set)


def _size(value, budget):
    """Items and characters in a plain value, nested ones included; counting stops past `budget`."""
    total, pending = 0, [value]
    while pending and total <= budget:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            total += len(item)
            pending += item.keys()
            pending += item.values()
        elif isinstance(item, (list, tuple, set)):
            total += len(item)
            pending += item
        elif not isinstance(item, _SCALARS):
            raise TypeError(f"{type(item).__name__} is not plain data")
    return total


def _check_fits(length, size, node):
    if length > MAX_LENGTH:
        raise ExpressionError(f"result too long ({length}, the limit is {MAX_LENGTH})", node)
    if size > MAX_SIZE:
        raise ExpressionError(f"result too big (over {MAX_SIZE} items and characters)", node)


def _check_int(value, node):
    if isinstance(value, int) and not -MAX_INT <= value <= MAX_INT:
        raise ExpressionError("integer result beyond ±10**18", node)


def _check_built(value, node):
    """Refuse a value made by a display or a function that is not plain data or is too big."""
    _check_int(value, node)
    _check_fits(len(value) if isinstance(value, _SIZED) else 0, _size(value, MAX_SIZE), node)


def _check_printable(value):
    # Whatever holds more than MAX_LENGTH items and characters prints longer than that:
    # refuse it before printing rather than after.
    if _size(value, MAX_LENGTH) > MAX_LENGTH:
        raise ValueError(f"text would be longer than {MAX_LENGTH} characters")


def _arithmetic(op, left, right, node):
    kind = type(op)
    # Sizes are checked before the operation: "a" * 10**9 would allocate a gigabyte first.
    if kind is ast.Mult:
        sequence, count = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(sequence, (str, list, tuple)) and isinstance(count, int) and count > 0:
            size = _size(sequence, MAX_SIZE // count) * count
            _check_fits(len(sequence) * count, size, node)
    elif kind is ast.Add:
        if isinstance(left, (str, list, tuple)) and type(left) is type(right):
            size = _size(left, MAX_SIZE) + _size(right, MAX_SIZE)
            _check_fits(len(left) + len(right), size, node)
    elif kind is ast.Mod and isinstance(left, str):
        # "%999999999d" % 1 builds a gigabyte; f-strings have their widths checked.
        raise ExpressionError("formatting text with % is not allowed, use an f-string", node)
    result = _BINARY[kind](left, right)
    _check_int(result, node)
    return result


# ---------------------------------------------------------------- functions

def _items(value):
    """The argument of a function that walks a collection: plain and at most MAX_LENGTH long."""
    if not isinstance(value, _SIZED):
        raise TypeError(f"expected a list, tuple, dict, set or text, not {type(value).__name__}")
    if len(value) > MAX_LENGTH:
        raise ValueError(f"more than {MAX_LENGTH} items")
    return value


def _str(value=""):
    _check_printable(value)
    return str(value)


def _round(number, ndigits=None):
    # round(5, -10**9) computes 10**(10**9) before it answers.
    if ndigits is not None and not -18 <= ndigits <= 18:
        raise ValueError("ndigits must be between -18 and 18")
    return round(number, ndigits)


def _min(*values):
    return min(_items(values[0]) if len(values) == 1 else values)


def _max(*values):
    return max(_items(values[0]) if len(values) == 1 else values)


def _sorted(items, reverse=False):
    return sorted(_items(items), reverse=reverse)


def _sum(items):
    # No start value: sum(lists, []) would be concatenation without the size checks.
    return sum(_items(items))


def _any(items):
    return any(_items(items))


def _all(items):
    return all(_items(items))


def _list(items=()):
    return list(_items(items))


def _tuple(items=()):
    return tuple(_items(items))


def _dict(items=(), **pairs):
    return dict(_items(items), **pairs)


BUILTIN_FUNCTIONS: dict[str, Callable] = {
    "len": len, "str": _str, "int": int, "float": float, "bool": bool, "abs": abs,
    "round": _round, "min": _min, "max": _max, "sorted": _sorted, "sum": _sum,
    "any": _any, "all": _all, "list": _list, "tuple": _tuple, "dict": _dict,
}


# ---------------------------------------------------------------- checking

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_UNARY = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
_CONVERSIONS = {-1: lambda value: value, ord("s"): str, ord("r"): repr, ord("a"): ascii}
_CONSTANT_TYPES = (str, int, float, bool, type(None))

_EXPRESSION_NODES = {
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.List, ast.Tuple, ast.Set, ast.Dict,
    ast.BoolOp, ast.And, ast.Or, ast.Compare, ast.UnaryOp, ast.BinOp, ast.IfExp,
    ast.Subscript, ast.Slice, ast.Call, ast.keyword, ast.JoinedStr, ast.FormattedValue,
    *_BINARY, *_COMPARE, *_UNARY,
}
_SCRIPT_NODES = _EXPRESSION_NODES | {ast.Module, ast.Assign, ast.AugAssign, ast.Store, ast.Pass}

_DESCRIPTIONS = {
    ast.Attribute: "attribute access", ast.Lambda: "lambda", ast.NamedExpr: "the := operator",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator expression",
    ast.Starred: "unpacking with *", ast.YieldFrom: "yield",
    ast.Import: "import", ast.ImportFrom: "import", ast.FunctionDef: "a function definition",
    ast.AsyncFunctionDef: "a function definition", ast.ClassDef: "a class definition",
    ast.Expr: "a statement that is not an assignment",
    ast.Pow: "the ** operator", ast.MatMult: "the @ operator", ast.LShift: "the << operator",
    ast.RShift: "the >> operator", ast.BitOr: "the | operator", ast.BitXor: "the ^ operator",
    ast.BitAnd: "the & operator", ast.Invert: "the ~ operator",
}


def _describe(node):
    return _DESCRIPTIONS.get(type(node), type(node).__name__.lower())


def _check_constant(node, functions):
    if type(node.value) not in _CONSTANT_TYPES:
        raise ExpressionError(f"the constant {node.value!r} is not allowed", node)


def _check_name(node, functions):
    if node.id.startswith("_"):
        raise ExpressionError(f"the name {node.id!r} is not allowed (names may not start with '_')", node)


def _check_call(node, functions):
    if not (isinstance(node.func, ast.Name) and node.func.id in functions):
        raise ExpressionError(f"{ast.unparse(node.func)!r} is not a function expressions may call", node)
    if any(keyword.arg is None for keyword in node.keywords):
        raise ExpressionError("unpacking with ** is not allowed", node)


def _check_dict(node, functions):
    if None in node.keys:
        raise ExpressionError("unpacking with ** is not allowed", node)


def _check_bin_op(node, functions):
    if type(node.op) not in _BINARY:
        raise ExpressionError(f"{_describe(node.op)} is not allowed", node)


def _check_unary_op(node, functions):
    if type(node.op) not in _UNARY:
        raise ExpressionError(f"{_describe(node.op)} is not allowed", node)


def _check_formatted_value(node, functions):
    spec = node.format_spec
    if spec is None:
        return
    if not all(isinstance(part, ast.Constant) for part in spec.values):
        raise ExpressionError("a format spec must be fixed text", node)
    # f"{x:>999999999}" builds a gigabyte of padding.
    numbers = re.findall(r"\d+", "".join(part.value for part in spec.values))
    if any(int(number) > MAX_FORMAT_NUMBER for number in numbers):
        raise ExpressionError(f"format widths and precisions above {MAX_FORMAT_NUMBER} are not allowed", node)


def _check_target(node, functions):
    if not isinstance(node, ast.Name):
        raise ExpressionError("only plain names can be assigned to", node)
    if node.id in functions:
        raise ExpressionError(f"{node.id!r} is a function and cannot be assigned to", node)


def _check_assign(node, functions):
    for target in node.targets:
        _check_target(target, functions)


def _check_aug_assign(node, functions):
    _check_target(node.target, functions)
    if type(node.op) not in (ast.Add, ast.Sub):
        raise ExpressionError("only += and -= are allowed as augmented assignments", node)


_RULES = {
    ast.Constant: _check_constant, ast.Name: _check_name, ast.Call: _check_call,
    ast.Dict: _check_dict, ast.BinOp: _check_bin_op, ast.UnaryOp: _check_unary_op,
    ast.FormattedValue: _check_formatted_value, ast.Assign: _check_assign,
    ast.AugAssign: _check_aug_assign,
}


def _walk(tree):
    """Every node with its depth, each parent before its children (so rules on a parent come first)."""
    pending = [(tree, 0)]
    while pending:
        node, depth = pending.pop()
        yield node, depth
        pending += ((child, depth + 1) for child in ast.iter_child_nodes(node))


def _parse(source, mode, functions):
    """Parse `source` ("eval" or "exec" mode) and check it against the whitelist."""
    try:
        if len(source) > MAX_SOURCE:
            raise ExpressionError(f"longer than {MAX_SOURCE} characters")
        try:
            tree = ast.parse(source, mode=mode)
        except SyntaxError as err:
            error = ExpressionError(f"syntax error: {err.msg}")
            error.lineno, error.column = err.lineno, err.offset or 1
            raise error from err
        nodes = list(_walk(tree))
        if len(nodes) > MAX_NODES:
            raise ExpressionError(f"too complex: {len(nodes)} syntax nodes, the limit is {MAX_NODES}")
        allowed = _SCRIPT_NODES if mode == "exec" else _EXPRESSION_NODES
        for node, depth in nodes:
            if type(node) not in allowed:
                raise ExpressionError(f"{_describe(node)} is not allowed", node)
            if depth > MAX_DEPTH:
                raise ExpressionError(f"nested more than {MAX_DEPTH} levels deep", node)
            rule = _RULES.get(type(node))
            if rule:
                rule(node, functions)
    except ExpressionError as err:
        err.source = source
        raise
    return tree


def check_expression(source: str, functions: Iterable[str] = ()) -> None:
    """Raise ExpressionError unless `source` is an allowed expression.

    It may call the built-in functions and those named in `functions` (the engine's domain ones)."""
    _parse(source, "eval", BUILTIN_FUNCTIONS.keys() | set(functions))


def check_script(source: str, functions: Iterable[str] = ()) -> None:
    """Raise ExpressionError unless `source` is an allowed script; `functions` as for check_expression."""
    _parse(source, "exec", BUILTIN_FUNCTIONS.keys() | set(functions))


# The engine builds an evaluator per command (its functions read that command's clock); the parse
# cache is shared so that checked trees survive from one command to the next.
@lru_cache(CACHE_SIZE)
def _parse_cached(source, mode, functions):
    return _parse(source, mode, functions)


# ---------------------------------------------------------------- evaluation

class Evaluator:
    """Checks and runs expressions and scripts; `functions` are added to BUILTIN_FUNCTIONS."""

    def __init__(self, functions: dict[str, Callable] | None = None):
        self.functions = {**BUILTIN_FUNCTIONS, **(functions or {})}
        names = frozenset(self.functions)
        self._expressions = partial(_parse_cached, mode="eval", functions=names)
        self._scripts = partial(_parse_cached, mode="exec", functions=names)

    def check_expression(self, source: str) -> None:
        self._expressions(source)

    def check_script(self, source: str) -> None:
        self._scripts(source)

    def evaluate(self, source: str, variables: MutableMapping[str, Any]) -> Any:
        try:
            return self._eval(self._expressions(source).body, variables)
        except ExpressionError as err:
            err.source = source
            raise

    def execute(self, source: str, variables: MutableMapping[str, Any]) -> None:
        # Assignments reach `variables` only once the whole script has run: a failing script changes nothing.
        assigned = {}
        scope = ChainMap(assigned, variables)
        try:
            for statement in self._scripts(source).body:
                if isinstance(statement, ast.Assign):
                    value = self._eval(statement.value, scope)
                    for target in statement.targets:
                        assigned[target.id] = value
                elif isinstance(statement, ast.AugAssign):
                    assigned[statement.target.id] = self._eval(statement, scope)
        except ExpressionError as err:
            err.source = source
            raise
        variables.update(assigned)

    def _eval(self, node, scope):
        try:
            return self._HANDLERS[type(node)](self, node, scope)
        except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as err:
            raise ExpressionError(f"{type(err).__name__}: {err}", node) from err

    def _constant(self, node, scope):
        return node.value

    def _name(self, node, scope):
        try:
            return scope[node.id]
        except KeyError:
            raise ExpressionError(f"unknown variable {node.id!r}", node) from None

    def _bool_op(self, node, scope):
        # Like Python: stop at the first operand that decides, and return it.
        deciding = isinstance(node.op, ast.Or)
        for operand in node.values:
            value = self._eval(operand, scope)
            if bool(value) is deciding:
                break
        return value

    def _compare(self, node, scope):
        left = self._eval(node.left, scope)
        for op, comparator in zip(node.ops, node.comparators):
            right = self._eval(comparator, scope)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def _unary_op(self, node, scope):
        return _UNARY[type(node.op)](self._eval(node.operand, scope))

    def _bin_op(self, node, scope):
        return _arithmetic(node.op, self._eval(node.left, scope), self._eval(node.right, scope), node)

    def _aug_assign(self, node, scope):
        # The new value of `name += value`; execute stores it.
        return _arithmetic(node.op, self._eval(node.target, scope), self._eval(node.value, scope), node)

    def _if_exp(self, node, scope):
        return self._eval(node.body if self._eval(node.test, scope) else node.orelse, scope)

    def _subscript(self, node, scope):
        value = self._eval(node.value, scope)
        index = node.slice
        if isinstance(index, ast.Slice):
            parts = (index.lower, index.upper, index.step)
            return value[slice(*(None if part is None else self._eval(part, scope) for part in parts))]
        return value[self._eval(index, scope)]

    def _display(self, node, scope):
        if isinstance(node, ast.Dict):
            value = {self._eval(k, scope): self._eval(v, scope) for k, v in zip(node.keys, node.values)}
        else:
            value = self._DISPLAYS[type(node)](self._eval(element, scope) for element in node.elts)
        _check_built(value, node)
        return value

    def _call(self, node, scope):
        name = node.func.id
        args = [self._eval(arg, scope) for arg in node.args]
        kwargs = {keyword.arg: self._eval(keyword.value, scope) for keyword in node.keywords}
        try:
            result = self.functions[name](*args, **kwargs)
        except ExpressionError:
            raise
        except Exception as err:
            raise ExpressionError(f"{name}() failed: {err}", node) from err
        _check_built(result, node)
        return result

    def _joined_str(self, node, scope):
        # Counted piece by piece: f"{s}{s}{s}…" must not build a huge text before it is refused.
        pieces, length = [], 0
        for part in node.values:
            piece = self._eval(part, scope)
            length += len(piece)
            if length > MAX_LENGTH:
                raise ExpressionError(f"text longer than {MAX_LENGTH} characters", node)
            pieces.append(piece)
        return "".join(pieces)

    def _formatted_value(self, node, scope):
        value = self._eval(node.value, scope)
        _check_printable(value)
        spec = self._eval(node.format_spec, scope) if node.format_spec else ""
        return format(_CONVERSIONS[node.conversion](value), spec)

    _DISPLAYS = {ast.List: list, ast.Tuple: tuple, ast.Set: set}
    _HANDLERS = {
        ast.Constant: _constant, ast.Name: _name, ast.BoolOp: _bool_op, ast.Compare: _compare,
        ast.UnaryOp: _unary_op, ast.BinOp: _bin_op, ast.AugAssign: _aug_assign, ast.IfExp: _if_exp,
        ast.Subscript: _subscript,
        ast.List: _display, ast.Tuple: _display, ast.Set: _display, ast.Dict: _display,
        ast.Call: _call, ast.JoinedStr: _joined_str, ast.FormattedValue: _formatted_value,
    }


# ---------------------------------------------------------------- SpiffWorkflow adapter

def _scope(context, external_context):
    # Task data wins over the external context; writes go to the task data.
    return ChainMap(context, external_context) if external_context else context


class SafeEnvironment(BasePythonScriptEngineEnvironment):
    """SpiffWorkflow's script environment with the Evaluator in place of eval and exec."""

    def __init__(self, functions: dict[str, Callable] | None = None):
        super().__init__()
        self.evaluator = Evaluator(functions)

    def evaluate(self, expression, context, external_context=None):
        return self.evaluator.evaluate(expression, _scope(context, external_context))

    def execute(self, script, context, external_context=None):
        self.evaluator.execute(script, _scope(context, external_context))
        return True  # SpiffWorkflow completes a script task only when execute returns True

    def call_service(self, context, **kwargs):
        raise ExpressionError("service tasks are not supported")


class UtcClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


def _task_error(task, err):
    return WorkflowTaskException(
        str(err), task=task, exception=err, line_number=err.lineno, offset=err.column)


class SafeScriptEngine(PythonScriptEngine):
    """The script engine to give every BpmnWorkflow; `clock` is read by GridFlow's timers."""

    def __init__(self, functions: dict[str, Callable] | None = None, clock=None):
        super().__init__(environment=SafeEnvironment(functions))
        self.clock = clock or UtcClock()

    def validate(self, expression):
        try:
            self.environment.evaluator.check_expression(expression)
        except ExpressionError as err:
            # DMNEngine.needs_eq tells a cell like `== "a"` from `"a"` by catching SyntaxError.
            if isinstance(err.__cause__, SyntaxError):
                raise err.__cause__ from None
            raise

    # PythonScriptEngine would report our errors as "Error evaluating expression" without saying
    # what was wrong, and its call_service fails with a NameError in its own error path.
    def evaluate(self, task, expression, external_context=None):
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except ExpressionError as err:
            raise _task_error(task, err) from err

    def execute(self, task, script, external_context=None):
        try:
            return self.environment.execute(script, task.data, external_context)
        except ExpressionError as err:
            raise _task_error(task, err) from err

    def call_service(self, task, **kwargs):
        try:
            return self.environment.call_service(task.data, **kwargs)
        except ExpressionError as err:
            raise _task_error(task, err) from err
