from datetime import date

import pytest

from rules.grid_codes import GridCode, InvalidDivisionCode, InvalidGridCode
from rules.levels import LEVELS, UnknownLevel
from rules.routing import (
    COLUMNS, UNIT_COLUMNS, UNIT_KINDS, NoRoute, RoutingTableError, load_routing, load_units,
)
from rules.time_limits import load_time_limits
from tests.table_files import raised, write_csv

HEADER = ",".join(COLUMNS)
UNITS = [
    "hq_chengguan,红旗区城市管理局,linkage_department,county",
    "hq_ludeng,红旗区市政路灯管理所,service_unit,county;township",
    "hq_power,红旗供电服务中心,service_unit,county;township;community",
    "hq_wuye,安居物业,service_unit,community",
    "xx_chengguan,新乡市城市管理局,linkage_department,city",
]
EXAMPLE = "410702001001U001"


def write_table(tmp_path, *lines, header=HEADER, meta=None, units=UNITS, name="routing.csv"):
    path = write_csv(tmp_path / name, header, *lines, meta=meta)
    if units is not None:
        write_csv(tmp_path / "units.csv", ",".join(UNIT_COLUMNS), *units, meta=False, line_end="\n")
    return path


def problems_of(path, **options):
    error = raised(RoutingTableError, load_routing, path, **options)
    assert isinstance(error, ValueError)
    return error


@pytest.fixture(scope="module")
def shipped():
    return load_routing(sub_categories=load_time_limits().sub_categories)


@pytest.fixture
def layered(tmp_path):
    """One sub-category routed at every level, with areas of every specificity."""
    return load_routing(write_table(
        tmp_path,
        "road_lighting,county,*,hq_chengguan,hq_ludeng",           # row 2
        "road_lighting,township,*,hq_ludeng,",                      # row 3
        "road_lighting,township,410702001,hq_ludeng,hq_power",      # row 4
        "road_lighting,community,410702001001,hq_wuye,hq_power",    # row 5
        "road_lighting,community,410702,hq_power,",                 # row 6
        "road_lighting,city,*,xx_chengguan,",                       # row 7
        "road_lighting,county,410702002,hq_chengguan,hq_power",     # row 8
    ))


# --- the shipped table ------------------------------------------------------------------------------------------

def test_the_shipped_table_routes_every_sub_category_of_the_time_limit_table(shipped):
    assert shipped.version == "2026.1" and shipped.effective_from == date(2026, 1, 1)
    limits = load_time_limits()
    assert shipped.sub_categories == limits.sub_categories
    for sub_category in limits.sub_categories:
        for level in ("community", "township", "county"):
            route = shipped.route(sub_category, level, EXAMPLE)
            assert route.lead_unit in shipped.units
            assert LEVELS.index(route.level) >= LEVELS.index(level)


def test_the_shipped_units(shipped):
    units = shipped.units
    assert 18 <= len(units) <= 25
    assert {unit.kind for unit in units.values()} == set(UNIT_KINDS)
    assert all(code.startswith("hq_") and unit.name for code, unit in units.items())
    named = {code for rule in shipped for code in rule.units}
    assert named == set(units)   # every unit listed has work, and every unit named is listed
    assert load_units() == units


def test_the_shipped_table_prefers_the_most_specific_rule(shipped):
    here = shipped.route("environmental_sanitation", "community", EXAMPLE)
    assert (here.lead_unit, here.assisting_units, here.level) == ("hq_anju_wuye", ("hq_huanwei",), "community")
    next_door = shipped.route("environmental_sanitation", "community", "410702001002U001")
    assert (next_door.lead_unit, next_door.level) == ("hq_zhifa_001", "township")   # no community rule: up
    elsewhere = shipped.route("environmental_sanitation", "township", "410702002001U001")
    assert (elsewhere.lead_unit, elsewhere.rule_row.area) == ("hq_huanwei", "*")
    county = shipped.route("manhole_cover_missing", "county", EXAMPLE)
    assert county.lead_unit == "hq_chengguan" and county.assisting_units == ("hq_water", "hq_gas", "hq_power")


def test_the_shipped_table_is_a_county_table(shipped):
    with pytest.raises(NoRoute, match="from the city level up"):
        shipped.route("road_lighting", "city", EXAMPLE)


def test_the_fingerprint_is_of_the_meaning(shipped, tmp_path):
    rows = ["road_lighting,county,*,hq_chengguan,hq_ludeng;hq_power", "road_lighting,township,*,hq_ludeng,"]
    a = load_routing(write_table(tmp_path, *rows))
    b = load_routing(write_table(tmp_path, "", *reversed(rows)))
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64
    c = load_routing(write_table(tmp_path, rows[0].replace("hq_ludeng;hq_power", "hq_power;hq_ludeng"), rows[1]))
    assert c.fingerprint != a.fingerprint   # the order of assisting units is kept: it may mean precedence
    assert shipped.fingerprint == load_routing().fingerprint


