"""Statistics on a hand-built month of grid matters, run through the engine's commands with fixed clocks.
Every expected number is worked out below from what each case went through, including the ways figures
get gamed: a unit that never signs, an approved extension, a suspension, a reopened matter, returns."""
from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook

from engine.access.scopes import Forbidden, Principal
from engine.clock import FixedClock
from engine.statistics import export
from engine.statistics.figures import BY_NAME, FIGURES
from engine.statistics.service import StatisticsError
from engine.store.models import StatFact
from tests.test_cases import Walk

CST = timezone(timedelta(hours=8))
G1, G2 = "410702001001U001", "410702002001U001"    # two townships of one county
NOV, DEC, JAN = date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)
AUDITOR = Principal("纪检", "auditor")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CST)


def matter(grid=G1):
    return {"title": "路灯损坏", "grid_code": grid, "category": "民生事项服务"}


class Case(Walk):
    """A case with its own clock, starting Monday 2026-11-02 09:00 Beijing time plus `minute`."""

    def __init__(self, engine, minute, grid=G1):
        super().__init__(engine, FixedClock(at("2026-11-02T09:00") + timedelta(minutes=minute)), matter(grid))

    def to(self, text):
        self.clock.set(at(text))
        return self

    def handled(self, result="已处理"):
        return self.do("handle", result=result, final=True)

    def checked(self, passed=True):
        return self.do("check_result", passed=passed)

    def closed(self):
        return self.do("close_case", summary="办结")

    def follow_up(self, satisfied):
        self.clock.advance(minutes=10)
        self.engine.cases.send_message(self.id, "resident_follow_up", {"satisfied": satisfied}, actor="回访",
                                       role="platform", clock=self.clock)
        return self

    def timers(self, text):
        self.to(text)
        self.engine.cases.check_timers(self.id, clock=self.clock)
        return self


@pytest.fixture
def month(deployed):
    """Ten reports in November 2026; handling limit 3 working days, so a dispatch on Monday 11-02 at
    09:30 is due Thursday 11-05 17:30."""
    e = deployed
    cases = {}
    # A: signed at once, handled, passed, closed on time; resident satisfied. Unit UA only handles A.
    cases["A"] = Case(e, 0).dispatched(unit="UA").sign().handled().checked().closed().follow_up(True)
    # B: dispatched and never signed for: the clock runs from dispatch anyway; overdue at the month's end.
    cases["B"] = Case(e, 1).dispatched().timers("2026-11-09T09:00")
    # C: an approved extension of 2 working days (due 11-09 17:30), handled on 11-06: on time.
    c = Case(e, 2).dispatched().sign()
    handle = c.task("handle")
    e.cases.request_extension(handle.id, 2, "需采购灯具", actor="unit", role="responsible_unit", clock=c.clock)
    e.cases.decide_extension(handle.id, True, actor="agency", role="grid_agency", clock=c.clock)
    cases["C"] = c.to("2026-11-06T10:00").handled().checked().closed()
    # D: signed, then late: overdue on 11-06, handled 11-09, closed late.
    cases["D"] = Case(e, 3).dispatched().sign().timers("2026-11-06T09:00").to("2026-11-09T10:00").handled() \
        .checked().closed()
    # E: within the worker's authority, resolved by the worker.
    cases["E"] = Case(e, 4)
    cases["E"].do("verify_register", verified=True, within_authority=True).do("self_handle", resolved=True)
    # F: failed the check once (rework), redone, passed, closed on time.
    f = Case(e, 5).dispatched().sign().handled().checked(False)
    cases["F"] = f.do("redo", result="重新整改").checked().closed()
    # G: returned by the first unit, dispatched again to another; open, not yet due, at the month's end.
    g = Case(e, 6).dispatched()
    g.give_back()
    cases["G"] = g.do("dispatch", unit="另一单位", handling_days=25)   # due 12-07
    # H: signed, overdue, explained in writing, and suspended (挂账) by the agency.
    h = Case(e, 7).dispatched().sign().timers("2026-11-06T09:00")
    cases["H"] = h.do("explain_overdue", explanation="需列入明年预算").do("review_explanation", accepted=True,
                                                                         suspend=True)
    # I: closed on time, resident unsatisfied: reopened and dispatched again (open, not due, at the end).
    cases["I"] = Case(e, 8).dispatched().sign().handled().checked().closed().follow_up(False) \
        .do("dispatch", unit="路灯所", handling_days=25)   # due 12-07
    # J: not verified, not filed; in the other township.
    cases["J"] = Case(e, 9, grid=G2)
    cases["J"].do("verify_register", verified=False, within_authority=False, reason="经核实不属实")
    return cases


