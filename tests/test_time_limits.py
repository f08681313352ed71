from datetime import date, datetime

import pytest

from rules.calendar import BEIJING, UnknownYear, WorkCalendar
from rules.time_limits import (
    CATEGORIES, COLUMNS, TimeLimitTableError, UnknownSubCategory, load_time_limits,
)
from tests.table_files import raised, write_csv

HEADER = ",".join(COLUMNS)
GOOD = "road_lighting,路灯不亮,民生事项服务,normal,3,working_days,2,2,路灯恢复照明"


def cst(*args) -> datetime:
    return datetime(*args, tzinfo=BEIJING)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar.from_chinese_calendar(years=[2026])


@pytest.fixture(scope="module")
def table():
    return load_time_limits()


def write_table(tmp_path, *lines, header=HEADER, name="limits.csv", **options):
    return write_csv(tmp_path / name, header, *lines, **options)


def problems_of(path):
    return raised(TimeLimitTableError, load_time_limits, path)


# --- the shipped table ------------------------------------------------------------------------------------------

def test_the_shipped_table_loads(table):
    assert table.version == "2026.1" and table.effective_from == date(2026, 1, 1)
    assert 15 <= len(table) <= 25
    assert {limit.category for limit in table} == set(CATEGORIES)   # every kind of 条例 §12 has a limit
    assert len(table.fingerprint) == 64 and load_time_limits().fingerprint == table.fingerprint


def test_the_shipped_table_follows_the_domain_defaults(table):
    assert table.limit("population_info_update").handling_limit == 0            # worker's own: same day
    assert table.limit("road_lighting").handling_limit == 3
    assert table.limit("property_management_dispute").handling_limit == 15     # complex
    for outage in ("water_supply_outage", "power_outage", "gas_supply_outage", "heating_failure"):
        limit = table.limit(outage, "urgent")
        assert (limit.handling_limit, limit.handling_unit) == (24, "natural_hours")
    emergencies = [limit for limit in table if limit.urgency == "emergency"]
    assert emergencies and all((l.handling_limit, l.handling_unit) == (2, "natural_hours") for l in emergencies)
    assert all(limit.return_window_days == 2 for limit in table)
    assert all(limit.sign_for_limit_hours == 2 for limit in table if limit.urgency == "normal")
    assert all(limit.sign_for_limit_hours == 1 for limit in table if limit.urgency == "urgent")


def test_an_unknown_sub_category_names_what_exists(table):
    with pytest.raises(UnknownSubCategory) as caught:
        table.limit("street_lamp")
    assert isinstance(caught.value, KeyError)
    assert str(caught.value).startswith("unknown sub-category 'street_lamp'")
    assert "road_lighting" in str(caught.value) and "2026.1" in str(caught.value)


def test_a_missing_urgency_names_the_urgencies_the_sub_category_has(table):
    with pytest.raises(UnknownSubCategory, match="no 'emergency' limit for 'road_lighting'; it has: normal, urgent"):
        table.limit("road_lighting", "emergency")
    with pytest.raises(ValueError, match="unknown urgency"):
        table.limit("road_lighting", "asap")


# --- deadlines --------------------------------------------------------------------------------------------------

def test_deadline_in_working_days(table, cal):
    assert table.limit("road_lighting").deadline(cst(2026, 9, 30, 10, 0), cal) == cst(2026, 10, 10, 17, 30)


def test_deadline_the_same_working_day(table, cal):
    limit = table.limit("population_info_update")
    assert limit.deadline(cst(2026, 11, 2, 10, 0), cal) == cst(2026, 11, 2, 17, 30)


def test_deadline_in_working_hours(table, cal):
    limit = table.limit("road_lighting", "urgent")   # 8 working hours
    # 1.5 h on Friday, 3 h on Monday morning, 3.5 h from 13:30.
    assert limit.deadline(cst(2026, 11, 6, 16, 0), cal) == cst(2026, 11, 9, 17, 0)


def test_deadline_in_natural_hours_runs_through_the_holiday(table, cal):
    limit = table.limit("power_outage", "urgent")
    assert limit.deadline(cst(2026, 10, 1, 3, 0), cal) == cst(2026, 10, 2, 3, 0)


