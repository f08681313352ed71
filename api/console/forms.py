"""A human task's form as the definition declares it (`form="name:type, opt?:type"`), turned into HTML
controls and back into the data the command takes. Values a string field is compared with in the
diagram's conditions (`decision == "file"`) are offered as choices, and a `sub_category` field offers the
admission catalog's sub-categories (条例 §12), which intake requires by the time a matter is registered."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from engine.definitions.status_paths import properties
from engine.definitions.forms import FormError, parse_form
from rules.catalog import shipped_catalog

_COMPARED = re.compile(r"""\b([A-Za-z_][A-Za-z0-9_]*)\s*==\s*["']([^"']+)["']""")


@dataclass(frozen=True)
class Control:
    name: str
    type: str          # str, bool, int, list, dict
    required: bool
    choices: tuple[str, ...]
    labels: tuple[str, ...] = ()   # a name per choice, when the choices are codes


class FormInputError(ValueError):
    def __init__(self, problems: dict[str, tuple[str, str]]):
        super().__init__("; ".join(f"{k}: {v[1]}" for k, v in problems.items()))
        self.problems = problems


def controls(loaded, element_id: str, diagram: str | None = None) -> list[Control]:
    spec = loaded.elements.get(element_id)
    if spec is None:
        return []
    try:
        fields = parse_form(properties(spec).get("form"))
    except FormError:
        return []
    compared: dict[str, set] = {}
    for name, value in _COMPARED.findall(diagram or ""):
        compared.setdefault(name, set()).add(value)
    return [_catalog_control(f) if f.name == "sub_category" and f.type == "str" else
            Control(f.name, f.type, f.required, tuple(sorted(compared.get(f.name, ())))) for f in fields]


def _catalog_control(field) -> Control:
    subs = tuple(shipped_catalog().sub_categories.values())
    return Control(field.name, field.type, field.required, tuple(s.code for s in subs),
                   tuple(f"{s.category} · {s.name}" for s in subs))


def read(controls_: list[Control], form) -> dict:
    """The command's data from a posted form; problems per field (zh, en) when a value cannot be read."""
    data, problems = {}, {}
    for c in controls_:
        raw = form.get(f"field_{c.name}", "")
        raw = raw.strip() if isinstance(raw, str) else ""
        if raw == "":
            if c.required:
                problems[c.name] = ("必填", "required")
            continue
        if c.type == "bool":
            if raw not in ("true", "false"):
                problems[c.name] = ("请选择是或否", "choose yes or no")
            else:
                data[c.name] = raw == "true"
        elif c.type == "int":
            try:
                data[c.name] = int(raw)
            except ValueError:
                problems[c.name] = ("须为整数", "a whole number")
        elif c.type == "list":
            data[c.name] = [part.strip() for part in re.split(r"[,，、\n]", raw) if part.strip()]
        elif c.type == "dict":
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = None
            if not isinstance(value, dict):
                problems[c.name] = ("须为 JSON 对象", "a JSON object")
            else:
                data[c.name] = value
        else:
            data[c.name] = raw[:5000]
    if problems:
        raise FormInputError(problems)
    return data