def report(engine, principal=AUDITOR, **kw):
    kw.setdefault("period", "month")
    kw.setdefault("start", NOV)
    kw.setdefault("end", DEC)
    kw.setdefault("as_of", at("2026-12-05T00:00"))
    return engine.statistics.report(principal, **kw)


def total(rep, period="2026-11"):
    return next(r for r in rep["rows"] if r["group"] == "*" and r["period"] == period)["figures"]


def values(rep):
    """Every number of a report, without the drill filters (which name the report's own as-of time)."""
    return [(r["group"], r["period"], {n: (e["value"], e["numerator"], e["denominator"])
                                       for n, e in r["figures"].items()}) for r in rep["rows"]]


def numbers(figures, name):
    entry = figures[name]
    return entry["value"], entry["numerator"], entry["denominator"]


def test_each_figure_on_the_hand_built_month(deployed, month):
    assert deployed.queries.case(month["I"].id).status == "dispatched"   # reopened, dispatched again
    assert deployed.queries.case(month["H"].id).status == "suspended"
    figures = total(report(deployed))
    assert numbers(figures, "reported") == (10, 10, None)
    assert numbers(figures, "valid_reported") == (9, 9, None)                # J not filed
    assert numbers(figures, "filed_on_time_rate") == (1.0, 9, 9)
    assert numbers(figures, "self_resolved_rate") == (round(1 / 9, 4), 1, 9)  # E
    # Dispatches: A B C D F H, G twice (returned), I twice (reopened) = 10; signed in time: A C D F H I.
    assert numbers(figures, "timely_sign_rate") == (0.6, 6, 10)
    # Closed: A C D F I, on time A C F I; open and overdue at the end: B (H is suspended, D was closed).
    assert numbers(figures, "closed_on_time_rate") == (round(4 / 6, 4), 4, 6)
    assert numbers(figures, "handled_on_time_rate") == (round(4 / 6, 4), 4, 6)
    assert numbers(figures, "closed") == (5, 5, None)
    assert numbers(figures, "overdue_new") == (3, 3, None)                    # B D H
    assert numbers(figures, "overdue_open") == (1, 1, None)                   # B
    # B's deadline 11-05 17:30 CST; at the end of the month (12-01 00:00 CST) it had been overdue
    # 25 days and 6.5 hours.
    assert figures["overdue_days"]["value"] == round(25 + 6.5 / 24, 4)
    assert numbers(figures, "rework_rate") == (0.2, 1, 5)                     # F
    assert numbers(figures, "return_rate") == (0.1, 1, 10)                    # G
    assert numbers(figures, "extension_rate") == (0.1, 1, 10)                 # C
    assert numbers(figures, "explanations") == (1, 1, None)                   # H
    assert numbers(figures, "suspended_open") == (1, 1, None)                 # H
    # Checks: A C D I pass, F fails then passes: 5 of 6.
    assert numbers(figures, "check_pass_rate") == (round(5 / 6, 4), 5, 6)
    assert numbers(figures, "satisfaction_rate") == (0.5, 1, 2)               # A yes, I no
    assert numbers(figures, "reopened") == (1, 1, None)                       # I
    assert numbers(figures, "duplicates") == (0, 0, None)


