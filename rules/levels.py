"""Agency levels for level-by-level reporting (逐级上报, 条例 §17)."""
from __future__ import annotations

LEVELS = ("community", "township", "county", "city")


class UnknownLevel(ValueError):
    pass


def next_level(level: str) -> str:
    """The agency one level up; the city is the top and stays where it is."""
    try:
        index = LEVELS.index(level)
    except ValueError:
        raise UnknownLevel(f"unknown agency level {level!r}; known: {', '.join(LEVELS)}") from None
    return LEVELS[min(index + 1, len(LEVELS) - 1)]
