"""Every figure, defined once: what it counts above and below the line, by which facts. docs/statistics.md
says the same in words; a test checks that both name the same figures.

A part is one additive quantity over the facts of a period, so figures of groups add up to the total:
  ("count", kind)       facts of that kind whose period moment falls in the period
  ("on_time", kind)     of those, the ones whose verdict was yes (on time, passed, satisfied)
  ("nonzero", kind)     of those, the ones with n > 0 (a closing after rework, a first extension)
  ("amount", kind)      the sum of their amounts (working hours), with ("amount_n", kind) how many had one
  ("stock", kind)       spans of that kind open at the period's end (overdue, suspended)
  ("stock_days", kind)  the natural days those open spans had lasted by then
"""
from __future__ import annotations

from dataclasses import dataclass

# The version of these definitions and of the statistics rules in facts.py (filing limit, default sign-for
# limit); named in every report with the time-limit and calendar versions the facts were judged by.
RULES_VERSION = "stats-2026.12-1"


@dataclass(frozen=True)
class Figure:
    name: str
    zh: str
    en: str
    kind: str                       # count, rate, average, stock
    numerator: tuple
    denominator: tuple = ()

    @property
    def parts(self) -> tuple:
        return self.numerator + self.denominator


def _c(kind):
    return ("count", kind)


FIGURES = (
    Figure("reported", "上报数", "Reports", "count", (_c("reported"),)),
    Figure("valid_reported", "有效上报数", "Valid reports (filed)", "count", (_c("filed"),)),
    Figure("filed_on_time_rate", "按时立案率", "Filed on time", "rate", (("on_time", "filed"),), (_c("filed"),)),
    Figure("self_resolved_rate", "自行处置率", "Self-resolved", "rate", (_c("self_resolved"),), (_c("filed"),)),
    Figure("timely_sign_rate", "及时签收率", "Signed for in time", "rate", (("on_time", "signed"),),
           (_c("dispatched"),)),
    Figure("handled_on_time_rate", "按期处置率", "Handled on time", "rate", (("on_time", "feedback"),),
           (_c("feedback"), ("stock", "overdue"))),
    Figure("closed_on_time_rate", "按期结案率", "Closed on time", "rate", (("on_time", "closed"),),
           (_c("closed"), ("stock", "overdue"))),
    Figure("closed", "结案数", "Closed", "count", (_c("closed"),)),
    Figure("overdue_new", "新增超期数", "Became overdue", "count", (_c("overdue"),)),
    Figure("overdue_open", "超期未结数", "Open and overdue at the end", "stock", (("stock", "overdue"),)),
    Figure("overdue_days", "超期天数", "Days overdue of those open at the end", "stock",
           (("stock_days", "overdue"),)),
    Figure("rework_rate", "返工率", "Closed after rework", "rate", (("nonzero", "closed"),), (_c("closed"),)),
    Figure("return_rate", "回退率", "Returned", "rate", (_c("returned"),), (_c("dispatched"),)),
    Figure("extension_rate", "延期率", "Extended", "rate", (("nonzero", "extension"),), (_c("dispatched"),)),
    Figure("explanations", "书面说明数", "Written explanations", "count", (_c("explanation"),)),
    Figure("suspended_open", "挂账数", "Suspended at the end", "stock", (("stock", "suspended"),)),
    Figure("check_pass_rate", "核查通过率", "Checks passed", "rate", (("on_time", "check"),), (_c("check"),)),
    Figure("avg_handling_hours", "平均处置时长", "Average handling time (working hours)", "average",
           (("amount", "feedback"),), (("amount_n", "feedback"),)),
    Figure("duplicates", "重复件数", "Duplicates", "count", (_c("duplicate"),)),
    Figure("satisfaction_rate", "满意率", "Satisfied at follow-up", "rate", (("on_time", "follow_up"),),
           (_c("follow_up"),)),
    Figure("reopened", "重新办理数", "Reopened", "count", (_c("reopened"),)),
    Figure("withdrawn", "撤销数", "Withdrawn or cancelled", "count", (_c("cancelled"),)),
)
BY_NAME = {f.name: f for f in FIGURES}
# What the dashboard and the Prometheus gauges show.
HEADLINE = ("reported", "valid_reported", "self_resolved_rate", "timely_sign_rate", "closed_on_time_rate",
            "overdue_open", "rework_rate", "satisfaction_rate", "suspended_open", "duplicates")


def value_of(figure: Figure, parts: dict) -> tuple:
    """(value, numerator, denominator) from the summed parts; a rate or average over nothing is None."""
    num = _tidy(sum(parts.get(p, 0) for p in figure.numerator))
    if figure.kind in ("count", "stock"):
        return num, num, None
    den = _tidy(sum(parts.get(p, 0) for p in figure.denominator))
    if not den:
        return None, num, den
    return round(num / den, 4), num, den


def _tidy(number):
    """Counts as integers, hours and days to 4 places."""
    number = round(float(number), 4)
    return int(number) if number.is_integer() else number