def test_average_handling_time_counts_working_hours_from_dispatch(deployed, month):
    # A: dispatched 09:30 (three steps of 10 minutes after 09:00), signed, handled at 09:40: 10 minutes.
    rep = report(deployed, group_by="unit", figures=["avg_handling_hours"], filters={"unit": "UA"})
    [row] = [r for r in rep["rows"] if r["group"] == "UA"]
    assert numbers(row["figures"], "avg_handling_hours") == (round(10 / 60, 4), round(10 / 60, 4), 1)


def test_grouping_by_township_adds_up_to_the_total(deployed, month):
    rep = report(deployed, group_by="township")
    rows = {r["group"]: r["figures"] for r in rep["rows"]}
    assert set(rows) == {"410702001", "410702002", "*"}
    assert rows["410702002"]["reported"]["value"] == 1 and rows["410702001"]["reported"]["value"] == 9
    for figure in FIGURES:
        parts = [rows[g][figure.name]["numerator"] for g in ("410702001", "410702002")]
        assert sum(parts) == pytest.approx(rows["*"][figure.name]["numerator"]), figure.name


def test_drill_down_lists_exactly_the_cases_behind_a_number(deployed, month):
    figures = total(report(deployed))
    ids = {name: case.id for name, case in month.items()}

    def listed(figure, part):
        page = deployed.statistics.cases(AUDITOR, figures[figure]["drill"][part], per_page=200)
        return {c.id for c in page.items}

    assert listed("closed_on_time_rate", "numerator") == {ids[k] for k in "ACFI"}
    assert listed("closed_on_time_rate", "denominator") == {ids[k] for k in "ABCDFI"}
    assert listed("timely_sign_rate", "denominator") == {ids[k] for k in "ABCDFGHI"}
    assert listed("overdue_open", "numerator") == {ids["B"]}
    assert listed("suspended_open", "numerator") == {ids["H"]}
    assert listed("self_resolved_rate", "numerator") == {ids["E"]}


def test_scope_per_role(deployed, month):
    township = Principal("街道", "grid_agency", level="township", area_code="410702002")
    assert {r["group"] for r in report(deployed, township)["rows"]} == {"410702002", "*"}
    assert total(report(deployed, township))["reported"]["value"] == 1
    unit = Principal("UA", "responsible_unit", unit="UA")
    mine = total(report(deployed, unit))
    assert mine["reported"]["value"] == 0                 # reports are no unit's figure
    assert numbers(mine, "closed_on_time_rate") == (1.0, 1, 1)   # A only
    worker = Principal("w", "grid_worker", grid_code=G2)
    assert total(report(deployed, worker))["valid_reported"]["value"] == 0
    assert total(report(deployed, worker))["reported"]["value"] == 1
    # Drill-down stays in scope: the unit sees only its own case behind a county-wide number.
    drill = total(report(deployed))["closed_on_time_rate"]["drill"]["denominator"]
    assert {c.id for c in deployed.statistics.cases(unit, drill).items} == {month["A"].id}
    with pytest.raises(Forbidden):
        report(deployed, Principal("县政府", "county_government", area_code="410702"))
    with pytest.raises(Forbidden):
        report(deployed, Principal("admin", "process_admin"))


def test_figures_of_a_past_period_are_the_same_after_later_history(deployed, month):
    before = report(deployed, group_by="township", as_of=at("2026-12-05T00:00"))
    # December: B is finally signed and handled late, and closed; H's unit reports back; G goes overdue.
    b = month["B"].to("2026-12-07T09:00")
    b.sign().handled().checked().closed()
    month["H"].to("2026-12-07T10:00").handled()
    month["G"].timers("2026-12-28T09:00")
    month["I"].timers("2026-12-28T09:00")
    later = report(deployed, group_by="township", as_of=at("2026-12-31T00:00"))
    assert values(later) == values(before)
    assert later["rules"] == before["rules"] and before["rules"]["figures"] == "stats-2026.12-1"
    assert before["rules"]["used"]                           # the time-limit and calendar versions are named
    december = total(report(deployed, start=DEC, end=JAN, as_of=at("2026-12-31T00:00")), "2026-12")
    assert numbers(december, "closed") == (1, 1, None)       # B, late
    # B closed late; G and I open and overdue at the end of December.
    assert numbers(december, "closed_on_time_rate") == (0.0, 0, 3)
    assert numbers(december, "handled_on_time_rate") == (0.0, 0, 4)  # B and H reported back late
    assert numbers(december, "suspended_open") == (0, 0, None)


