"""The reporter's personal data and who may see it (条例 §18: no leaking of personal privacy).

A matter may name the resident who reported it: name, phone, ID number, address — under a `reporter`
object, or as flat `reporter_name`, `reporter_phone`, `reporter_id_number`, `reporter_address` fields,
wherever they appear (case data, a task's form data, a history event's payload).

Who needs them unmasked, and why:
- the grid worker collected them and calls the resident back to verify and for the follow-up visit (回访);
- the grid agency accepts the report and runs the follow-up visit;
- the auditor investigates conduct (§22) and must see what every actor saw;
- the platform account is the city platform itself, which received the report and keeps it.
A responsible unit handles the matter, not the person: it sees them masked, which also protects a resident
who reported a neighbour or a business from being identified by the party the unit deals with.
The process administrator reads no cases at all. The county government (县（市）、区党委、政府) reads only its
county's matter list changes, which name no resident; should one, it sees them masked.
The audit views of a past moment and the dossier hide personal data until the reader asks to see it
(`reveal`); only these same roles may, and each such read is logged like any other.
"""
from __future__ import annotations

PERSONAL_FIELDS = ("name", "phone", "id_number", "address")
REPORTER = "reporter"
FLAT_FIELDS = {f"{REPORTER}_{name}": name for name in PERSONAL_FIELDS}
UNMASKED_ROLES = frozenset({"grid_worker", "grid_agency", "auditor", "platform"})
MASK = "*"


def sees_unmasked(role: str) -> bool:
    return role in UNMASKED_ROLES


def mask_value(kind: str, value) -> str:
    """Enough left to tell records apart on a screen, not enough to find the person."""
    text = "" if value is None else str(value)
    if not text:
        return text
    if kind == "name":
        return text[0] + MASK * max(len(text) - 1, 1)
    if kind == "phone":
        digits = text.replace(" ", "").replace("-", "")
        if len(digits) > 7:  # a mobile or a landline with its area code: 138****0001
            return digits[:3] + MASK * (len(digits) - 7) + digits[-4:]
        return MASK * max(len(digits) - 4, 1) + digits[-4:] if len(digits) > 4 else MASK * len(digits)
    if kind == "id_number":
        return text[:3] + MASK * max(len(text) - 7, 1) + text[-4:] if len(text) > 7 else MASK * len(text)
    if kind == "address":
        return text[:6] + MASK * 4
    return MASK * 4


def personal_fields(value, path: str = "") -> list[str]:
    """Paths of the personal fields present in `value` (dicts and lists walked), e.g. `data.reporter.phone`."""
    found: list[str] = []
    _walk(value, path, found, masking=False)
    return found


def masked(value):
    """A copy of `value` with every personal field masked; the input is not changed."""
    return _walk(value, "", [], masking=True)


def _walk(value, path: str, found: list[str], *, masking: bool):
    if isinstance(value, list):
        return [_walk(v, f"{path}[{i}]", found, masking=masking) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        here = f"{path}.{key}" if path else str(key)
        if key in FLAT_FIELDS and item not in (None, ""):
            found.append(here)
            out[key] = mask_value(FLAT_FIELDS[key], item) if masking else item
        elif key == REPORTER and isinstance(item, dict):
            person = {}
            for field, v in item.items():
                if field in PERSONAL_FIELDS and v not in (None, ""):
                    found.append(f"{here}.{field}")
                    person[field] = mask_value(field, v) if masking else v
                else:
                    person[field] = _walk(v, f"{here}.{field}", found, masking=masking)
            out[key] = person
        else:
            out[key] = _walk(item, here, found, masking=masking)
    return out
