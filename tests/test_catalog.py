from datetime import date

import pytest

from rules.catalog import (
    COLUMNS, REGULATION, CatalogError, SubCategory, UnknownCatalogCode, cite, load_catalog,
)
from rules.time_limits import CATEGORIES, load_time_limits
from tests.table_files import raised, write_csv

HEADER = ",".join(COLUMNS)
# One sub-category per kind of 条例 §12, so a file built from these is complete.
COMPLETE = [f"c{i},事项{i},{category}" for i, category in enumerate(CATEGORIES)]
# Added to the catalog from the kinds 条例 §12 names, with no default limit yet in the time-limit table.
WITHOUT_LIMITS = {"building_unit_address_info", "public_service_proxy", "vulnerable_group_care",
                  "rental_housing", "floating_population"}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def write_catalog(tmp_path, *lines, header=HEADER, name="catalog.csv", **options):
    return write_csv(tmp_path / name, header, *lines, **options)


def problems_of(path):
    return raised(CatalogError, load_catalog, path)


# --- the shipped catalog ----------------------------------------------------------------------------------------

def test_the_shipped_catalog_loads_with_the_nine_kinds_of_article_12(catalog):
    assert catalog.version == "2026.1" and catalog.effective_from == date(2026, 1, 1)
    assert tuple(catalog.categories) == CATEGORIES
    assert all(catalog.categories[category] for category in CATEGORIES)
    assert len(catalog.codes) == len(set(catalog.codes)) == len(catalog)


def test_every_sub_category_of_the_time_limit_table_is_in_the_catalog_as_the_same_matter(catalog):
    table = load_time_limits()
    for limit in table:
        assert catalog.sub_category(limit.sub_category) == SubCategory(limit.sub_category, limit.name,
                                                                       limit.category)


def test_only_the_listed_sub_categories_lack_a_default_time_limit(catalog):
    # A new catalog entry without a limit must be a decision, written here, not an oversight.
    assert set(catalog.codes) - set(load_time_limits().sub_categories) == WITHOUT_LIMITS


def test_sub_category_lookup(catalog):
    assert catalog.sub_category("road_lighting") == SubCategory("road_lighting", "路灯不亮", "民生事项服务")
    assert "road_lighting" in catalog and "nope" not in catalog
    with pytest.raises(UnknownCatalogCode, match=r"'nope' is not in the admission catalog \(准入分类目录\) 2026.1"):
        catalog.sub_category("nope")


def test_cite_quotes_the_article():
    assert cite("第十三条").startswith(f"{REGULATION}第十三条：“未纳入清单的事项")
    assert cite("第十二条") == f"{REGULATION}第十二条"


# --- loading and checking a file --------------------------------------------------------------------------------

def test_a_valid_catalog_loads_with_its_version(tmp_path):
    catalog = load_catalog(write_catalog(tmp_path, *COMPLETE, meta={"version": "2027.1",
                                                                    "effective_from": "2027-01-01"}))
    assert (catalog.version, catalog.effective_from) == ("2027.1", date(2027, 1, 1))
    assert catalog.codes == tuple(f"c{i}" for i in range(9))


def test_excel_artifacts_are_accepted(tmp_path):
    path = tmp_path / "catalog.csv"
    lines = [HEADER, " c0 , 事项0 , 基础信息采集 ", "", *COMPLETE[1:]]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n,,\r\n")
    path.with_name("catalog.meta.json").write_text('{"version": "x", "effective_from": "2026-01-01"}')
    assert load_catalog(path).sub_category("c0") == SubCategory("c0", "事项0", "基础信息采集")


def test_every_problem_is_reported_with_its_spreadsheet_row_and_column(tmp_path):
    path = write_catalog(
        tmp_path,
        *COMPLETE,                                  # rows 2-10
        "road_lighting,路灯不亮,水电气暖",              # row 11: unknown category
        "c3,另一个,其他",                              # row 12: duplicate code
        "Bad-Code,坏代码,其他",                         # row 13: not a code
        "c9,事项1,其他",                               # row 14: duplicate name
        ",无代码,",                                   # row 15: empty code and category
    )
    error = problems_of(path)
    assert [(p.row, p.column) for p in error.problems] == [
        (11, "category"), (12, "code"), (13, "code"), (14, "name"), (15, "code"), (15, "category")]
    assert "catalog.csv, row 11, column category: unknown category '水电气暖'" in str(error)
    assert "c3 is already in row 5" in str(error)
    assert "事项1 is already the name in row 3" in str(error)


def test_a_category_without_sub_categories_is_reported(tmp_path):
    error = problems_of(write_catalog(tmp_path, *COMPLETE[:-1]))
    assert [(p.row, p.column) for p in error.problems] == [(None, "category")]
    assert "其他 has no sub-category" in str(error)


def test_blank_rows_keep_the_row_numbers_of_the_spreadsheet(tmp_path):
    error = problems_of(write_catalog(tmp_path, *COMPLETE, "", "x,名,未知"))
    assert [(p.row, p.column) for p in error.problems] == [(12, "category")]


def test_missing_unknown_and_repeated_columns_are_reported_on_row_1(tmp_path):
    error = problems_of(write_catalog(tmp_path, "c0,事项0,x", header="code,title,code"))
    assert {(p.row, p.column, p.reason.split(";")[0]) for p in error.problems} == {
        (1, "name", "missing column"), (1, "category", "missing column"),
        (1, "title", "unknown column"), (1, "code", "column appears twice")}


def test_extra_cells_are_reported(tmp_path):
    error = problems_of(write_catalog(tmp_path, COMPLETE[0] + ",stray", *COMPLETE[1:]))
    assert [(p.row, p.column) for p in error.problems] == [(2, None)]


def test_a_file_that_is_not_utf8_says_how_to_save_it(tmp_path):
    assert "CSV UTF-8" in str(problems_of(write_catalog(tmp_path, *COMPLETE, encoding="gbk")))


def test_the_version_file_is_required_and_checked(tmp_path):
    assert [(p.file, p.row) for p in problems_of(write_catalog(tmp_path, *COMPLETE, meta=False)).problems] == [
        ("catalog.meta.json", None)]
    error = problems_of(write_catalog(tmp_path, *COMPLETE, meta={"version": "", "effective_from": "soon"}))
    assert [p.column for p in error.problems] == ["version", "effective_from"]


def test_an_empty_catalog_is_refused(tmp_path):
    assert "no rows" in str(problems_of(write_catalog(tmp_path)))
    path = write_catalog(tmp_path)
    path.write_bytes(b"")
    assert "empty file; the header row is: code,name,category" in str(problems_of(path))
