"""County grid matter lists (网格事项清单, 条例 §13): what a county's grid workers may be given.

Each county (县（市）、区) builds its list from the city's admission catalog and files it with the city; a change
is a new version, approved and filed again (the workflow uses `diff`). A version is in force from its
`effective_from` until the county's next version starts, so history keeps answering "was this assignable on
that day". Nothing on the negative list can be on a list (条例 §14), whatever the catalog says.

A temporary admission (临时准入) puts a matter on a list for a while with a stated reason, e.g. a campaign. It
stops counting on `expires_on`: that is the first day it no longer counts (it counts on the days before), so
"expires on 1 July" means the work is done by the end of 30 June, and the expiry must come after the list's
own start for the admission to count on any day at all.

A list is checked when it is built, and every problem is reported at once (as the tables do), so a county's
draft can be corrected in one round of review.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable

from .calendar import BEIJING
from .catalog import Catalog, cite, shipped_catalog
from .negative_list import NegativeList, OnNegativeList, shipped_negative_list


class MatterListError(ValueError):
    """The list cannot be used; `problems` lists every problem found, each a sentence naming what is wrong."""

    def __init__(self, what: str, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{what} has {len(self.problems)} problem(s):\n{lines}")


class NotOnMatterList(ValueError):
    """条例第十三条: a matter off the county's list may not be assigned to a grid worker, who may refuse it.

    `matter_list` is the list in force that lacks it, or None when the county has no list in force that day."""

    def __init__(self, county_code: str, sub_category: str, on_date: date, matter_list: MatterList | None,
                 name: str | None = None, expired: TemporaryAdmission | None = None):
        self.county_code, self.sub_category, self.on_date = county_code, sub_category, on_date
        self.matter_list, self.expired = matter_list, expired
        matter = f"{sub_category!r}" + (f" {name}" if name else "")
        if matter_list is None:
            where = f"county {county_code} has no grid matter list (网格事项清单) in force on {on_date}, so {matter}"
        else:
            where = (f"{matter} is not on the grid matter list (网格事项清单) of county {county_code}, version "
                     f"{matter_list.version} in force from {matter_list.effective_from}, on {on_date}")
            if expired is not None:
                where += f" (its temporary admission, {expired.reason}, expired on {expired.expires_on})"
            where += ", so it"
        super().__init__(f"{where} may not be assigned to a grid worker, and the worker may refuse it — "
                         f"{cite('第十三条')}")


class NoMatterListInForce(LookupError):
    def __str__(self) -> str:  # LookupError would show the message in quotes
        return str(self.args[0])


@dataclass(frozen=True)
class TemporaryAdmission:
    sub_category: str
    reason: str
    expires_on: date   # the first day it no longer counts

    def counts_on(self, day: date) -> bool:
        return day < self.expires_on


@dataclass(frozen=True)
class MatterList:
    county_code: str          # the 6-digit county-level division code (GB/T 2260), e.g. 410702
    version: str
    effective_from: date
    sub_categories: tuple[str, ...]
    temporary: tuple[TemporaryAdmission, ...] = ()
    # What the list was checked against; the shipped tables when not given. Not part of the list's identity.
    catalog: Catalog | None = field(default=None, repr=False, compare=False)
    negative_list: NegativeList | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Accept any iterable (a list from a form, a set), but keep the order given: it is the published order.
        for name in ("sub_categories", "temporary"):
            value = getattr(self, name)
            if not isinstance(value, (str, bytes)):
                object.__setattr__(self, name, tuple(value))
        if self.catalog is None:
            object.__setattr__(self, "catalog", shipped_catalog())
        if self.negative_list is None:
            object.__setattr__(self, "negative_list", shipped_negative_list())
        problems = self._problems()
        if problems:
            raise MatterListError(f"the matter list of county {self.county_code!r} version {self.version!r}",
                                  problems)

    def _problems(self) -> list[str]:
        problems = []
        county = self.county_code
        if not (isinstance(county, str) and len(county) == 6 and county.isascii() and county.isdigit()
                and not county.endswith("00")):
            problems.append(f"county_code {county!r} is not a 6-digit county-level division code "
                            f"(GB/T 2260, e.g. 410702; one ending in 00 is a city or province)")
        if not isinstance(self.version, str) or not self.version.strip():
            problems.append("version must be a non-empty text such as \"2026.1\"")
        # A datetime is a date too; a list starts on a day, not at an instant in some time zone.
        effective_from_ok = isinstance(self.effective_from, date) and not isinstance(self.effective_from, datetime)
        if not effective_from_ok:
            problems.append(f"effective_from {self.effective_from!r} must be a date")
        if isinstance(self.sub_categories, (str, bytes)):
            problems.append("sub_categories must be a collection of codes, not one text")
            return problems
        if isinstance(self.temporary, (str, bytes)):
            problems.append("temporary must be a collection of TemporaryAdmission")
            return problems
        if not self.sub_categories and not self.temporary:
            problems.append("the list is empty: a county list names the matters its grid workers may be given")

        seen: set[str] = set()
        for code in self.sub_categories:
            if code in seen:
                problems.append(f"sub_categories: {code!r} appears twice")
                continue
            seen.add(code)
            problems += self._entry_problems("sub_categories", code)
        for admission in self.temporary:
            if not isinstance(admission, TemporaryAdmission):
                problems.append(f"temporary: {admission!r} is not a TemporaryAdmission")
                continue
            code = admission.sub_category
            if code in seen:
                # One code in two places would leave unclear whether it lapses at the expiry.
                problems.append(f"temporary: {code!r} is already on the list" + (
                    "" if code not in self.sub_categories else " permanently; admit it one way only"))
                continue
            seen.add(code)
            problems += self._entry_problems("temporary", code)
            if not isinstance(admission.reason, str) or not admission.reason.strip():
                problems.append(f"temporary: {code!r} needs a reason for admitting it temporarily")
            expires_on = admission.expires_on
            if not isinstance(expires_on, date) or isinstance(expires_on, datetime):
                problems.append(f"temporary: {code!r} expires_on {expires_on!r} must be a date")
            elif effective_from_ok and expires_on <= self.effective_from:
                problems.append(f"temporary: {code!r} expires on {expires_on}, which must be after the list's "
                                f"effective_from {self.effective_from}")
        return problems

    def _entry_problems(self, where: str, code: object) -> list[str]:
        problems = []
        try:
            self.negative_list.check_admissible(code)
        except OnNegativeList as refused:
            return [f"{where}: {refused}"]   # whether the catalog has it too no longer matters
        except TypeError:   # unhashable: not a code at all
            return [f"{where}: {code!r} is not a code"]
        if code not in self.catalog:
            problems.append(f"{where}: {code!r} is not in the admission catalog (准入分类目录) "
                            f"{self.catalog.version}; a county list is drawn from it (条例第十三条)")
        return problems

    def admits(self, sub_category: str, on_date: date | datetime) -> bool:
        """Whether the matter is on this list on that day (a list not yet in force admits nothing)."""
        return sub_category in self.codes_on(on_date)

    def codes_on(self, on_date: date | datetime) -> frozenset[str]:
        day = beijing_day(on_date)
        if day < self.effective_from:
            return frozenset()
        return frozenset(self.sub_categories) | {t.sub_category for t in self.temporary if t.counts_on(day)}

    def temporary_admission(self, sub_category: str) -> TemporaryAdmission | None:
        return next((t for t in self.temporary if t.sub_category == sub_category), None)


class MatterLists:
    """Every version of every county's list; the one in force on a day is the latest that has started."""

    def __init__(self, lists: Iterable[MatterList] = (), negative_list: NegativeList | None = None):
        self._lists = tuple(lists)
        self._negative_list = negative_list
        problems = []
        by_version: dict[tuple[str, str], MatterList] = {}
        by_start: dict[tuple[str, date], MatterList] = {}
        for matter_list in self._lists:
            if not isinstance(matter_list, MatterList):
                problems.append(f"{matter_list!r} is not a MatterList")
                continue
            county = matter_list.county_code
            if (county, matter_list.version) in by_version:
                problems.append(f"county {county} has version {matter_list.version} twice")
                continue
            other = by_start.get((county, matter_list.effective_from))
            if other is not None:
                # Two lists starting the same day: which one is in force would depend on input order.
                problems.append(f"county {county}: versions {other.version} and {matter_list.version} both take "
                                f"effect on {matter_list.effective_from}")
                continue
            by_version[county, matter_list.version] = matter_list
            by_start[county, matter_list.effective_from] = matter_list
        if problems:
            raise MatterListError("the set of matter lists", problems)

    def versions(self, county_code: str) -> tuple[MatterList, ...]:
        """The county's lists, oldest first."""
        return tuple(sorted((m for m in self._lists if m.county_code == county_code),
                            key=lambda m: m.effective_from))

    def current(self, county_code: str, on_date: date | datetime) -> MatterList:
        day = beijing_day(on_date)
        started = [m for m in self.versions(county_code) if m.effective_from <= day]
        if not started:
            raise NoMatterListInForce(f"county {county_code} has no grid matter list in force on {day}")
        return started[-1]

    def check_assignable(self, county_code: str, sub_category: str, on_date: date | datetime) -> MatterList:
        """The list in force that allows assigning the matter to a grid worker that day.

        Raises `OnNegativeList` (条例第十四条) if the matter may never go to the grid, else `NotOnMatterList`
        (条例第十三条) if the county's list in force does not have it (or has no list in force)."""
        day = beijing_day(on_date)
        try:
            in_force = self.current(county_code, day)
        except NoMatterListInForce:
            in_force = None
        negative = self._negative_list
        if negative is None:
            negative = in_force.negative_list if in_force is not None else shipped_negative_list()
        negative.check_admissible(sub_category)   # the stronger rule, so the refusal cites it
        if in_force is not None and in_force.admits(sub_category, day):
            return in_force
        catalog = in_force.catalog if in_force else shipped_catalog()
        name = catalog.sub_categories[sub_category].name if sub_category in catalog else None
        expired = in_force.temporary_admission(sub_category) if in_force else None
        raise NotOnMatterList(county_code, sub_category, day, in_force, name, expired)