def test_sign_for_and_return_deadlines(table, cal):
    limit = table.limit("road_lighting")
    start = cst(2026, 11, 6, 16, 0)   # Friday
    assert limit.sign_for_deadline(start, cal) == cst(2026, 11, 9, 9, 30)   # 2 working hours
    assert limit.return_deadline(start, cal) == cst(2026, 11, 10, 17, 30)   # 2 working days
    urgent = table.limit("road_lighting", "urgent")
    assert urgent.sign_for_deadline(start, cal) == cst(2026, 11, 6, 17, 0)  # 1 working hour


def test_no_window_outlasts_the_handling_deadline(table, cal):
    limit = table.limit("manhole_cover_missing", "emergency")
    night = cst(2026, 10, 2, 22, 0)   # a holiday night: working hours would run to 10-08
    assert limit.deadline(night, cal) == cst(2026, 10, 3, 0, 0)
    assert limit.sign_for_deadline(night, cal) == cst(2026, 10, 3, 0, 0)
    assert limit.return_deadline(night, cal) == cst(2026, 10, 3, 0, 0)


def test_a_deadline_in_an_unknown_year_is_refused(table, cal):
    with pytest.raises(UnknownYear, match="2027"):
        table.limit("property_management_dispute").deadline(cst(2026, 12, 20, 10, 0), cal)


# --- a table an administrator edits -----------------------------------------------------------------------------

def test_a_valid_table_loads_with_its_version(tmp_path):
    table = load_time_limits(write_table(tmp_path, GOOD,
                                         "road_lighting,路灯不亮,民生事项服务,urgent,8,working_hours,1,2,恢复"))
    assert table.version == "t.1" and len(table) == 2
    limit = table.limit("road_lighting")
    assert (limit.handling_limit, limit.handling_unit, limit.sign_for_limit_hours) == (3, "working_days", 2)
    assert isinstance(limit.handling_limit, int)


def test_excel_artifacts_are_accepted(tmp_path):
    # A byte-order mark ("CSV UTF-8"), spaces around cells, "3.0", blank rows, a line break inside a cell.
    path = write_table(tmp_path, "", " road_lighting , 路灯不亮 ,民生事项服务,normal,3.0,working_days,2,2,"
                                     "\"恢复照明\n并核查\"", ",,,,,,,,", encoding="utf-8-sig")
    table = load_time_limits(path)
    assert table.limit("road_lighting").handling_limit == 3
    assert table.limit("road_lighting").closing_condition == "恢复照明\n并核查"


def test_every_problem_is_reported_with_its_spreadsheet_row_and_column(tmp_path):
    path = write_table(
        tmp_path,
        GOOD,                                                                               # row 2
        "fire_hazard,消防隐患,安全隐患排查,normal,2,days,2,2,清除",                           # row 3: unit
        "fire_hazard,消防隐患,安全隐患排查,urgent,-1,working_hours,1,2,清除",                 # row 4: limit
        "power_outage,停电,水电气暖,urgent,24,natural_hours,1,2,恢复",                        # row 5: category
        "power_outage,停电,民生事项服务,asap,24,natural_hours,1,2,恢复",                      # row 6: urgency
        "road_lighting,路灯不亮,民生事项服务,normal,5,working_days,2,2,恢复",                 # row 7: duplicate
    )
    error = problems_of(path)
    found = {(p.row, p.column) for p in error.problems}
    assert found == {(3, "handling_unit"), (4, "handling_limit"), (5, "category"), (6, "urgency"),
                     (7, "sub_category, urgency")}
    assert "limits.csv, row 3, column handling_unit: unknown unit 'days'" in str(error)
    assert "row 4, column handling_limit: -1 must be positive" in str(error)
    assert "already in row 2" in str(error)
    assert "5 problem(s)" in str(error)


