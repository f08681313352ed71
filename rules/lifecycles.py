"""Which status lifecycle a process runs under, by the name its start event declares (`lifecycle`).

Grid matters (the default) follow the statutory statuses of `status.py`; a change to a county's matter list
follows `list_change.py`. Each lifecycle module offers NAME, INITIAL, STATUSES, FINAL_STATUSES,
DONE_STATUSES, REASON_REQUIRED, `is_lawful` and `move`.
"""
from __future__ import annotations

from types import ModuleType

from . import list_change, status

DEFAULT = status.NAME
_BY_NAME: dict[str, ModuleType] = {status.NAME: status, list_change.NAME: list_change}
NAMES = tuple(_BY_NAME)


def lifecycle(name: str | None) -> ModuleType:
    """The lifecycle module called `name` (None: grid matter); KeyError names the known ones."""
    try:
        return _BY_NAME[name or DEFAULT]
    except KeyError:
        raise KeyError(f"unknown lifecycle {name!r}; known: {', '.join(NAMES)}") from None
