"""The negative list (负面清单, 条例 §14): matters that never go to the grid.

条例第十四条: “市网格化服务管理主管部门应当建立网格事项负面清单，明确不得交由网格办理的事项。依法应当由行政机关作出
的行政许可、行政处罚、行政强制以及其他与网格职责不符的事项，不得纳入网格事项清单，法律、法规另有规定的除外。”

So the article names three kinds outright and leaves a fourth open, and `KINDS` has exactly those four. Other
acts of administrative organs (行政征收, 行政裁决, 行政确认) are not named by the article; they are entries of
the open kind, 其他与网格职责不符的事项, which is what the article supports, not kinds of their own.

How a matter is matched, kept to one rule: by code. Intake carries either a catalog sub-category code or, when
the worker marks the matter as an administrative act, a kind code (`administrative_penalty`...). Both are
looked up here; a kind code is refused whatever the entry, because the article excludes the whole kind. Entry
codes share one namespace with catalog codes, and a code on both is refused by every matter list
(`matter_list.py`), so a catalog mistake cannot open the door. Nothing is matched by name or by guessing from
the description: a refusal has to be reproducible from the record.

The exception "法律、法规另有规定的除外" is not modelled: where a law gives a duty to the grid, the city takes
the entry off this list (and, if needed, adds the matter to the catalog); the list stays the one source.

The list is `data/negative_list.csv` (code, name, kind, article), checked like the other tables: every problem
at once, with the spreadsheet's row numbers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from .catalog import cite
from .tables import TableError, TableProblem, is_code, read_csv, read_csv_rows

KINDS = {
    "administrative_licensing": "行政许可",
    "administrative_penalty": "行政处罚",
    "administrative_enforcement": "行政强制",
    "incompatible_with_grid_duties": "其他与网格职责不符的事项",
}
COLUMNS = ("code", "name", "kind", "article")

_PACKAGED = "negative_list.csv"
_ARTICLE = re.compile(r"第[一二三四五六七八九十百零〇]+条")


class NegativeListError(TableError):
    what = "the negative list"


@dataclass(frozen=True)
class NegativeEntry:
    code: str
    name: str
    kind: str
    article: str

    @property
    def kind_name(self) -> str:
        return KINDS[self.kind]


class OnNegativeList(ValueError):
    """The matter may not go to the grid. `entry` is None when the matter was refused by its kind alone."""

    def __init__(self, code: str, entry: NegativeEntry | None, kind: str, article: str = "第十四条"):
        self.code, self.entry, self.kind, self.article = code, entry, kind, article
        what = f"{entry.name} [{KINDS[kind]}]" if entry else KINDS[kind]
        super().__init__(f"{code!r} is on the negative list (负面清单): {what}. It may not be handed to the grid "
                         f"nor put on any matter list — {cite(article)}")


@dataclass(frozen=True, eq=False)
class NegativeList:
    entries: dict[str, NegativeEntry]   # by code, in the order of the file

    def entry(self, code: str) -> NegativeEntry | None:
        return self.entries.get(code)

    def check_admissible(self, code: str) -> None:
        """Raise `OnNegativeList` if `code` (catalog code, entry code or kind code) is excluded by §14."""
        entry = self.entries.get(code)
        if entry is not None:
            raise OnNegativeList(code, entry, entry.kind, entry.article)
        if code in KINDS:
            raise OnNegativeList(code, None, code)

    def __contains__(self, code: object) -> bool:
        return code in self.entries or code in KINDS

    def __iter__(self) -> Iterator[NegativeEntry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)


def load_negative_list(path: str | Path | None = None) -> NegativeList:
    """Load and check the list at `path`, or the one shipped in `rules/data`."""
    name, raw = read_csv(path, _PACKAGED)
    problems: list[TableProblem] = []
    rows = read_csv_rows(name, raw, COLUMNS, problems)
    entries = {} if rows is None else _check_rows(name, list(rows), problems)
    if problems:
        raise NegativeListError(problems)
    return NegativeList(entries=entries)


@lru_cache(maxsize=1)
def shipped_negative_list() -> NegativeList:
    return load_negative_list()


def check_admissible(catalog_code_or_matter_kind: str, negative_list: NegativeList | None = None) -> None:
    """Raise `OnNegativeList` (citing 条例第十四条) if the matter may never go to the grid; else return None.

    Only the negative list is consulted: whether the county admits the matter is `MatterLists.check_assignable`.
    """
    if negative_list is None:
        negative_list = shipped_negative_list()
    negative_list.check_admissible(catalog_code_or_matter_kind)


def _check_rows(name: str, rows: list[tuple[int, dict[str, str]]],
                problems: list[TableProblem]) -> dict[str, NegativeEntry]:
    found: dict[str, NegativeEntry] = {}
    code_row: dict[str, int] = {}
    for row, cells in rows:
        before = len(problems)
        code, title, kind, article = cells["code"], cells["name"], cells["kind"], cells["article"]
        if not code:
            problems.append(TableProblem(name, row, "code", "empty"))
        elif not is_code(code):
            problems.append(TableProblem(name, row, "code", f"{code!r} is not a code of lower-case letters, "
                                                            f"digits and _"))
        elif code in KINDS:
            # Intake may send a kind code; an entry with the same code would make the match ambiguous.
            problems.append(TableProblem(name, row, "code", f"{code} is a kind; give the entry its own code"))
        elif code in code_row:
            problems.append(TableProblem(name, row, "code", f"{code} is already in row {code_row[code]}; "
                                                            f"each code appears once"))
        if not title:
            problems.append(TableProblem(name, row, "name", "empty"))
        if kind not in KINDS:
            problems.append(TableProblem(name, row, "kind", f"unknown kind {kind!r}; the kinds of 条例第十四条 "
                                                            f"are: {', '.join(f'{k} ({v})' for k, v in KINDS.items())}"))
        if not _ARTICLE.fullmatch(article):
            problems.append(TableProblem(name, row, "article", f"{article!r} is not an article as the regulation "
                                                               f"numbers them, e.g. 第十四条" if article else "empty"))
        if len(problems) > before:
            continue
        code_row[code] = row
        found[code] = NegativeEntry(code=code, name=title, kind=kind, article=article)
    if not rows and not problems:
        problems.append(TableProblem(name, None, None, "no rows: the negative list needs its entries"))
    return found
