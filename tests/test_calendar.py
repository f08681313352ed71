import json
from datetime import date, datetime, time, timedelta, timezone

import pytest

from rules.calendar import BEIJING, WorkCalendar, UnknownYear

UTC = timezone.utc


def cst(*args) -> datetime:
    return datetime(*args, tzinfo=BEIJING)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar.from_chinese_calendar(years=[2025, 2026])


# --- the official 2026 schedule -------------------------------------------------------------------------------

def test_2026_makeup_days_are_the_official_ones(cal):
    assert sorted(d for d in cal.makeup_workdays if d.year == 2026) == [
        date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 9, 20),
        date(2026, 10, 10)]


@pytest.mark.parametrize("day, working", [
    (date(2026, 2, 14), True),    # Saturday, makeup working day (调休)
    (date(2026, 10, 10), True),   # Saturday, makeup working day
    (date(2026, 10, 1), False),   # National Day
    (date(2026, 2, 16), False),   # 除夕, a statutory holiday since 2025
    (date(2025, 5, 2), False),    # 5月2日, a statutory holiday since 2025
    (date(2026, 3, 7), False),    # ordinary Saturday
    (date(2026, 3, 9), True),     # ordinary Monday
])
def test_is_working_day(cal, day, working):
    assert cal.is_working_day(day) is working


def test_an_aware_datetime_counts_at_its_beijing_date(cal):
    # 2026-10-09 20:00 UTC is Saturday 10-10 04:00 in Beijing: a makeup working day.
    assert cal.is_working_day(datetime(2026, 10, 9, 20, 0, tzinfo=UTC)) is True
    assert cal.is_working_day(datetime(2026, 10, 9, 15, 0, tzinfo=UTC)) is True   # Friday 23:00 in Beijing


def test_third_working_day_after_30_september_2026_is_the_makeup_saturday(cal):
    deadline = cal.add_working_days(cst(2026, 9, 30, 10, 0), 3)
    assert deadline == cst(2026, 10, 10, 17, 30)
    assert deadline.tzinfo == UTC and deadline == datetime(2026, 10, 10, 9, 30, tzinfo=UTC)


def test_chinese_calendar_seeds_every_year_it_has(cal):
    full = WorkCalendar.from_chinese_calendar()
    assert full.years == frozenset(range(2004, 2027))
    assert full.is_working_day(date(2004, 1, 17))   # a makeup Saturday in the package's first year
    assert cal.years == {2025, 2026}


# --- counting working days --------------------------------------------------------------------------------------

@pytest.mark.parametrize("start", [cst(2026, 11, 2, 0, 0), cst(2026, 11, 2, 8, 0), cst(2026, 11, 2, 23, 59)])
def test_the_start_day_is_not_counted_whatever_the_hour(cal, start):
    assert cal.add_working_days(start, 1) == cst(2026, 11, 3, 17, 30)


def test_counting_skips_weekends_and_holidays_and_includes_makeup_days(cal):
    # Friday before the Spring Festival: Saturday 02-14 works, then 02-15..23 are rest days.
    assert cal.add_working_days(cst(2026, 2, 13, 9, 0), 1) == cst(2026, 2, 14, 17, 30)
    assert cal.add_working_days(cst(2026, 2, 13, 9, 0), 2) == cst(2026, 2, 24, 17, 30)
    assert cal.add_working_days(cst(2026, 11, 6, 9, 0), 1) == cst(2026, 11, 9, 17, 30)   # Friday → Monday


def test_a_start_on_a_rest_day_counts_from_the_next_day(cal):
    assert cal.add_working_days(cst(2026, 10, 3, 12, 0), 1) == cst(2026, 10, 8, 17, 30)


def test_zero_working_days_is_the_same_working_day(cal):
    assert cal.add_working_days(cst(2026, 11, 2, 10, 0), 0) == cst(2026, 11, 2, 17, 30)
    assert cal.add_working_days(cst(2026, 11, 2, 17, 30), 0) == cst(2026, 11, 2, 17, 30)
    # Reported after the close, or on a rest day: the next working day (民法典 §203).
    assert cal.add_working_days(cst(2026, 11, 2, 18, 0), 0) == cst(2026, 11, 3, 17, 30)
    assert cal.add_working_days(cst(2026, 10, 1, 10, 0), 0) == cst(2026, 10, 8, 17, 30)


@pytest.mark.parametrize("n", [-1, 1.5, True, "2"])
def test_working_days_must_be_a_whole_number(cal, n):
    with pytest.raises(ValueError, match="whole number"):
        cal.add_working_days(cst(2026, 11, 2, 10, 0), n)


def test_working_days_between_counts_as_add_working_days_does(cal):
    start = cst(2026, 9, 30, 10, 0)
    assert cal.working_days_between(start, cst(2026, 10, 10, 17, 30)) == 3
    assert cal.working_days_between(date(2026, 10, 10), date(2026, 9, 30)) == -3
    assert cal.working_days_between(date(2026, 10, 2), date(2026, 10, 2)) == 0
    for n in range(0, 40):
        assert cal.working_days_between(start, cal.add_working_days(start, n)) == n


