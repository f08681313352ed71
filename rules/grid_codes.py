"""Grid codes (网格编码, 条例 §7): one format for every grid in the city.

    410702 001 001 U 001
    │ │ │  │   │   │ └── sequence of the grid within its community or village, 001–999
    │ │ │  │   │   └──── grid type: U urban community grid 城市社区网格, R rural grid 农村网格,
    │ │ │  │   │                    E exclusive grid 专属网格 (parks, office towers, markets, schools…) (条例 §8)
    │ │ │  │   └──────── community / village (居委会 / 村委会), 3 digits
    │ │ │  └──────────── township / street (乡镇 / 街道), 3 digits
    │ │ └─────────────── county / district, 2 digits
    │ └───────────────── city, 2 digits
    └─────────────────── province, 2 digits

No national standard for social-governance grid codes exists (domain.md §5). The 数字城管 unit-grid code
(county + street + community + sequence) comes closest, but it has no room for the grid types the regulation
distinguishes; CJ/T 349's 20 digits serve a different purpose. So the code is the 12-digit statistical division
code (统计用区划代码) of the community or village the grid belongs to (every grid belongs to exactly one, as in
Xi'an's DB6101/T 3185), one type letter and a sequence. The division code makes a grid's place readable without
a lookup, and lets routing rules match a county, township or community by prefix (`rules/routing.py`).

The segments are kept as separate fields rather than one string because every user of a code wants a part of
it: routing wants the community, statistics group by township or county, the registry numbers grids within a
community. Slicing a string at magic offsets in each of them is how formats drift apart.

A code names a grid as drawn at one time. Grids are redrawn (条例 §7: adjusted when needed, every change filed
with the city), and a community's division code itself can change when townships merge, so the registry keeps
each code with effective-from/to dates and never reuses a retired code for a different area. That history lives
in the registry; this module only says whether a text is a well-formed code.

The segment checks are structural (a county segment of 00 is the city itself, not a county), not a lookup in
the statistics bureau's list: that list changes every year and is the registry's business. The digit ranges
the bureau gives the community segment (001–199 居委会, 2xx 村委会…) are not tied to the grid type either: an
urban-rural fringe village can have urban community grids, and exclusive grids sit in both.
"""
from __future__ import annotations

from dataclasses import dataclass

GRID_TYPES = {"U": "城市社区网格", "R": "农村网格", "E": "专属网格"}

# Province-level codes of GB/T 2260 for the 31 mainland divisions. The statistical division codes, and grid
# governance, cover only these; they have not changed since Chongqing (50) in 1997.
PROVINCES = frozenset({"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
                       "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
                       "65"})

LENGTH = 16
URBAN_HOUSEHOLDS = (300, 500)   # 条例 §8, both ends included

# (name, first position, last position) of each division segment, positions counted from 1 as people read them.
_SEGMENTS = (("province", 1, 2), ("city", 3, 4), ("county", 5, 6), ("township", 7, 9), ("community", 10, 12))
_DIVISION_LENGTHS = {6: "county", 9: "township", 12: "community"}


class InvalidGridCode(ValueError):
    """Not a well-formed grid code; `problems` lists everything wrong with it, not just the first thing."""

    def __init__(self, text: object, problems: list[str]):
        self.text = text
        self.problems = list(problems)
        super().__init__(f"invalid grid code {text!r}: {'; '.join(self.problems)}")


class InvalidDivisionCode(ValueError):
    """Not a county (6 digits), township (9) or community (12) statistical division code."""

    def __init__(self, text: object, problems: list[str]):
        self.text = text
        self.problems = list(problems)
        super().__init__(f"invalid division code {text!r}: {'; '.join(self.problems)}")


