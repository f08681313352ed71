"""The city's admission catalog (准入分类目录, 条例 §13): which grid matters may be admitted at all.

Its top level is the nine kinds of grid matters of 条例 §12, spelled exactly as `time_limits.CATEGORIES`
spells them, so a sub-category's category means the same in both tables. Below them are sub-categories: a
code, the Chinese name people see, the category. County matter lists (`matter_list.py`) may only draw from
this catalog.

Like the time-limit table it is a spreadsheet an administrator edits, `data/catalog.csv`, with its version in
`data/catalog.meta.json`, and loading reports every problem at once with the row number the spreadsheet
shows. The codes are the same codes the time-limit table uses: a matter is one thing from intake to deadline.

The regulation's own words, quoted where a refusal cites it, live here too because every module that refuses
something (negative list, matter lists) builds on the catalog.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from .tables import NotInTable, TableError, TableProblem, is_code, read_csv, read_csv_rows, read_meta, table_rows
from .time_limits import CATEGORIES

# The draft is what exists today; when the regulation is enacted only this title changes.
REGULATION = "《新乡市社会治理网格化服务管理条例（草案）》"
# Quoted verbatim (numbering as the text numbers its articles), so a refusal carries the rule it applies.
ARTICLES = {
    "第十三条": "未纳入清单的事项，有关部门不得要求网格员办理或者协助办理。网格员有权拒绝网格事项清单以外的工作。",
    "第十四条": "依法应当由行政机关作出的行政许可、行政处罚、行政强制以及其他与网格职责不符的事项，"
               "不得纳入网格事项清单，法律、法规另有规定的除外。",
}

COLUMNS = ("code", "name", "category")

_PACKAGED = "catalog.csv"


def cite(article: str) -> str:
    """《条例》第N条, followed by the article's words when they are quoted above."""
    words = ARTICLES.get(article)
    return f"{REGULATION}{article}" + (f"：“{words}”" if words else "")


class CatalogError(TableError):
    what = "the admission catalog"


class UnknownCatalogCode(NotInTable):
    """The code is not in the catalog; the message names the catalog version."""


@dataclass(frozen=True)
class SubCategory:
    code: str
    name: str
    category: str


@dataclass(frozen=True, eq=False)
class Catalog:
    version: str
    effective_from: date
    sub_categories: dict[str, SubCategory]   # by code, in the order of the file

    def sub_category(self, code: str) -> SubCategory:
        found = self.sub_categories.get(code)
        if found is None:
            raise UnknownCatalogCode(f"{code!r} is not in the admission catalog (准入分类目录) {self.version}")
        return found

    @property
    def categories(self) -> dict[str, tuple[SubCategory, ...]]:
        """The nine categories of 条例 §12 in the regulation's order, each with its sub-categories."""
        return {category: tuple(sub for sub in self.sub_categories.values() if sub.category == category)
                for category in CATEGORIES}

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self.sub_categories)

    def __contains__(self, code: object) -> bool:
        return code in self.sub_categories

    def __iter__(self) -> Iterator[SubCategory]:
        return iter(self.sub_categories.values())

    def __len__(self) -> int:
        return len(self.sub_categories)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and check the catalog at `path` (its meta file beside it), or the one shipped in `rules/data`."""
    csv_name, csv_bytes = read_csv(path, _PACKAGED)
    problems: list[TableProblem] = []
    version, effective_from = read_meta(path, _PACKAGED, problems)
    rows = read_csv_rows(csv_name, csv_bytes, COLUMNS, problems)
    # Without the file or its header nothing below would be sure.
    sub_categories = {} if rows is None else _check_rows(csv_name, list(rows), problems)
    if problems:
        raise CatalogError(problems)
    return Catalog(version=version, effective_from=effective_from, sub_categories=sub_categories)


# The export's columns: the catalog's own, and the default time limits of the 立结案标准 table at normal
# urgency, which is what a county drawing up its list needs to see beside each matter.
EXPORT_COLUMNS = COLUMNS + ("handling_limit", "handling_unit", "sign_for_limit_hours", "return_window_days")


def check_records(name: str, records: list[list[str]]) -> list[TableProblem]:
    """Every problem of a catalog sheet someone edited (CSV or Excel rows), by spreadsheet row, before it
    replaces `data/catalog.csv` in a release."""
    problems: list[TableProblem] = []
    # An exported copy carries the time-limit columns too; they are the time-limit table's to check.
    rows = table_rows(name, records, EXPORT_COLUMNS, problems, required=COLUMNS)
    if rows is not None:
        _check_rows(name, list(rows), problems)
    return problems


def export_rows(catalog: Catalog, limits) -> list[list]:
    rows = []
    for sub in catalog:
        limit = limits.limits.get((sub.code, "normal"))
        rows.append([sub.code, sub.name, sub.category,
                     *((limit.handling_limit, limit.handling_unit, limit.sign_for_limit_hours,
                        limit.return_window_days) if limit else ("", "", "", ""))])
    return rows


@lru_cache(maxsize=1)
def shipped_catalog() -> Catalog:
    return load_catalog()


def _check_rows(name: str, rows: list[tuple[int, dict[str, str]]],
                problems: list[TableProblem]) -> dict[str, SubCategory]:
    found: dict[str, SubCategory] = {}
    code_row: dict[str, int] = {}
    name_row: dict[str, int] = {}
    for row, cells in rows:
        before = len(problems)
        code, title, category = cells["code"], cells["name"], cells["category"]
        if not code:
            problems.append(TableProblem(name, row, "code", "empty"))
        elif not is_code(code):
            problems.append(TableProblem(name, row, "code", f"{code!r} is not a code of lower-case letters, "
                                                            f"digits and _"))
        elif code in code_row:
            problems.append(TableProblem(name, row, "code", f"{code} is already in row {code_row[code]}; "
                                                            f"each code appears once"))
        if not title:
            problems.append(TableProblem(name, row, "name", "empty"))
        elif title in name_row:
            # Two codes under one name split one matter's statistics and let a list admit it twice.
            problems.append(TableProblem(name, row, "name", f"{title} is already the name in row "
                                                            f"{name_row[title]}"))
        if category not in CATEGORIES:
            problems.append(TableProblem(name, row, "category", f"unknown category {category!r}; the nine of "
                                                                f"条例 §12 are: {', '.join(CATEGORIES)}"))
        if len(problems) > before:
            continue
        code_row[code], name_row[title] = row, row
        found[code] = SubCategory(code=code, name=title, category=category)
    if found and len(found) == len(rows):
        # Only when every row was read: a category may look empty just because its rows had problems.
        for category in CATEGORIES:
            if not any(sub.category == category for sub in found.values()):
                problems.append(TableProblem(name, None, "category", f"{category} has no sub-category; every "
                                                                     f"kind of 条例 §12 needs at least one"))
    if not rows and not problems:
        problems.append(TableProblem(name, None, None, "no rows: the catalog needs its sub-categories"))
    return found
