"""DMN cells as modelers write them (FEEL unary tests) turned into the safe evaluator's expressions.

SpiffWorkflow evaluates a DMN input cell as Python, with `?` standing for the input value; a FEEL cell such
as `"a","b"` would be read as a tuple compared with a text and never match. Each cell is translated here,
at deploy and when a version is loaded, or refused with the reason: never a cell that silently never matches.

Translated: `-` (any value), literals (`"a"`, `10`, `true`, `null`), lists of them (`"a","b"`), comparisons
(`>= 10`, `< limit`), ranges (`[1..5]`, `]1..5[`, `[1..5)`), `not(...)` of any of these. A cell already in
SpiffWorkflow's Python form (`== "a"`, `in ("a", "b")`, `? > 3`) is kept.
"""
from __future__ import annotations

import re

_RANGE = re.compile(r"([\[\](])\s*(.+?)\s*\.\.\s*(.+?)\s*([\[\])])")
_COMPARISON = re.compile(r"(<=|>=|<|>|!=|=)\s*(.+)")
_PYTHON_FORMS = ("==", "!=", "in ", "not in ", "is ")
_FEEL_WORDS = {"true": "True", "false": "False", "null": "None"}


class FeelError(ValueError):
    pass


def _split(text: str) -> list[str]:
    """Split on commas outside quotes, brackets and parentheses."""
    parts, depth, quote, current = [], 0, None, []
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = None
            continue
        if char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def value(text: str) -> str:
    """A FEEL literal or name as an expression: `true` → True, `null` → None, the rest as written."""
    text = text.strip()
    return _FEEL_WORDS.get(text, text)


def _test(text: str) -> str:
    """One unary test as an expression on `?`."""
    text = text.strip()
    if not text:
        raise FeelError("an empty test")
    match = _RANGE.fullmatch(text)
    if match:
        opening, low, high, closing = match.groups()
        low_op = ">=" if opening == "[" else ">"
        high_op = "<=" if closing == "]" else "<"
        return f"(? {low_op} {value(low)} and ? {high_op} {value(high)})"
    match = _COMPARISON.fullmatch(text)
    if match and not text.startswith("=="):
        op, operand = match.groups()
        return f"? {'==' if op == '=' else op} {value(operand)}"
    if text == "null":
        return "? is None"
    return f"? == {value(text)}"


def input_cell(text: str | None) -> str | None:
    """The expression SpiffWorkflow evaluates for an input cell (None: any value), or FeelError."""
    text = (text or "").strip()
    if not text or text == "-":
        return None
    if "?" in text or text.startswith(_PYTHON_FORMS):
        return text
    negated = re.fullmatch(r"not\s*\((.*)\)", text, re.S)
    if negated:
        inner = input_cell(negated.group(1))
        if inner is None:
            raise FeelError("not(-) never matches")
        return f"not ({inner})"
    tests = [_test(part) for part in _split(text)]
    return tests[0] if len(tests) == 1 else "(" + " or ".join(tests) + ")"


def output_cell(text: str | None) -> str | None:
    text = (text or "").strip()
    return value(text) if text else text