# --- unknown years ----------------------------------------------------------------------------------------------

def test_a_year_not_covered_is_refused_never_guessed(cal):
    with pytest.raises(UnknownYear) as caught:
        cal.is_working_day(date(2027, 1, 4))
    assert caught.value.year == 2027
    message = str(caught.value)
    assert "2027" in message and "November" in message and "with_year(2027" in message
    assert isinstance(caught.value, ValueError)
    with pytest.raises(UnknownYear):
        cal.is_working_day(date(2024, 12, 31))


def test_a_count_that_crosses_into_an_unknown_year_is_refused(cal):
    with pytest.raises(UnknownYear, match="2027"):
        cal.add_working_days(cst(2026, 12, 29, 10, 0), 5)
    with pytest.raises(UnknownYear, match="2027"):
        cal.add_working_hours(cst(2026, 12, 31, 17, 0), 1)
    with pytest.raises(UnknownYear, match="2027"):
        cal.working_days_between(date(2026, 12, 1), date(2027, 1, 5))


def test_chinese_calendar_years_beyond_its_data_are_refused():
    with pytest.raises(UnknownYear, match="2027"):
        WorkCalendar.from_chinese_calendar(years=[2026, 2027])


def test_an_administrator_adds_next_year(cal):
    extended = cal.with_year(2027, holidays=["2027-01-01"], makeup_workdays=[])
    assert extended.is_working_day(date(2027, 1, 4)) is True
    assert extended.is_working_day(date(2027, 1, 1)) is False
    # 2026-12-31 (Thursday) + 1 working day: 2027-01-01 is a holiday, 01-02/03 a weekend.
    assert extended.add_working_days(cst(2026, 12, 31, 10, 0), 1) == cst(2027, 1, 4, 17, 30)
    with pytest.raises(UnknownYear):  # the old calendar is unchanged
        cal.is_working_day(date(2027, 1, 4))


def test_with_year_replaces_a_year_and_keeps_dates_in_it(cal):
    corrected = cal.with_year(2026, holidays=[], makeup_workdays=[])
    assert corrected.is_working_day(date(2026, 10, 1)) is True
    assert corrected.is_working_day(date(2026, 10, 10)) is False
    assert corrected.is_working_day(date(2025, 10, 1)) is False   # other years untouched
    with pytest.raises(ValueError, match="not in 2027"):
        cal.with_year(2027, holidays=["2026-10-01"], makeup_workdays=[])


# --- closures ---------------------------------------------------------------------------------------------------

def test_a_closure_is_a_rest_day_and_pushes_a_deadline(cal):
    closed = cal.with_closures([date(2026, 11, 3)])   # a Tuesday
    assert cal.is_working_day(date(2026, 11, 3)) is True
    assert closed.is_working_day(date(2026, 11, 3)) is False
    assert cal.add_working_days(cst(2026, 11, 2, 10, 0), 1) == cst(2026, 11, 3, 17, 30)
    assert closed.add_working_days(cst(2026, 11, 2, 10, 0), 1) == cst(2026, 11, 4, 17, 30)
    assert closed.add_working_hours(cst(2026, 11, 2, 17, 0), 1) == cst(2026, 11, 4, 9, 30)


def test_a_closure_also_closes_a_makeup_day_and_needs_a_covered_year(cal):
    assert cal.with_closures(["2026-10-10"]).is_working_day(date(2026, 10, 10)) is False
    with pytest.raises(UnknownYear):
        cal.with_closures([date(2027, 3, 1)])


# --- working hours ----------------------------------------------------------------------------------------------

def test_working_hours_from_friday_afternoon_continue_on_monday(cal):
    # 16:00→17:30 is 1.5 h; the other 2.5 h run from Monday 09:00, inside the morning period.
    assert cal.add_working_hours(cst(2026, 11, 6, 16, 0), 4) == cst(2026, 11, 9, 11, 30)
    assert cal.add_working_hours(cst(2026, 11, 6, 16, 0), 4) == datetime(2026, 11, 9, 3, 30, tzinfo=UTC)


@pytest.mark.parametrize("start, hours, end", [
    (cst(2026, 11, 6, 16, 0), 1.5, cst(2026, 11, 6, 17, 30)),    # used up at the close: ends at the close
    (cst(2026, 11, 2, 11, 0), 2, cst(2026, 11, 2, 14, 30)),      # lunch break not counted
    (cst(2026, 11, 2, 12, 15), 1, cst(2026, 11, 2, 14, 30)),     # starting in the lunch break
    (cst(2026, 11, 2, 7, 0), 1, cst(2026, 11, 2, 10, 0)),        # before opening
    (cst(2026, 11, 2, 20, 0), 0.25, cst(2026, 11, 3, 9, 15)),    # after closing
    (cst(2026, 11, 2, 9, 0), 7, cst(2026, 11, 2, 17, 30)),       # a whole working day is 7 h
    (cst(2026, 9, 30, 17, 0), 1, cst(2026, 10, 8, 9, 30)),       # over the National Day holiday
    (cst(2026, 10, 9, 17, 0), 1, cst(2026, 10, 10, 9, 30)),      # into a makeup Saturday
    (cst(2026, 11, 2, 10, 0), 0, cst(2026, 11, 2, 10, 0)),
    (cst(2026, 11, 2, 12, 0), 0, cst(2026, 11, 2, 13, 30)),      # 0 h: first working moment
])
def test_working_hours(cal, start, hours, end):
    result = cal.add_working_hours(start, hours)
    assert result == end and result.tzinfo == UTC