def test_as_of_counts_only_what_had_happened_by_then(deployed, month):
    early = total(report(deployed, as_of=at("2026-11-02T09:35")))
    # By 09:35 (inclusive) all ten were reported; only A, B, C, D and F were dispatched (each 30 minutes
    # after its start, F's at 09:35 itself; E is the worker's own).
    assert early["reported"]["value"] == 10
    assert early["timely_sign_rate"]["denominator"] == 5
    assert total(report(deployed, as_of=at("2026-11-02T09:34:59")))["timely_sign_rate"]["denominator"] == 4


def test_weeks_and_compare(deployed, month):
    rep = report(deployed, period="week", start=date(2026, 11, 2), end=date(2026, 11, 16), compare=True)
    assert [p["key"] for p in rep["periods"]] == ["2026-W45", "2026-W46"]
    w45 = total(rep, "2026-W45")
    assert w45["reported"]["value"] == 10 and w45["reported"]["previous"] is None
    w46 = total(rep, "2026-W46")
    assert w46["overdue_open"]["value"] == 1          # B at the end of week 46
    assert w45["overdue_open"]["value"] == 2          # B and D at the end of week 45 (H suspended 11-06)
    assert rep["compared_with"] == {"start": date(2026, 10, 19), "end": date(2026, 11, 2)}


def test_export_files_read_back_with_the_same_numbers(deployed, month):
    rep = report(deployed, group_by="township")
    book = load_workbook(io.BytesIO(export.to_xlsx(rep)), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert len(body) == len(rep["rows"])
    for line, row in zip(body, rep["rows"]):
        cells = dict(zip(header, line))
        assert cells["group"] == row["group"] and cells["period"] == row["period"]
        for name, entry in row["figures"].items():
            assert cells[name] == entry["value"] and cells[f"{name}.numerator"] == entry["numerator"]
    text = export.to_csv(rep).decode("utf-8-sig").splitlines()
    assert text[0].split(",")[:4] == ["period", "group", "name", "reported"]
    assert len(text) == len(rep["rows"]) + 1


def test_bad_requests_are_refused_clearly(deployed, month):
    with pytest.raises(StatisticsError, match="unknown period"):
        report(deployed, period="fortnight")
    with pytest.raises(StatisticsError, match="unknown figures"):
        report(deployed, figures=["nope"])
    with pytest.raises(StatisticsError, match="area"):
        report(deployed, filters={"area": "abc"})
    with pytest.raises(StatisticsError, match="period_end"):
        deployed.statistics.case_filter(AUDITOR, {"figure": "reported", "period_start": DEC, "period_end": NOV})


def test_every_fact_points_at_the_history_event_that_recorded_it(deployed, month):
    with deployed.readers() as session:
        facts = session.query(StatFact).all()
    events = {(e.case_id, e.seq): e for c in month.values() for e in deployed.queries.history(c.id)}
    assert facts and all((f.case_id, f.seq) in events for f in facts)
    assert all(events[(f.case_id, f.seq)].clock_time == f.at for f in facts if f.kind not in ("overdue",))


def test_docs_define_every_figure():
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "docs" / "statistics.md").read_text()
    for figure in FIGURES:
        assert f"`{figure.name}`" in text, figure.name
    assert set(BY_NAME) == {f.name for f in FIGURES}
