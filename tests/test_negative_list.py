import pytest

from rules.catalog import REGULATION, load_catalog
from rules.negative_list import (
    COLUMNS, KINDS, NegativeListError, OnNegativeList, check_admissible, load_negative_list,
)
from tests.table_files import raised, write_csv

HEADER = ",".join(COLUMNS)
ARTICLE_14 = "依法应当由行政机关作出的行政许可、行政处罚、行政强制以及其他与网格职责不符的事项，不得纳入网格事项清单"


@pytest.fixture(scope="module")
def negative():
    return load_negative_list()


def write_list(tmp_path, *lines, header=HEADER, name="negative.csv"):
    return write_csv(tmp_path / name, header, *lines, meta=False, line_end="\n")


def problems_of(path):
    return raised(NegativeListError, load_negative_list, path)


def test_the_shipped_list_covers_every_kind_of_article_14(negative):
    assert {entry.kind for entry in negative} == set(KINDS)
    assert set(KINDS.values()) == {"行政许可", "行政处罚", "行政强制", "其他与网格职责不符的事项"}
    assert all(entry.article == "第十四条" for entry in negative)


def test_no_catalog_code_is_on_the_negative_list(negative):
    assert not set(load_catalog().codes) & set(negative.entries)
    for code in load_catalog().codes:
        check_admissible(code)   # returns quietly


def test_an_entry_is_refused_citing_article_14_and_naming_the_entry(negative):
    with pytest.raises(OnNegativeList) as caught:
        check_admissible("administrative_penalty_decision")
    refused = caught.value
    assert refused.entry == negative.entry("administrative_penalty_decision")
    assert refused.kind == "administrative_penalty" and refused.article == "第十四条"
    message = str(refused)
    assert f"{REGULATION}第十四条" in message and ARTICLE_14 in message
    assert "行政处罚的调查取证" in message and "[行政处罚]" in message


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_matter_marked_with_a_kind_is_refused_whatever_the_entry(kind):
    with pytest.raises(OnNegativeList, match="第十四条") as caught:
        check_admissible(kind)
    assert caught.value.entry is None and KINDS[kind] in str(caught.value)


def test_other_administrative_acts_are_entries_of_the_open_kind(negative):
    for code in ("administrative_levy", "administrative_adjudication", "administrative_confirmation"):
        assert negative.entry(code).kind == "incompatible_with_grid_duties"


def test_a_given_list_is_used_instead_of_the_shipped_one(tmp_path):
    own = load_negative_list(write_list(tmp_path, "door_to_door_fee_collection,入户收费,"
                                                  "incompatible_with_grid_duties,第十四条"))
    with pytest.raises(OnNegativeList, match="入户收费"):
        check_admissible("door_to_door_fee_collection", own)
    check_admissible("door_to_door_fee_collection")   # not on the shipped list
    assert "door_to_door_fee_collection" in own and "road_lighting" not in own


def test_every_problem_is_reported_with_its_spreadsheet_row_and_column(tmp_path):
    path = write_list(
        tmp_path,
        "penalty,处罚,administrative_penalty,第十四条",           # row 2: fine
        "penalty,处罚二,administrative_penalty,第十四条",          # row 3: duplicate code
        "fee,收费,levy,第十四条",                                  # row 4: unknown kind
        "permit,许可,administrative_licensing,Art. 14",          # row 5: article not numbered as the text does
        "administrative_penalty,处罚,administrative_penalty,第十四条",   # row 6: a kind code as an entry code
        "Seal,,administrative_enforcement,",                     # row 7: bad code, empty name and article
    )
    error = problems_of(path)
    assert [(p.row, p.column) for p in error.problems] == [
        (3, "code"), (4, "kind"), (5, "article"), (6, "code"), (7, "code"), (7, "name"), (7, "article")]
    assert "negative.csv, row 3, column code: penalty is already in row 2" in str(error)
    assert "unknown kind 'levy'" in str(error)


def test_missing_columns_and_empty_lists_are_refused(tmp_path):
    error = problems_of(write_list(tmp_path, "p,处罚,administrative_penalty", header="code,name,kind"))
    assert [(p.row, p.column) for p in error.problems] == [(1, "article")]
    assert "no rows" in str(problems_of(write_list(tmp_path)))
