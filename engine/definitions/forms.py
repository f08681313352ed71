"""The data a human task's completion must carry, declared on the element as `form="name:type, opt?:type"`."""
from __future__ import annotations

import re
from dataclasses import dataclass

_TYPES = {"str": str, "bool": bool, "int": int, "list": list, "dict": dict}
_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)(\?)?\s*:\s*([a-z]+)\s*$")


class FormError(ValueError):
    pass


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool


def parse_form(text: str | None) -> tuple[Field, ...]:
    if not text or not text.strip():
        return ()
    fields = []
    for part in text.split(","):
        match = _FIELD.match(part)
        if not match or match.group(3) not in _TYPES:
            raise FormError(f"bad form field {part.strip()!r}: write name:type or name?:type, "
                            f"type one of {', '.join(_TYPES)}")
        fields.append(Field(match.group(1), match.group(3), match.group(2) is None))
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise FormError(f"form declares a field twice: {text!r}")
    return tuple(fields)


def check_data(fields: tuple[Field, ...], data: dict) -> list[str]:
    """Problems with `data` against the form, one message per field; empty when it fits."""
    problems = []
    known = {f.name: f for f in fields}
    for name in data:
        if name not in known:
            problems.append(f"{name}: not a field of this task (fields: {', '.join(known) or 'none'})")
    for field in fields:
        if field.name not in data or data[field.name] is None:
            if field.required:
                problems.append(f"{field.name}: required ({field.type})")
            continue
        value = data[field.name]
        expected = _TYPES[field.type]
        # bool is an int in Python; a form that asks for a number must not take True.
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            problems.append(f"{field.name}: expected {field.type}, got {type(value).__name__}")
    return problems