# --- routing ----------------------------------------------------------------------------------------------------

def test_the_most_specific_area_at_the_level_asked_wins(layered):
    assert layered.route("road_lighting", "community", EXAMPLE).rule_row.row == 5            # community code
    assert layered.route("road_lighting", "community", "410702001002U001").rule_row.row == 6  # county code
    assert layered.route("road_lighting", "township", EXAMPLE).rule_row.row == 4             # township code
    assert layered.route("road_lighting", "township", "410702002001U001").rule_row.row == 3  # *
    assert layered.route("road_lighting", "county", "410702002001U001").rule_row.row == 8    # township code
    assert layered.route("road_lighting", "county", EXAMPLE).rule_row.row == 2               # *


def test_the_route_names_lead_and_assisting_units_and_the_rule(layered):
    route = layered.route("road_lighting", "community", EXAMPLE)
    assert (route.lead_unit, route.assisting_units) == ("hq_wuye", ("hq_power",))
    assert route.units == ("hq_wuye", "hq_power") and route.level == "community"
    assert (route.rule_row.sub_category, route.rule_row.area) == ("road_lighting", "410702001001")


def test_a_level_without_a_rule_for_the_place_falls_back_to_the_nearest_level_up(tmp_path):
    table = load_routing(write_table(tmp_path,
                                     "road_lighting,community,410702001001,hq_wuye,",
                                     "road_lighting,county,*,hq_chengguan,",
                                     "road_lighting,city,*,xx_chengguan,"))
    route = table.route("road_lighting", "community", "410702001002U001")
    assert (route.lead_unit, route.level) == ("hq_chengguan", "county")   # township skipped: it has no rule
    assert table.route("road_lighting", "township", EXAMPLE).level == "county"
    assert table.route("road_lighting", "city", EXAMPLE).lead_unit == "xx_chengguan"


def test_the_level_asked_beats_a_more_specific_rule_above_it(tmp_path):
    table = load_routing(write_table(tmp_path, "road_lighting,township,*,hq_ludeng,",
                                     "road_lighting,county,410702001001,hq_chengguan,"))
    assert table.route("road_lighting", "township", EXAMPLE).lead_unit == "hq_ludeng"


def test_routing_never_goes_down(tmp_path):
    table = load_routing(write_table(tmp_path, "road_lighting,community,*,hq_wuye,",
                                     "road_lighting,township,410702001,hq_ludeng,"))
    with pytest.raises(NoRoute) as caught:
        table.route("road_lighting", "county", EXAMPLE)
    message = str(caught.value)
    assert "no route for 'road_lighting' from the county level up in 410702001001" in message
    assert "community * (row 2), township 410702001 (row 3)" in message
    with pytest.raises(NoRoute):
        table.route("road_lighting", "township", "410702002001U001")   # the township rule is for 001 only


@pytest.mark.parametrize("where", [EXAMPLE, GridCode.parse(EXAMPLE), "410702001001"])
def test_a_grid_code_or_its_community_code_routes_the_same(layered, where):
    assert layered.route("road_lighting", "community", where).rule_row.row == 5


def test_a_coarser_division_code_matches_only_rules_as_coarse(layered):
    assert layered.route("road_lighting", "community", "410702").rule_row.row == 6
    assert layered.route("road_lighting", "township", "410702001").rule_row.row == 4
    assert layered.route("road_lighting", "township", "410702").rule_row.row == 3


def test_bad_arguments_are_refused(layered):
    with pytest.raises(InvalidGridCode, match="unknown grid type 'X'"):
        layered.route("road_lighting", "community", "410702001001X001")
    with pytest.raises(InvalidDivisionCode, match="grid code \\(16 characters\\) or a county"):
        layered.route("road_lighting", "community", "4107")
    with pytest.raises(UnknownLevel, match="unknown agency level 'street'"):
        layered.route("road_lighting", "street", EXAMPLE)
    with pytest.raises(NoRoute, match="unknown sub-category 'street_lamp' in the routing table t.1; it has: "
                                      "road_lighting") as caught:
        layered.route("street_lamp", "community", EXAMPLE)
    assert isinstance(caught.value, LookupError)


# --- a table an administrator edits -----------------------------------------------------------------------------

