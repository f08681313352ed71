"""Errors the engine reports to its callers (CLI, HTTP); each maps to one clear message."""


class EngineError(Exception):
    """`zh`: the message in Chinese with the same detail, when the raiser has one; the HTTP layer otherwise
    puts the English detail after its generic Chinese sentence."""

    code = "engine_error"
    zh: str | None = None

    def __init__(self, *args, zh: str | None = None):
        super().__init__(*args)
        if zh is not None:
            self.zh = zh


class NotFound(EngineError):
    code = "not_found"


class Conflict(EngineError):
    """Another command changed the case first; nothing of this command was applied."""

    code = "conflict"


class InvalidCommand(EngineError):
    """The command does not fit the case or task as it stands; the message names the rule."""

    code = "invalid_command"


def unknown_year(exc) -> InvalidCommand:
    """A deadline needs a year the working-day calendar has no schedule for (rules.calendar.UnknownYear):
    the refusal names the command that adds it."""
    year = exc.year
    return InvalidCommand(
        f"the working-day calendar has no schedule for {year}: the State Council publishes each year's holidays "
        f"around November of the year before; an administrator adds it with `gridflow calendar add-year {year} "
        f"--holidays YYYY-MM-DD,... --makeup YYYY-MM-DD,...`",
        zh=f"工作日历尚无{year}年的节假日安排（国务院办公厅每年约11月公布次年安排）；请管理员执行 "
           f"`gridflow calendar add-year {year} --holidays 日期,... --makeup 日期,...` 添加后重试")


class TaskClosed(InvalidCommand):
    """The task is no longer open (completed, returned, cancelled): nothing more can be done with it."""