@pytest.mark.parametrize("cells, column, reason", [
    ("x,名,其他,normal,0,working_hours,1,2,c", "handling_limit", "must be positive"),
    ("x,名,其他,normal,0,natural_hours,1,2,c", "handling_limit", "must be positive"),
    ("x,名,其他,normal,-1,working_days,1,2,c", "handling_limit", "must be 0 or more"),
    ("x,名,其他,normal,2.5,working_days,1,2,c", "handling_limit", "not a whole number"),
    ("x,名,其他,normal,three,working_days,1,2,c", "handling_limit", "not a number"),
    ("x,名,其他,normal,inf,natural_hours,1,2,c", "handling_limit", "not a number"),
    ("x,名,其他,normal,2,working_days,0,2,c", "sign_for_limit_hours", "must be positive"),
    ("x,名,其他,normal,2,working_days,1,0,c", "return_window_days", "must be positive"),
    ("x,名,其他,normal,2,working_days,1,1.5,c", "return_window_days", "not a whole number"),
    ("x,名,其他,normal,2,working_days,1,2,", "closing_condition", "empty"),
    ("x,,其他,normal,2,working_days,1,2,c", "name", "empty"),
    ("Road Lighting,名,其他,normal,2,working_days,1,2,c", "sub_category", "not a code"),
    ("x,名,其它,normal,2,working_days,1,2,c", "category", "unknown category '其它'"),
])
def test_each_cell_is_checked(tmp_path, cells, column, reason):
    error = problems_of(write_table(tmp_path, cells))
    assert [(p.row, p.column) for p in error.problems] == [(2, column)]
    assert reason in error.problems[0].reason


def test_blank_rows_keep_the_row_numbers_of_the_spreadsheet(tmp_path):
    error = problems_of(write_table(tmp_path, GOOD, "", "x,名,其他,normal,2,hours,1,2,c"))
    assert [(p.row, p.column) for p in error.problems] == [(4, "handling_unit")]


def test_a_sub_category_keeps_one_name_and_category(tmp_path):
    error = problems_of(write_table(tmp_path, GOOD, "road_lighting,路灯,民生事项服务,urgent,8,working_hours,1,2,c"))
    assert [(p.row, p.column) for p in error.problems] == [(3, "name, category")]
    assert "in row 2" in str(error)


def test_missing_and_unknown_columns_are_reported_on_row_1(tmp_path):
    header = HEADER.replace(",handling_unit", "").replace("closing_condition", "closing")
    error = problems_of(write_table(tmp_path, "x,名,其他,normal,2,1,2,c", header=header))
    assert {(p.row, p.column, p.reason.split(";")[0]) for p in error.problems} == {
        (1, "handling_unit", "missing column"), (1, "closing_condition", "missing column"),
        (1, "closing", "unknown column")}


def test_a_file_that_is_not_utf8_says_how_to_save_it(tmp_path):
    error = problems_of(write_table(tmp_path, GOOD, encoding="gbk"))
    assert "CSV UTF-8" in str(error)


def test_extra_cells_are_reported(tmp_path):
    error = problems_of(write_table(tmp_path, GOOD + ",stray"))
    assert [(p.row, p.column) for p in error.problems] == [(2, None)]


@pytest.mark.parametrize("meta, column", [
    (False, None),
    ({"effective_from": "2026-01-01"}, "version"),
    ({"version": "t.1", "effective_from": "1 Jan"}, "effective_from"),
])
def test_the_version_file_is_required_and_checked(tmp_path, meta, column):
    error = problems_of(write_table(tmp_path, GOOD, meta=meta))
    assert [(p.file, p.row, p.column) for p in error.problems] == [("limits.meta.json", None, column)]


def test_an_empty_table_is_refused(tmp_path):
    assert "no rows" in str(problems_of(write_table(tmp_path)))


def test_the_fingerprint_is_of_the_meaning(tmp_path):
    other = "fire_hazard,消防隐患,安全隐患排查,normal,2,working_days,2,2,清除"
    versions = {"one": (GOOD, other), "reordered": (other, GOOD.replace(",3,", ",3.0,")),
                "changed": (GOOD.replace(",3,", ",4,"), other)}
    prints = {key: load_time_limits(write_table(tmp_path, *rows, name=f"{key}.csv")).fingerprint
              for key, rows in versions.items()}
    assert prints["one"] == prints["reordered"]
    assert prints["changed"] != prints["one"]