def test_every_problem_is_reported_with_its_spreadsheet_row_and_column(tmp_path):
    path = write_table(
        tmp_path,
        "road_lighting,county,*,hq_chengguan,hq_ludeng",               # row 2: fine
        "road_lighting,street,*,hq_ludeng,",                           # row 3: level
        "road_lighting,township,4107,hq_ludeng,",                      # row 4: area
        "road_lighting,township,410702001,hq_ludeng,hq_ludeng",        # row 5: lead also assisting
        "road_lighting,community,410702001001,,hq_power",              # row 6: empty lead
        "road_lighting,county,*,hq_power,",                            # row 7: tie with row 2
        "",                                                            # row 8: blank, skipped
        "road_lighting,county,410702001,hq_chenguan,",                 # row 9: unknown unit
        "road_lighting,community,410702001002,hq_ludeng,",             # row 10: unit not at that level
    )
    error = problems_of(path)
    found = [(p.row, p.column) for p in error.problems]
    assert found == [(3, "level"), (4, "area"), (5, "assisting_units"), (6, "lead_unit"),
                     (7, "sub_category, level, area"), (9, "lead_unit"), (10, "lead_unit")]
    text = str(error)
    assert "7 problem(s)" in text
    assert "routing.csv, row 3, column level: unknown level 'street'; known: community, township, county, city" in text
    assert "row 4, column area: '4107' is not * or a county (6 digits), township (9) or community (12)" in text
    assert "row 5, column assisting_units: hq_ludeng is the lead unit" in text
    assert "row 6, column lead_unit: empty" in text
    assert "road_lighting / county / * is already in row 2" in text
    assert "row 9, column lead_unit: unknown unit 'hq_chenguan'" in text
    assert "hq_ludeng (红旗区市政路灯管理所) takes matters only from agencies at township, county (unit list row 3), " \
           "not community" in text


@pytest.mark.parametrize("cells, column, reason", [
    ("Road Lighting,county,*,hq_chengguan,", "sub_category", "not a code"),
    (",county,*,hq_chengguan,", "sub_category", "empty"),
    ("road_lighting,,*,hq_chengguan,", "level", "unknown level ''"),
    ("road_lighting,county,,hq_chengguan,", "area", "'' is not *"),
    ("road_lighting,county,all,hq_chengguan,", "area", "'all' is not *"),
    ("road_lighting,county,410700,hq_chengguan,", "area", "county segment 00"),
    ("road_lighting,county,4.10702E+11,hq_chengguan,", "area", "Excel turned the code into a number"),
    ("road_lighting,county,410702001001U001,hq_chengguan,", "area", "is not * or a county"),
    ("road_lighting,county,*,HQ_Chengguan,", "lead_unit", "not a unit code"),
    ("road_lighting,county,*,hq_chengguan,hq_power;hq_power", "assisting_units", "a unit appears twice"),
    ("road_lighting,county,*,hq_chengguan,hq_power；hq_ludeng", "assisting_units", "separate units with ';'"),
    ("road_lighting,county,*,hq_chengguan,hq_gas", "assisting_units", "unknown unit 'hq_gas'"),
    ("road_lighting,county,*,hq_chengguan,hq_wuye", "assisting_units",
     "only from agencies at community (unit list row 5), not county"),
])
def test_each_cell_is_checked(tmp_path, cells, column, reason):
    error = problems_of(write_table(tmp_path, cells))
    assert [(p.row, p.column) for p in error.problems] == [(2, column)]
    assert reason in error.problems[0].reason


def test_a_trailing_semicolon_names_no_unit(tmp_path):
    table = load_routing(write_table(tmp_path, "road_lighting,county,*,hq_chengguan, hq_ludeng ; hq_power;"))
    assert table.route("road_lighting", "county", EXAMPLE).assisting_units == ("hq_ludeng", "hq_power")


def test_ties_are_found_at_load_even_when_the_units_differ(tmp_path):
    error = problems_of(write_table(tmp_path, "road_lighting,township,410702001,hq_ludeng,",
                                    "road_lighting,county,*,hq_chengguan,",
                                    "road_lighting,township,410702001,hq_power,hq_ludeng"))
    assert [(p.row, p.column) for p in error.problems] == [(4, "sub_category, level, area")]
    assert "already in row 2" in str(error) and "assisting_units" in str(error)


def test_gaps_are_found_at_load(tmp_path):
    path = write_table(tmp_path,
                       "road_lighting,county,*,hq_chengguan,",
                       "power_outage,township,410702001,hq_power,",
                       "power_outage,community,410702001001,hq_power,")
    error = problems_of(path, sub_categories=["road_lighting", "power_outage", "fire_hazard"])
    assert [(p.row, p.column) for p in error.problems] == [(None, "sub_category"), (None, "sub_category")]
    text = str(error)
    assert "gap: no rule routes fire_hazard; add at least one with area * at some level" in text
    assert "gap: power_outage has rules only for township 410702001 (row 3), community 410702001001 (row 4)" in text
    assert load_routing(path).sub_categories == ["power_outage", "road_lighting"]   # no set given: no gap check