@dataclass(frozen=True, order=True)
class GridCode:
    province: str      # "41"
    city: str          # "07"
    county: str        # "02"
    township: str      # "001"
    community: str     # "001"
    grid_type: str     # "U", "R" or "E"
    sequence: int      # 1–999

    def __post_init__(self) -> None:
        # Built by hand (the registry will), a code must hold to the same format as one parsed from text.
        problems = []
        for name, first, last in _SEGMENTS:
            value = getattr(self, name)
            if not (isinstance(value, str) and len(value) == last - first + 1 and _ascii_digits(value)):
                problems.append(f"{name} must be {last - first + 1} digits as text, not {value!r}")
        if problems:
            raise InvalidGridCode(self, problems)
        problems = _segment_problems("".join(getattr(self, name) for name, _, _ in _SEGMENTS))
        problems += _type_problems(self.grid_type)
        if isinstance(self.sequence, bool) or not isinstance(self.sequence, int) or not 1 <= self.sequence <= 999:
            problems.append(f"sequence must be a whole number 1–999, not {self.sequence!r}")
        if problems:
            raise InvalidGridCode(self, problems)

    @classmethod
    def parse(cls, text: str) -> GridCode:
        """The code in `text`, exactly as written: no spaces, an upper-case type letter (a code is a key, and
        one grid has one spelling)."""
        if not isinstance(text, str):
            raise InvalidGridCode(text, [f"must be text, not {type(text).__name__}"])
        if len(text) != LENGTH:
            raise InvalidGridCode(text, [f"{len(text)} characters, a grid code has {LENGTH}: 12-digit division "
                                         f"code + type letter + 3-digit sequence, e.g. 410702001001U001"])
        division, letter, sequence = text[:12], text[12], text[13:]
        problems = []
        if not _ascii_digits(division):
            problems.append(f"the division code (characters 1–12) must be digits; {_not_digits(division, 1)}")
        else:
            problems += _segment_problems(division)
        problems += _type_problems(letter)
        if not _ascii_digits(sequence):
            problems.append(f"the sequence (characters 14–16) must be digits; {_not_digits(sequence, 14)}")
        elif sequence == "000":
            problems.append("sequence 000: grids are numbered from 001")
        if problems:
            raise InvalidGridCode(text, problems)
        return cls(division[0:2], division[2:4], division[4:6], division[6:9], division[9:12], letter, int(sequence))

    @property
    def county_code(self) -> str:
        return self.province + self.city + self.county

    @property
    def township_code(self) -> str:
        return self.county_code + self.township

    @property
    def community_code(self) -> str:
        return self.township_code + self.community

    @property
    def type_name(self) -> str:
        return GRID_TYPES[self.grid_type]

    def __str__(self) -> str:
        return f"{self.community_code}{self.grid_type}{self.sequence:03d}"


def check_division_code(text: str) -> str:
    """`text` if it is a county (6 digits), township (9) or community (12) division code, else InvalidDivisionCode."""
    if not isinstance(text, str):
        raise InvalidDivisionCode(text, [f"must be text, not {type(text).__name__}"])
    if len(text) not in _DIVISION_LENGTHS:
        raise InvalidDivisionCode(text, [f"{len(text)} characters; a division code is a county (6 digits), "
                                         f"township (9) or community (12) code"])
    if not _ascii_digits(text):
        raise InvalidDivisionCode(text, [f"must be digits; {_not_digits(text, 1)}"])
    problems = _segment_problems(text)
    if problems:
        raise InvalidDivisionCode(text, problems)
    return text


def division_level(code: str) -> str:
    """"county", "township" or "community": what a valid division code names, by its length."""
    return _DIVISION_LENGTHS[len(check_division_code(code))]


def household_warning(grid_type: str, households: int) -> str | None:
    """A warning when an urban community grid is outside the 300–500 households of 条例 §8, else None.

    A warning, not an error: the regulation sets the size as a norm, and a grid that breaks it (a new estate
    half sold, a block awaiting redrawing) still has to be registered and served. Rural grids follow villagers'
    groups and exclusive grids follow a site, so no size applies to them."""
    if grid_type not in GRID_TYPES:
        raise ValueError(f"unknown grid type {grid_type!r}; known: {_known_types()}")
    if isinstance(households, bool) or not isinstance(households, int) or households < 0:
        raise ValueError(f"households must be a whole number 0 or more, not {households!r}")
    if grid_type != "U":
        return None
    low, high = URBAN_HOUSEHOLDS
    if households < low:
        return (f"an urban community grid (城市社区网格) of {households} households is below the {low}–{high} "
                f"of 条例 §8; consider merging it with a neighbouring grid")
    if households > high:
        return (f"an urban community grid (城市社区网格) of {households} households is above the {low}–{high} "
                f"of 条例 §8; consider splitting it")
    return None


def _segment_problems(digits: str) -> list[str]:
    """What is wrong with the division segments present in `digits` (6, 9 or 12 ASCII digits)."""
    problems = []
    province = digits[0:2]
    if province not in PROVINCES:
        problems.append(f"province {province} is not a mainland province-level code (11–65, GB/T 2260)")
    for name, first, last in _SEGMENTS[1:]:
        if last > len(digits):
            break
        value = digits[first - 1:last]
        if set(value) == {"0"}:
            # An all-zero segment names the level above (410700 is the city of Xinxiang, not a county in it).
            problems.append(f"{name} segment {value} (characters {first}–{last}) is all zeros, which names the "
                            f"level above, not a {name}")
    return problems


def _type_problems(letter: str) -> list[str]:
    if letter in GRID_TYPES:
        return []
    if isinstance(letter, str) and letter.upper() in GRID_TYPES:
        return [f"grid type {letter!r} must be upper case: {letter.upper()}"]
    return [f"unknown grid type {letter!r}; known: {_known_types()}"]


def _known_types() -> str:
    return ", ".join(f"{letter} ({name})" for letter, name in GRID_TYPES.items())


def _ascii_digits(text: str) -> bool:
    # str.isdigit() also accepts full-width and other scripts' digits, which an IME easily produces.
    return text.isascii() and text.isdigit()


def _not_digits(text: str, offset: int) -> str:
    bad = [f"{char!r} at {i}" for i, char in enumerate(text, start=offset) if not ("0" <= char <= "9")]
    return "found " + ", ".join(bad)
