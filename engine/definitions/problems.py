"""What a deploy check reports: one problem with a definition, as data.

A problem names the file and the element (its BPMN/DMN `id`) it is about, so that a console can mark it on
the element in the drawing, a stable `code` a program can branch on, and its message in Chinese and English.
File-level problems (malformed XML, no executable process, …) have an empty `element_id`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    element_id: str
    code: str
    en: str
    zh: str

    # The names the deploy reported before problems carried a code and two languages.
    @property
    def element(self) -> str:
        return self.element_id

    @property
    def message(self) -> str:
        return self.en

    def messages(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}

    def as_dict(self) -> dict:
        return {"file": self.file, "element_id": self.element_id or None, "code": self.code,
                "message": self.messages()}

    def __str__(self) -> str:
        where = f"{self.file}" + (f" [{self.element_id}]" if self.element_id else "")
        return f"{where}: {self.en}"


def problem(file: str, element_id: str | None, code: str, en: str, zh: str) -> Problem:
    return Problem(file or "", element_id or "", code, en, zh)


class DefinitionRejected(Exception):
    """A deploy (or a check) found problems; nothing was stored."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))