def test_a_star_rule_at_any_level_closes_the_gap(tmp_path):
    path = write_table(tmp_path, "road_lighting,community,*,hq_wuye,")
    assert len(load_routing(path, sub_categories=("road_lighting",))) == 1


def test_a_rule_for_a_sub_category_outside_the_required_set_is_a_typo(tmp_path):
    path = write_table(tmp_path, "road_lighting,county,*,hq_chengguan,", "road_lightning,township,*,hq_ludeng,")
    error = problems_of(path, sub_categories=iter(["road_lighting"]))
    assert [(p.row, p.column) for p in error.problems] == [(3, "sub_category")]
    assert "unknown sub-category 'road_lightning'" in str(error)


def test_missing_and_unknown_columns_are_reported_on_row_1(tmp_path):
    header = HEADER.replace(",assisting_units", "").replace("lead_unit", "lead")
    error = problems_of(write_table(tmp_path, "road_lighting,county,*,hq_chengguan", header=header))
    assert {(p.row, p.column) for p in error.problems} == {(1, "lead_unit"), (1, "assisting_units"), (1, "lead")}


def test_a_missing_or_broken_meta_file_is_reported_with_the_rows(tmp_path):
    error = problems_of(write_table(tmp_path, "road_lighting,street,*,hq_chengguan,", meta=False))
    assert [(p.file, p.row) for p in error.problems] == [("routing.meta.json", None), ("routing.csv", 2)]
    error = problems_of(write_table(tmp_path, "road_lighting,county,*,hq_chengguan,", meta={"version": ""}))
    assert {p.column for p in error.problems} == {"version", "effective_from"}


def test_a_gbk_file_is_refused_with_the_way_to_save_it(tmp_path):
    path = write_table(tmp_path, "road_lighting,county,*,hq_chengguan,")
    (tmp_path / "units.csv").write_bytes("code,name,kind,levels\nhq_chengguan,城管,linkage_department,county\n"
                                         .encode("gbk"))
    error = problems_of(path)
    assert [(p.file, p.row) for p in error.problems] == [("units.csv", None)]
    assert "CSV UTF-8" in str(error)


# --- the unit list ----------------------------------------------------------------------------------------------

def test_the_unit_list_is_checked_row_by_row(tmp_path):
    path = write_table(tmp_path, "road_lighting,county,*,hq_chengguan,hq_power", units=[
        "hq_chengguan,城管局,linkage_department,county",       # row 2
        "hq_chengguan,城管局二,linkage_department,county",     # row 3: code twice
        "hq_power,城管局,service_unit,county",                 # row 4: name twice
        "hq_ludeng,路灯所,company,county",                     # row 5: kind
        "hq_gas,燃气,service_unit,county;street",              # row 6: level
        "hq_heat,供热,service_unit,",                          # row 7: no level
        "hq_water,供水,service_unit,county;county",            # row 8: level twice
        "Hq Water,供水二,service_unit,county",                 # row 9: code
        ",无码,service_unit,county",                           # row 10: code
    ])
    error = problems_of(path)
    assert [(p.file, p.row, p.column) for p in error.problems] == [
        ("units.csv", 3, "code"), ("units.csv", 4, "name"), ("units.csv", 5, "kind"), ("units.csv", 6, "levels"),
        ("units.csv", 7, "levels"), ("units.csv", 8, "levels"), ("units.csv", 9, "code"), ("units.csv", 10, "code")]
    # hq_power's row is broken, but the rule naming it is not reported again as "unknown unit"
    assert "already in row 2; each unit appears once" in str(error)
    with pytest.raises(RoutingTableError):
        load_units(tmp_path / "units.csv")


def test_a_missing_unit_list_is_reported(tmp_path):
    path = write_table(tmp_path, "road_lighting,county,*,hq_chengguan,", units=None)
    error = problems_of(path)
    assert [(p.file, p.row) for p in error.problems] == [("units.csv", None)]
    assert "missing" in str(error)


def test_the_unit_list_may_be_given(tmp_path):
    path = write_table(tmp_path, "road_lighting,county,*,hq_chengguan,", units=None)
    units = load_units()
    assert len(load_routing(path, units=units).units) == len(units)
    other = tmp_path / "elsewhere"
    other.mkdir()
    write_table(other, "x,county,*,hq_chengguan,")
    table = load_routing(path, units=str(other / "units.csv"))
    unit = table.units["hq_ludeng"]
    assert (unit.name, unit.kind, unit.levels, unit.row) == ("红旗区市政路灯管理所", "service_unit",
                                                             ("township", "county"), 3)