@dataclass(frozen=True)
class MatterListDiff:
    county_code: str
    old_version: str
    new_version: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    temporary_added: tuple[TemporaryAdmission, ...]     # a changed reason or expiry shows as removed + added
    temporary_removed: tuple[TemporaryAdmission, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.temporary_added or self.temporary_removed)


def diff(old: MatterList, new: MatterList) -> MatterListDiff:
    """What a change to a county's list adds and removes, for its approval and filing (条例第十三条)."""
    if old.county_code != new.county_code:
        raise ValueError(f"a change is to one county's list; got {old.county_code} and {new.county_code}")
    return MatterListDiff(
        county_code=new.county_code, old_version=old.version, new_version=new.version,
        added=tuple(code for code in new.sub_categories if code not in old.sub_categories),
        removed=tuple(code for code in old.sub_categories if code not in new.sub_categories),
        temporary_added=tuple(t for t in new.temporary if t not in old.temporary),
        temporary_removed=tuple(t for t in old.temporary if t not in new.temporary))


def beijing_day(on_date: date | datetime) -> date:
    """The day in Beijing: a UTC instant late in the evening is already the next day there."""
    if isinstance(on_date, datetime):
        if on_date.tzinfo is None:
            raise ValueError(f"{on_date} has no time zone; give a date or an aware datetime")
        return on_date.astimezone(BEIJING).date()
    return on_date