def test_working_hours_are_configurable():
    summer = WorkCalendar.from_chinese_calendar(years=[2026], working_hours=[("08:30", "12:00"),
                                                                              ("14:30", "18:00")])
    assert summer.add_working_hours(cst(2026, 7, 1, 11, 0), 2) == cst(2026, 7, 1, 15, 30)
    assert summer.add_working_days(cst(2026, 7, 1, 11, 0), 1) == cst(2026, 7, 2, 18, 0)


@pytest.mark.parametrize("hours", [[("12:00", "09:00")], [("09:00", "12:00"), ("11:00", "17:00")], [],
                                   [("9h", "12:00")]])
def test_bad_working_hours_are_refused(hours):
    with pytest.raises(ValueError):
        WorkCalendar(years={2026}, working_hours=hours)


# --- natural hours ----------------------------------------------------------------------------------------------

def test_natural_hours_run_through_holidays_and_need_no_schedule(cal):
    assert cal.add_natural_hours(cst(2026, 9, 30, 20, 0), 24) == cst(2026, 10, 1, 20, 0)
    assert cal.add_natural_hours(cst(2030, 1, 1, 0, 0), 2) == datetime(2029, 12, 31, 18, 0, tzinfo=UTC)
    assert cal.add_natural_hours(cst(2026, 10, 1, 0, 0), 2).tzinfo == UTC


# --- inputs -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda c, t: c.add_working_days(t, 1),
    lambda c, t: c.add_working_hours(t, 1),
    lambda c, t: c.add_natural_hours(t, 1),
    lambda c, t: c.is_working_day(t),
    lambda c, t: c.working_days_between(t, t),
])
def test_naive_datetimes_are_refused(cal, call):
    with pytest.raises(ValueError, match="naive"):
        call(cal, datetime(2026, 11, 2, 10, 0))


def test_other_time_zones_are_read_as_the_moment_they_are(cal):
    # Monday 2026-11-02 03:00 in New York (UTC-5) is 16:00 in Beijing.
    new_york = timezone(timedelta(hours=-5))
    assert cal.add_working_hours(datetime(2026, 11, 2, 3, 0, tzinfo=new_york), 2) == cst(2026, 11, 3, 9, 30)


@pytest.mark.parametrize("kwargs, match", [
    ({"years": {2026}, "makeup_workdays": [date(2026, 2, 13)]}, "Friday"),
    ({"years": {2026}, "holidays": ["2026-02-14"], "makeup_workdays": ["2026-02-14"]}, "both"),
    ({"years": {2026}, "holidays": ["2027-01-01"]}, "2027"),
    ({"years": {2026}, "holidays": ["1 October"]}, "not a date"),
    ({"years": {"2026"}}, "integer"),
])
def test_inconsistent_data_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WorkCalendar(**kwargs)


# --- storage ----------------------------------------------------------------------------------------------------

def test_data_round_trips_through_json_with_the_same_fingerprint(cal):
    closed = cal.with_closures(["2026-11-03"])
    data = json.loads(json.dumps(closed.to_data()))
    again = WorkCalendar.from_data(data)
    assert again == closed and again.fingerprint == closed.fingerprint
    assert data["closures"] == ["2026-11-03"] and data["working_hours"] == [["09:00", "12:00"], ["13:30", "17:30"]]
    assert "2026-02-14" in data["makeup_workdays"] and "2026-10-01" in data["holidays"]
    assert len(closed.fingerprint) == 64 and closed.fingerprint != cal.fingerprint


def test_the_fingerprint_is_of_the_meaning():
    # A weekend date given as a holiday changes nothing, so it changes neither the data nor the fingerprint.
    plain = WorkCalendar(years={2026}, holidays=["2026-10-01"])
    redundant = WorkCalendar(years=[2026], holidays=[date(2026, 10, 1), date(2026, 10, 3)])
    assert redundant.to_data() == plain.to_data() and redundant.fingerprint == plain.fingerprint
    assert WorkCalendar(years={2026}, working_hours=[(time(9), time(17))]).fingerprint != plain.fingerprint


@pytest.mark.parametrize("data, match", [
    ([], "dict"),
    ({"format": 2, "years": [], "holidays": [], "makeup_workdays": []}, "format"),
    ({"format": 1, "years": [2026], "holidays": []}, "makeup_workdays"),
])
def test_bad_stored_data_is_refused(data, match):
    with pytest.raises(ValueError, match=match):
        WorkCalendar.from_data(data)


def test_a_calendar_is_immutable(cal):
    with pytest.raises(AttributeError):
        cal.years = frozenset({2027})
